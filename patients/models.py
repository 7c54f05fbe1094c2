"""Patients, covariate measurements over time, genotypes and consent records.

Clinical data is never deleted or overwritten: a wrong entry is marked ``entered_in_error`` with a reason,
and stays visible in the history. Measurements are stored in one canonical unit per kind (weight kg, height
cm, serum creatinine mg/dL, albumin g/L) next to the value and unit as entered.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from audit.querysets import AuditedManager


class EnteredInError(models.Model):
    """Clinical entries are never deleted: a wrong one is struck, with who marked it, when and why."""

    entered_in_error = models.BooleanField(default=False)
    error_reason = models.TextField(blank=True)
    error_marked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    error_marked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    def mark_in_error(self, *, reason: str, user: Any) -> None:
        """Strike this entry (who, when, why); a second mark or an empty reason is refused."""
        if not reason.strip():
            raise ValidationError({"reason": ["say why the entry is wrong"]})
        if self.entered_in_error:
            raise ValidationError({"reason": ["this entry is already marked as entered in error"]})
        self.entered_in_error = True
        self.error_reason = reason.strip()
        self.error_marked_by = user
        self.error_marked_at = timezone.now()
        self.save(update_fields=["entered_in_error", "error_reason", "error_marked_by", "error_marked_at"])


# Each concrete model lists it in its constraints; %(class)s makes the name unique per model.
ERROR_HAS_REASON = models.CheckConstraint(
    condition=Q(entered_in_error=False) | ~Q(error_reason=""), name="%(app_label)s_%(class)s_error_has_reason"
)


def public_id_field() -> models.UUIDField:
    """The identifier of a row in URLs and the API: random, so that nobody can count or guess records."""
    return models.UUIDField(default=uuid.uuid4, unique=True, editable=False)


class Patient(models.Model):
    class Sex(models.TextChoices):
        FEMALE = "female", "Female"
        MALE = "male", "Male"
        OTHER = "other", "Other"
        UNKNOWN = "unknown", "Unknown"

    public_id = public_id_field()
    mrn = models.CharField("hospital identifier (MRN)", max_length=64, unique=True)
    mrn_key = models.CharField(
        max_length=64, unique=True, editable=False, help_text="the MRN normalised (patients.identifiers)"
    )
    family_name = models.CharField(max_length=120)
    given_name = models.CharField(max_length=120)
    birth_date = models.DateField()
    sex = models.CharField(max_length=8, choices=Sex.choices)
    ward = models.CharField(max_length=120, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AuditedManager()

    class Meta:
        ordering = ("family_name", "given_name", "mrn")
        constraints = (
            models.CheckConstraint(condition=Q(birth_date__gte="1900-01-01"), name="patient_birth_plausible"),
        )

    def __str__(self) -> str:
        return f"{self.family_name.upper()}, {self.given_name} ({self.mrn})"


class CareTeam(models.Model):
    """A team of clinicians and pharmacists caring for the patients of some wards, or of the whole hospital.

    A user sees the patients of the wards their teams cover and the patients put on their teams; anyone
    else's patient only through a logged emergency access (``BreakGlassAccess``). IT maintains the teams.
    """

    name = models.CharField(max_length=120, unique=True)
    wards = models.JSONField(default=list, blank=True, help_text='ward names the team covers, e.g. ["ICU"]')
    covers_all_wards = models.BooleanField(
        default=False, help_text="a hospital-wide service (e.g. the TDM pharmacy): every patient"
    )
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="care_teams")
    patients = models.ManyToManyField(Patient, blank=True, related_name="care_teams")
    active = models.BooleanField(default=True)

    objects = AuditedManager()

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class BreakGlassAccess(models.Model):
    """Emergency access to a patient outside one's care teams: a stated reason, a time limit, an entry."""

    public_id = public_id_field()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="break_glass_accesses")
    reason = models.TextField()
    granted_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    objects = AuditedManager()

    class Meta:
        ordering = ("-granted_at", "-pk")
        indexes = (models.Index(fields=("user", "patient", "expires_at")),)
        constraints = (models.CheckConstraint(condition=~Q(reason=""), name="break_glass_has_reason"),)

    def __str__(self) -> str:
        return f"{self.user} → {self.patient} until {self.expires_at:%Y-%m-%d %H:%M}"


class CovariateMeasurement(EnteredInError):
    """One measured value of a covariate at a time (weight, creatinine, ... or a model-specific quantity)."""

    public_id = public_id_field()
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="measurements")
    kind = models.SlugField(max_length=60, help_text="weight, height, serum_creatinine, albumin, ...")
    value = models.FloatField(help_text="in the canonical unit of the kind")
    unit = models.CharField(max_length=24, help_text="canonical unit of the value")
    value_as_entered = models.FloatField()
    unit_as_entered = models.CharField(max_length=24)
    measured_at = models.DateTimeField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    objects = AuditedManager()

    class Meta:
        ordering = ("measured_at", "pk")
        indexes = (models.Index(fields=("patient", "kind", "measured_at")),)
        constraints = (
            models.CheckConstraint(condition=Q(value__gte=0), name="measurement_not_negative"),
            models.CheckConstraint(
                condition=~Q(kind="weight") | Q(value__gte=0.3, value__lte=400),
                name="measurement_weight_plausible",
            ),
            models.CheckConstraint(
                condition=~Q(kind="height") | Q(value__gte=20, value__lte=260),
                name="measurement_height_plausible",
            ),
            models.CheckConstraint(
                condition=~Q(kind="serum_creatinine") | Q(value__gte=0.05, value__lte=30),
                name="measurement_creatinine_plausible",
            ),
            ERROR_HAS_REASON,
        )

    def __str__(self) -> str:
        return f"{self.kind} {self.value:g} {self.unit} at {self.measured_at:%Y-%m-%d %H:%M}"


class SupportSession(EnteredInError):
    """A renal replacement or ECMO session with its start and end (None while it runs).

    Dialysis is recorded as sessions, not as a flag that flips: a model's covariates and validity domain read
    the sessions (e.g. a patient-level "on intermittent haemodialysis" flag, or a domain that excludes CRRT).
    """

    class Modality(models.TextChoices):
        INTERMITTENT_HAEMODIALYSIS = "intermittent_haemodialysis", "Intermittent haemodialysis"
        CRRT = "crrt", "Continuous renal replacement therapy (CRRT)"
        PERITONEAL_DIALYSIS = "peritoneal_dialysis", "Peritoneal dialysis"
        ECMO = "ecmo", "Extracorporeal membrane oxygenation (ECMO)"

    public_id = public_id_field()
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="support_sessions")
    modality = models.CharField(max_length=32, choices=Modality.choices)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True, help_text="empty while the session runs")
    note = models.TextField(blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)
    end_recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    end_recorded_at = models.DateTimeField(null=True, blank=True)

    objects = AuditedManager()

    class Meta:
        ordering = ("started_at", "pk")
        indexes = (models.Index(fields=("patient", "started_at")),)
        constraints = (
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gt=models.F("started_at")),
                name="support_session_ends_after_start",
            ),
            ERROR_HAS_REASON,
        )

    def __str__(self) -> str:
        end = f"{self.ended_at:%Y-%m-%d %H:%M}" if self.ended_at else "ongoing"
        return f"{self.get_modality_display()} {self.started_at:%Y-%m-%d %H:%M} - {end}"


class Genotype(EnteredInError):
    """A genotyping result; the phenotype is called by the engine's PGx tables, not typed by hand."""

    public_id = public_id_field()
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="genotypes")
    gene = models.CharField(max_length=20)
    diplotype = models.CharField(max_length=60)
    phenotype = models.CharField(max_length=80)
    phenotype_source = models.TextField(help_text="guideline table and version that called it, and how")
    lab = models.CharField(max_length=200)
    reported_on = models.DateField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    objects = AuditedManager()

    class Meta:
        ordering = ("gene", "-reported_on", "-pk")
        constraints = (ERROR_HAS_REASON,)

    def __str__(self) -> str:
        return f"{self.gene} {self.diplotype} ({self.phenotype})"


class ConsentRecord(models.Model):
    """A patient's decision for one scope; the latest record per scope is the current status."""

    class Scope(models.TextChoices):
        MODEL_BASED_DOSING = "model_based_dosing", "Model-based dosing"
        GENOTYPE_USE = "genotype_use", "Use of genotype for dosing"
        RESEARCH_USE = "research_use", "Use of data for research"

    class Status(models.TextChoices):
        GRANTED = "granted", "Granted"
        REFUSED = "refused", "Refused"
        WITHDRAWN = "withdrawn", "Withdrawn"

    public_id = public_id_field()
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="consents")
    scope = models.CharField(max_length=32, choices=Scope.choices)
    status = models.CharField(max_length=16, choices=Status.choices)
    note = models.TextField(blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    objects = AuditedManager()

    class Meta:
        ordering = ("scope", "-recorded_at", "-pk")

    def __str__(self) -> str:
        return f"{self.get_scope_display()}: {self.get_status_display()}"
