"""Forms of the patient pages. Times are entered in the hospital's local time (``TIME_ZONE``)."""

from __future__ import annotations

from typing import Any

from django import forms

from models_catalog.labels import measurement_label
from models_catalog.models import ModelVersion, TargetProtocol
from patients.models import ConsentRecord, Patient, SupportSession

KIND_CHOICES = [
    ("weight", "Weight"),
    ("height", "Height"),
    ("serum_creatinine", "Serum creatinine"),
    ("albumin", "Albumin"),
    ("gestational_age_at_birth", "Gestational age at birth"),
]
UNIT_HINT = "kg, g, lb · cm, m, in · mg/dL, µmol/L · g/L, g/dL · weeks"


class PageForm(forms.Form):
    """A form that shares its page with others: element ids carry ``id_prefix`` so that none repeats."""

    id_prefix = "form"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", f"{self.id_prefix}_%s")
        super().__init__(*args, **kwargs)


class LocalDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M")


class PatientForm(PageForm):
    id_prefix = "patient"

    mrn = forms.CharField(label="Hospital identifier (MRN)", max_length=64)
    family_name = forms.CharField(max_length=120)
    given_name = forms.CharField(max_length=120)
    birth_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    sex = forms.ChoiceField(choices=Patient.Sex.choices)
    ward = forms.CharField(max_length=120, required=False)


class MeasurementForm(PageForm):
    id_prefix = "measurement"

    kind = forms.ChoiceField(choices=KIND_CHOICES)
    value = forms.FloatField()
    unit = forms.CharField(max_length=24, help_text=UNIT_HINT)
    measured_at = forms.DateTimeField(widget=LocalDateTimeInput(), input_formats=["%Y-%m-%dT%H:%M"])

    def __init__(self, *args, extra_kinds: dict[str, str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Covariates the patient's models declare beyond the usual ones (e.g. haematocrit in L/L).
        self.extra_kinds = extra_kinds or {}
        self.fields["kind"].choices = KIND_CHOICES + [
            (kind, f"{measurement_label(kind)} ({unit})") for kind, unit in self.extra_kinds.items()
        ]


class SupportSessionForm(PageForm):
    id_prefix = "session"

    modality = forms.ChoiceField(choices=SupportSession.Modality.choices)
    started_at = forms.DateTimeField(widget=LocalDateTimeInput(), input_formats=["%Y-%m-%dT%H:%M"])
    ended_at = forms.DateTimeField(
        widget=LocalDateTimeInput(),
        input_formats=["%Y-%m-%dT%H:%M"],
        required=False,
        help_text="leave empty while the session runs",
    )
    note = forms.CharField(required=False, max_length=2000)


class SupportSessionEndForm(PageForm):
    id_prefix = "session_end"

    ended_at = forms.DateTimeField(widget=LocalDateTimeInput(), input_formats=["%Y-%m-%dT%H:%M"])


class GenotypeForm(PageForm):
    id_prefix = "genotype"

    gene = forms.CharField(max_length=20, help_text="e.g. CYP3A5, TPMT, NUDT15, CYP2C19")
    diplotype = forms.CharField(max_length=60, help_text="e.g. *1/*3")
    lab = forms.CharField(max_length=200)
    reported_on = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))


class ConsentForm(PageForm):
    id_prefix = "consent"

    scope = forms.ChoiceField(choices=ConsentRecord.Scope.choices)
    status = forms.ChoiceField(choices=ConsentRecord.Status.choices)
    note = forms.CharField(required=False, max_length=2000)


class BreakGlassForm(PageForm):
    id_prefix = "break_glass"

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        label="Why you need this record now",
        help_text="recorded in the audit trail with your name; the access ends by itself",
    )


class StartingDoseForm(PageForm):
    id_prefix = "starting_dose"

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
class CourseOpenForm(PageForm):
    id_prefix = "course"

    # The choices show the version's name: its document, card and checks are read only once chosen.
    model_version = forms.ModelChoiceField(
        queryset=ModelVersion.objects.published()
        .select_related("drug")
        .defer("document", "model_card", "reference_checks", "covariate_sources", "transcription"),
        help_text="published models only",
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
    no_organ_support_confirmed = forms.BooleanField(
        required=False,
        label="The patient receives no dialysis, CRRT or ECMO",
        help_text="asked when the model depends on them and no session is recorded",
    )
    missing_data_reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Why open before the record is complete",
        help_text="only when the record lacks what the model needs: no recommendation until it is recorded",
    )
