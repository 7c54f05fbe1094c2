"""The plain select built in Python gives exactly the HTML of Django's own templates."""

from __future__ import annotations

import pytest
from django import forms
from django.forms.renderers import DjangoTemplates
from django.utils.safestring import mark_safe

from accounts.roles import Role
from mipd_web.form_renderer import FormRenderer
from patients.forms import ConsentForm, CourseOpenForm, MeasurementForm, StartingDoseForm, SupportSessionForm
from tests.factories import UserFactory, published_test_version

DJANGO = DjangoTemplates()
OURS = FormRenderer()


class Sample(forms.Form):
    plain = forms.ChoiceField(choices=[("a", "A"), ("b", "B & <b>")], initial="b")
    grouped = forms.ChoiceField(
        choices=[("", "---"), ("Fruit", [("1", "apple"), ("2", 'pear "x"')]), ("Veg", [("3", "leek")])],
        initial="2",
    )
    optional = forms.TypedChoiceField(choices=[(None, "none"), (0, "zero"), (1, mark_safe("<i>one</i>"))])
    attrs = forms.ChoiceField(
        choices=[("x", "X")],
        widget=forms.Select(attrs={"class": 'a"b', "data-x": "<y>", "disabled": True, "hidden": False}),
    )
    many = forms.MultipleChoiceField(choices=[("a", "A"), ("b", "B")], initial=["a", "b"])


class OwnOption(forms.Select):
    option_template_name = "django/forms/widgets/input_option.html"  # not the plain option: templates


def rendered(form: forms.Form, renderer: object) -> list[str]:
    form.renderer = renderer
    return [str(field) for field in form]


def test_the_sample_selects_render_as_with_django_templates() -> None:
    ours = rendered(Sample(), OURS)
    assert ours == rendered(Sample(), DJANGO)
    assert "B &amp; &lt;b&gt;" in ours[0] and '<option value="b" selected>' in ours[0]
    assert '<optgroup label="Fruit">' in ours[1] and "pear &quot;x&quot;" in ours[1]
    assert "<i>one</i>" in ours[2]  # a safe label stays as it is
    assert 'class="a&quot;b"' in ours[3] and 'data-x="&lt;y&gt;"' in ours[3] and " disabled" in ours[3]
    assert "hidden" not in ours[3]


def test_a_select_with_its_own_option_template_goes_through_the_templates() -> None:
    widget = OwnOption(choices=[("a", "A")])
    assert widget.render("w", "a", renderer=OURS) == widget.render("w", "a", renderer=DJANGO)


def test_a_bound_select_with_an_error_renders_as_with_django_templates() -> None:
    assert rendered(Sample({"plain": "zzz", "grouped": "3"}), OURS) == rendered(
        Sample({"plain": "zzz", "grouped": "3"}), DJANGO
    )


@pytest.mark.django_db
def test_the_patient_page_forms_render_as_with_django_templates() -> None:
    published_test_version(
        curator=UserFactory(username="curator-one", roles=[Role.MODEL_CURATOR]),
        second_curator=UserFactory(username="curator-two", roles=[Role.MODEL_CURATOR]),
    )
    assert CourseOpenForm().fields["model_version"].queryset.exists()
    for make in (
        MeasurementForm,
        ConsentForm,
        CourseOpenForm,
        SupportSessionForm,
        lambda: StartingDoseForm(drugs=["azathioprine", "clopidogrel"]),
    ):
        assert rendered(make(), OURS) == rendered(make(), DJANGO)
