"""The auditors' filter form: patient (MRN or public id), user, action, time (local time of the hospital)."""

from __future__ import annotations

from django import forms

from audit.models import AuditEntry


class EntryFilterForm(forms.Form):
    patient = forms.CharField(required=False, max_length=64, help_text="MRN or the patient's public id")
    user = forms.CharField(required=False, max_length=150, label="User name")
    action = forms.ChoiceField(required=False, choices=[("", "any"), *AuditEntry.Action.choices])
    since = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M"],
    )
    until = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M"],
    )
