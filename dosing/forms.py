"""Forms of the course pages; times are entered in the hospital's local time."""

from __future__ import annotations

from typing import Any

from django import forms

from patients.forms import CourseOpenForm, LocalDateTimeInput

__all__ = ["CourseOpenForm", "DoseForm", "ExclusionForm", "LevelForm", "ReviewForm", "WhatIfForm"]

LOCAL_FORMATS = ["%Y-%m-%dT%H:%M"]


class DoseForm(forms.Form):
    given_at = forms.DateTimeField(widget=LocalDateTimeInput(), input_formats=LOCAL_FORMATS)
    amount_mg = forms.FloatField(label="Dose (mg)")
    route = forms.ChoiceField()
    infusion_duration_h = forms.FloatField(required=False, label="Infusion duration (h)")

    def __init__(self, *args: Any, routes: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["route"].choices = [(route, route.replace("_", " ")) for route in routes]


class LevelForm(forms.Form):
    sampled_at = forms.DateTimeField(widget=LocalDateTimeInput(), input_formats=LOCAL_FORMATS)
    value = forms.FloatField(required=False)
    unit = forms.CharField(max_length=16, help_text="mg/L, µg/mL, ng/mL, µg/L, µmol/L ...")
    below_lloq = forms.BooleanField(required=False, label="Below the limit of quantification")
    lloq = forms.FloatField(required=False, label="LLOQ (same unit)")
    assay = forms.CharField(max_length=120, required=False)

    def __init__(self, *args: Any, outputs: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if len(outputs) > 1:  # the model distinguishes assays (e.g. LC-MS/MS versus immunoassay)
            self.fields["model_output"] = forms.ChoiceField(choices=[(name, name) for name in outputs])


class ExclusionForm(forms.Form):
    reason = forms.CharField(max_length=2000)


class WhatIfForm(forms.Form):
    dose_mg = forms.FloatField(min_value=0.001, label="Dose (mg)")
    interval_h = forms.FloatField(min_value=0.5, max_value=24 * 7, label="Every (h)")
    duration_h = forms.FloatField(required=False, min_value=0, label="Infusion (h)")
    route = forms.ChoiceField()

    def __init__(self, *args: Any, routes: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["route"].choices = [(route, route.replace("_", " ")) for route in routes]


class ReviewForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[("approve", "Approve"), ("modify", "Approve with changes"), ("reject", "Reject")],
        widget=forms.RadioSelect,
    )
    dose_mg = forms.FloatField(required=False, min_value=0.001, label="Changed dose (mg)")
    interval_h = forms.FloatField(required=False, min_value=0.5, label="Changed interval (h)")
    duration_h = forms.FloatField(required=False, min_value=0, label="Changed infusion duration (h)")
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    password = forms.CharField(widget=forms.PasswordInput, label="Signature: your password")
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
        }
