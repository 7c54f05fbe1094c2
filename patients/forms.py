"""Forms of the patient pages. Times are entered in the hospital's local time (``TIME_ZONE``)."""

from __future__ import annotations

from django import forms

from models_catalog.models import ModelVersion, TargetProtocol
from patients.models import ConsentRecord, Patient

KIND_CHOICES = [
    ("weight", "Weight"),
    ("height", "Height"),
    ("serum_creatinine", "Serum creatinine"),
    ("albumin", "Albumin"),
    ("dialysis", "Intermittent haemodialysis (1 yes, 0 no)"),
]
UNIT_HINT = "kg, g, lb · cm, m, in · mg/dL, µmol/L · g/L, g/dL · flag"


class LocalDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M")


class PatientForm(forms.Form):
    mrn = forms.CharField(label="Hospital identifier (MRN)", max_length=64)
    family_name = forms.CharField(max_length=120)
    given_name = forms.CharField(max_length=120)
    birth_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    sex = forms.ChoiceField(choices=Patient.Sex.choices)
    ward = forms.CharField(max_length=120, required=False)


class MeasurementForm(forms.Form):
    kind = forms.ChoiceField(choices=KIND_CHOICES)
    value = forms.FloatField()
    unit = forms.CharField(max_length=24, help_text=UNIT_HINT)
    measured_at = forms.DateTimeField(widget=LocalDateTimeInput(), input_formats=["%Y-%m-%dT%H:%M"])

    def __init__(self, *args, extra_kinds: dict[str, str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Covariates the patient's models declare beyond the usual ones (e.g. haematocrit in L/L).
        self.extra_kinds = extra_kinds or {}
        self.fields["kind"].choices = KIND_CHOICES + [
            (kind, f"{kind.replace('_', ' ')} ({unit})") for kind, unit in self.extra_kinds.items()
        ]


class GenotypeForm(forms.Form):
    gene = forms.CharField(max_length=20, help_text="e.g. CYP3A5, TPMT, NUDT15, CYP2C19")
    diplotype = forms.CharField(max_length=60, help_text="e.g. *1/*3")
    lab = forms.CharField(max_length=200)
    reported_on = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))


class ConsentForm(forms.Form):
    scope = forms.ChoiceField(choices=ConsentRecord.Scope.choices)
    status = forms.ChoiceField(choices=ConsentRecord.Status.choices)
    note = forms.CharField(required=False, max_length=2000)


class BreakGlassForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        label="Why you need this record now",
        help_text="recorded in the audit trail with your name; the access ends by itself",
    )


class StartingDoseForm(forms.Form):
    """Genotype-based starting dose (CPIC): the standard dose the patient would get without genotype."""

    drug = forms.ChoiceField()
    standard_daily_dose_mg = forms.FloatField(min_value=0.001, label="Standard starting dose (mg/day)")
    indication = forms.ChoiceField(
        choices=[("", "not relevant"), ("malignant", "malignant"), ("nonmalignant", "nonmalignant")],
        required=False,
    )

    def __init__(self, *args, drugs: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["drug"].choices = [(drug, drug) for drug in drugs]


# Opening a therapy course starts on the patient's page (the dosing app handles the POST).
class CourseOpenForm(forms.Form):
    model_version = forms.ModelChoiceField(
        queryset=ModelVersion.objects.published().select_related("drug"), help_text="published models only"
    )
    target_protocol = forms.ModelChoiceField(
        queryset=TargetProtocol.objects.filter(active=True).select_related("drug")
    )
    indication = forms.CharField(max_length=200)
    mic_mg_per_l = forms.FloatField(required=False, min_value=0.0001, label="MIC (mg/L)")
    consent_override_reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="only when the patient has not consented to model-based dosing",
    )
