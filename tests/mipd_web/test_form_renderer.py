"""The plain select, inputs and labels built in Python give exactly the HTML of Django's own templates."""

from __future__ import annotations

import datetime as dt

import pytest
from django import forms
from django.forms.renderers import DjangoTemplates
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from accounts.roles import Role
from dosing.forms import (
    DoseForm,
    ExclusionForm,
    LevelConfirmForm,
    LevelForm,
    ReviewForm,
    SeriesImportForm,
    WhatIfForm,
)
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


class Inputs(forms.Form):
    text = forms.CharField(label='Name <"x">', initial='a "b" & <c>', help_text="help")
    number = forms.FloatField(initial=1.5, widget=forms.NumberInput(attrs={"step": "any", "min": 0}))
    date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), initial=dt.date(2026, 1, 2))
    when = forms.DateTimeField(initial=dt.datetime(2026, 1, 2, 3, 4))
    secret = forms.CharField(widget=forms.PasswordInput(render_value=True), initial="pw")
    hidden = forms.CharField(widget=forms.HiddenInput, initial=mark_safe("<safe>"), required=False)
    email = forms.EmailField(required=False, label="Mail:", label_suffix="?")
    check = forms.BooleanField(
        initial=True, required=False, widget=forms.CheckboxInput(attrs={"data-x": None})
    )
    unchecked = forms.BooleanField(required=False, label=mark_safe("<b>bold</b>"))
    flags = forms.CharField(widget=forms.TextInput(attrs={"readonly": True, "disabled": False, "id": "own"}))


class NoIds(Inputs):
    required_css_class = "req"


class OwnInput(forms.TextInput):
    template_name = "django/forms/widgets/textarea.html"  # not the plain input: templates


def rendered(form: forms.Form, renderer: object) -> list[str]:
    """Each field, its label and legend, and the whole form as the pages lay it out (``_form.html``)."""
    form.renderer = renderer
    parts = [f"{field}|{field.label_tag()}|{field.legend_tag()}|{field.errors}" for field in form]
    return [*parts, render_to_string("_form.html", {"form": form, "method": "get", "submit": "Go"})]


def test_the_sample_selects_render_as_with_django_templates() -> None:
    ours = rendered(Sample(), OURS)
    assert ours == rendered(Sample(), DJANGO)
    assert "B &amp; &lt;b&gt;" in ours[0] and '<option value="b" selected>' in ours[0]
    assert '<optgroup label="Fruit">' in ours[1] and "pear &quot;x&quot;" in ours[1]
    assert "<i>one</i>" in ours[2]  # a safe label stays as it is
    assert 'class="a&quot;b"' in ours[3] and 'data-x="&lt;y&gt;"' in ours[3] and " disabled" in ours[3]
    assert "hidden" not in ours[3]


def test_the_sample_inputs_and_labels_render_as_with_django_templates() -> None:
    for make in (Inputs, lambda: NoIds(auto_id=False), lambda: Inputs({"number": "x", "email": "<y>"})):
        assert rendered(make(), OURS) == rendered(make(), DJANGO)
    ours = rendered(Inputs(), OURS)
    assert (
        'value="a &quot;b&quot; &amp; &lt;c&gt;"' in ours[0]
        and "Name &lt;&quot;x&quot;&gt;:</label>" in ours[0]
    )
    assert 'value="<safe>"' in ours[5]  # a safe value stays as it is
    assert "Mail:</label>" in ours[6] and " checked" in ours[7] and 'data-x="None"' in ours[7]
    assert "<b>bold</b>" in ours[8] and ' readonly id="own"' in ours[9] and "disabled" not in ours[9]


def test_an_input_with_its_own_template_goes_through_the_templates() -> None:
    widget = OwnInput()
    assert widget.render("w", "a", renderer=OURS) == widget.render("w", "a", renderer=DJANGO)
    assert "<textarea" in widget.render("w", "a", renderer=OURS)


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


@pytest.mark.django_db
def test_the_course_page_and_review_forms_render_as_with_django_templates() -> None:
    alerts = [{"code": "renal", "message": "Renal <function> falling"}]
    for make in (
        lambda: DoseForm(routes=["iv", "oral"], initial={"route": "iv", "infusion_duration_h": 1.5}),
        lambda: DoseForm({"amount_mg": "-1", "route": "iv"}, routes=["iv"]),
        lambda: LevelForm(outputs=["central"]),
        lambda: LevelForm({"value": "abc"}, outputs=["central"]),
        lambda: SeriesImportForm(outputs=["central"]),
        lambda: WhatIfForm(routes=["iv"], initial={"route": "iv", "duration_h": 2.0}),
        lambda: WhatIfForm({"dose_mg": "1000", "interval_h": "x"}, routes=["iv"]),
        lambda: ReviewForm(alerts=alerts),
        lambda: ReviewForm(),
        lambda: ReviewForm({"decision": "modify", "dose_mg": "5", "note": "<n>"}, alerts=alerts),
        ExclusionForm,
        LevelConfirmForm,
    ):
        assert rendered(make(), OURS) == rendered(make(), DJANGO)
