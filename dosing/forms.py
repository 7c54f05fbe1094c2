"""Forms of the course pages; times are entered in the hospital's local time."""

from __future__ import annotations

from typing import Any

from django import forms

from dosing import ranges
from dosing.models import MonitoringDevice
from dosing.ranges import range_form_field
from models_catalog.labels import output_label, route_label
from patients.forms import CourseOpenForm, LocalDateTimeInput, PageForm

__all__ = [
    "CourseOpenForm",
    "DoseForm",
    "ExclusionForm",
    "LevelConfirmForm",
    "LevelForm",
    "ModificationPreviewForm",
    "ReviewForm",
    "WhatIfForm",
]

LOCAL_FORMATS = ["%Y-%m-%dT%H:%M"]


def _route_choices(routes: list[str]) -> list[tuple[str, str]]:
    return [(route, route_label(route)) for route in routes]


class DoseForm(PageForm):
    """A dose as given. Routes: the drug's that the model can represent; the usual one first."""

    id_prefix = "dose"  # element ids: the course page holds several forms with the same field names

    given_at = forms.DateTimeField(widget=LocalDateTimeInput(), input_formats=LOCAL_FORMATS)
    amount_mg = range_form_field(ranges.DOSE_MG, label="Dose (mg)")
    route = forms.ChoiceField()
    infusion_duration_h = range_form_field(
        ranges.INFUSION_DURATION_H,
        required=False,
        label="Infusion duration (h)",
        help_text="infusions only; empty for a bolus or tablet",
    )
    confirmation_reason = forms.CharField(
        required=False,
        max_length=2000,
        label="Confirmation (only if asked)",
        help_text="why a dose flagged as a duplicate or too fast is right",
    )

    def __init__(self, *args: Any, routes: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["route"].choices = _route_choices(routes)


class LevelForm(PageForm):
    id_prefix = "level"

    sampled_at = forms.DateTimeField(widget=LocalDateTimeInput(), input_formats=LOCAL_FORMATS)
    value = range_form_field(ranges.LEVEL_VALUE, required=False)
    unit = forms.CharField(max_length=16, help_text="mg/L, µg/mL, ng/mL, µg/L, µmol/L ...")
    below_lloq = forms.BooleanField(required=False, label="Below the limit of quantification")
    lloq = range_form_field(ranges.LLOQ, required=False, label="LLOQ (same unit)")
    assay = forms.CharField(max_length=120, required=False)

    def __init__(self, *args: Any, outputs: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if len(outputs) > 1:  # the model distinguishes assays (e.g. LC-MS/MS versus immunoassay)
            self.fields["model_output"] = forms.ChoiceField(
                choices=[(name, output_label(name)) for name in outputs], label="Assay (model output)"
            )


class SeriesImportForm(PageForm):
    """A continuous monitoring device's CSV export (format: README, "Dense data")."""

    id_prefix = "series"

    device = forms.ModelChoiceField(queryset=MonitoringDevice.objects.none(), label="Device type")
    device_serial = forms.CharField(max_length=120, required=False, label="Device serial number")
    file = forms.FileField(
        label="CSV export", help_text="columns sampled_at,value; value in the device's unit"
    )

    def __init__(self, *args: Any, outputs: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["device"].queryset = MonitoringDevice.objects.filter(active=True)
        if len(outputs) > 1:
            self.fields["model_output"] = forms.ChoiceField(
                choices=[(name, output_label(name)) for name in outputs], label="Assay (model output)"
            )


class ExclusionForm(forms.Form):
    reason = forms.CharField(max_length=2000)


class LevelConfirmForm(forms.Form):
    reason = forms.CharField(max_length=2000)


class WhatIfForm(PageForm):
    id_prefix = "whatif"
    dose_mg = range_form_field(ranges.DOSE_MG, label="Dose (mg)")
    interval_h = range_form_field(ranges.INTERVAL_H, label="Every (h)")
    duration_h = range_form_field(ranges.INFUSION_DURATION_H, required=False, label="Infusion (h)")
    route = forms.ChoiceField()
    start_at = forms.DateTimeField(
        required=False,
        widget=LocalDateTimeInput(),
        input_formats=LOCAL_FORMATS,
        label="First dose at",
        help_text="empty: the next due time",
    )

    def __init__(self, *args: Any, routes: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["route"].choices = _route_choices(routes)


class ReviewForm(PageForm):
    id_prefix = "review"

    decision = forms.ChoiceField(
        choices=[("approve", "Approve"), ("modify", "Approve with changes"), ("reject", "Reject")],
        widget=forms.RadioSelect,
        label="Decision",
    )
    dose_mg = range_form_field(ranges.DOSE_MG, required=False, label="Changed dose (mg)")
    interval_h = range_form_field(ranges.INTERVAL_H, required=False, label="Changed interval (h)")
    duration_h = range_form_field(
        ranges.INFUSION_DURATION_H, required=False, label="Changed infusion duration (h)"
    )
    start_at = forms.DateTimeField(
        required=False,
        widget=LocalDateTimeInput(),
        input_formats=LOCAL_FORMATS,
        label="Changed first dose time",
        help_text="empty: as proposed",
    )
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Reason or note")
    acknowledged_alerts = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="I have read and weighed each red warning",
    )
    password = forms.CharField(widget=forms.PasswordInput, label="Signature: your password")
    preview_token = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, alerts: list[dict[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        alerts = alerts or []
        if alerts:
            self.fields["acknowledged_alerts"].choices = [(a["code"], a["message"]) for a in alerts]
        else:
            del self.fields["acknowledged_alerts"]

    otp_code = forms.CharField(
        max_length=12,
        label="and a new code from your authenticator",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def final_regimen(self) -> dict[str, Any] | None:
        data = self.cleaned_data
        if data.get("decision") != "modify" or not data.get("dose_mg") or not data.get("interval_h"):
            return None
        return {
            "dose_mg": data["dose_mg"],
            "interval_h": data["interval_h"],
            "duration_h": data.get("duration_h"),
            "start_at": data.get("start_at"),
        }


class ModificationPreviewForm(PageForm):
    """The changed regimen of a review form, read without the signature: to forecast it before signing."""

    id_prefix = "preview"
    dose_mg = range_form_field(ranges.DOSE_MG)
    interval_h = range_form_field(ranges.INTERVAL_H)
    duration_h = range_form_field(ranges.INFUSION_DURATION_H, required=False)
    start_at = forms.DateTimeField(required=False, input_formats=LOCAL_FORMATS)

    def regimen(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "dose_mg": data["dose_mg"],
            "interval_h": data["interval_h"],
            "duration_h": data.get("duration_h"),
            "start_at": data.get("start_at"),
        }
