"""The form renderer: Django's own templates, except plain selects, inputs and labels, built in Python.

Django renders each option of a select through two included templates; the patient page has about a
hundred options (model versions, targets, measurement kinds), which cost a fifth of its server time. Each
input (``input.html`` with ``attrs.html``) and each label (``label.html``) costs about a millisecond more
through the templates, and the course page has several forms. The HTML is the same as Django's templates give,
escaped the same way (``tests/mipd_web/test_form_renderer.py`` compares the two over the pages' real
forms); a widget with its own template (or option template) goes through the templates as before.
"""

from __future__ import annotations

from typing import Any

from django.forms.renderers import DjangoTemplates
from django.utils.html import conditional_escape

SELECT = "django/forms/widgets/select.html"
OPTION = "django/forms/widgets/select_option.html"
LABEL = "django/forms/label.html"
# Django's widget templates that are nothing but ``{% include "django/forms/widgets/input.html" %}``.
INPUTS = frozenset(
    f"django/forms/widgets/{name}.html"
    for name in (
        "checkbox", "color", "date", "datetime", "email", "file", "hidden",
        "number", "password", "search", "tel", "text", "time", "url",
    )
)  # fmt: skip


def _attrs(attrs: dict[str, Any]) -> str:
    """As ``attrs.html``: ``False`` left out, ``True`` as a bare name, every value escaped."""
    return "".join(
        f" {conditional_escape(name)}" + ("" if value is True else f'="{conditional_escape(str(value))}"')
        for name, value in attrs.items()
        if value is not False
    )


def render_select(widget: dict[str, Any]) -> str:
    parts = [f'<select name="{conditional_escape(widget["name"])}"{_attrs(widget["attrs"])}>']
    for group_name, group_choices, _ in widget["optgroups"]:
        if group_name:
            parts.append(f'\n  <optgroup label="{conditional_escape(group_name)}">')
        for option in group_choices:
            parts.append(
                f'\n  <option value="{conditional_escape(str(option["value"]))}"{_attrs(option["attrs"])}>'
                f"{conditional_escape(option['label'])}</option>\n"  # the option template's last line end
            )
        if group_name:
            parts.append("\n  </optgroup>")
    parts.append("\n</select>")
    return "".join(parts)


def render_input(widget: dict[str, Any]) -> str:
    """As ``input.html``: the value only when it is not None, as ``stringformat:'s'`` gives it, escaped."""
    value = widget["value"]
    shown = "" if value is None else f' value="{conditional_escape(str(value))}"'
    return (
        f'<input type="{conditional_escape(widget["type"])}" name="{conditional_escape(widget["name"])}"'
        f"{shown}{_attrs(widget['attrs'])}>"
    )


def render_label(context: dict[str, Any]) -> str:
    """As ``label.html``: the tag only when the field has an id (``use_tag``), the label escaped."""
    label = conditional_escape(context["label"])
    if not context["use_tag"]:
        return label
    tag = conditional_escape(context["tag"])
    return f"<{tag}{_attrs(context['attrs'] or {})}>{label}</{tag}>"


class FormRenderer(DjangoTemplates):
    def render(self, template_name: str, context: dict[str, Any], request: Any = None) -> str:
        if template_name in INPUTS:
            return render_input(context["widget"])
        if template_name == LABEL:
            return render_label(context)
        widget = context.get("widget") if template_name == SELECT else None
        if widget is not None and all(
            option.get("template_name") == OPTION
            for _, options, _ in widget["optgroups"]
            for option in options
        ):
            return render_select(widget)
        return super().render(template_name, context, request=request)
