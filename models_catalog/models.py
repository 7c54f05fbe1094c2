"""Drugs, versioned population models with their model cards, target protocols and PGx rule tables.

A ``ModelVersion`` holds one mipd-model/1 document (../shared/model-spec.md) exactly as the engine reads it.
Its life: draft → validated (a validation run reproduced its reference values) → published (a second curator
approved it: four-eyes) → retired. Editing a validated version sends it back to draft; once published, the
document is frozen and a change is a new version.
Therapy courses and fits point at the exact version they used, so retired versions stay readable.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from audit.querysets import AuditedManager, AuditedQuerySet
from models_catalog.fields import OrderedJSONField


class ImmutableVersionError(Exception):
    """Raised when code tries to change the document of a version that is no longer a draft."""


class Drug(models.Model):
    name = models.SlugField(max_length=64, unique=True, help_text="lower case; matches the model files' drug")
    display_name = models.CharField(max_length=120)
    atc_code = models.CharField(max_length=16, blank=True)
    molar_mass_g_per_mol = models.FloatField(
        null=True, blank=True, help_text="for converting molar concentrations (µmol/L) to mass (mg/L)"
    )
    routes = models.JSONField(default=list, blank=True, help_text='e.g. ["iv_infusion", "oral"]')
    concentration_unit = models.CharField(max_length=16, default="mg/L")
    dose_step_mg = models.FloatField(null=True, blank=True, help_text="practical dose step (IV)")
    strengths_mg = models.JSONField(default=list, blank=True, help_text="available unit strengths (oral)")
    max_single_dose_mg = models.FloatField(null=True, blank=True)
    max_daily_dose_mg = models.FloatField(null=True, blank=True)
    max_daily_dose_mg_per_kg = models.FloatField(null=True, blank=True)
    max_infusion_rate_mg_per_h = models.FloatField(null=True, blank=True)
    usual_infusion_duration_h = models.FloatField(
        null=True,
        blank=True,
        help_text="the dose form's default; lengthened to the rate limit for large doses",
    )
    standard_concentration_mg_per_ml = models.FloatField(
        null=True, blank=True, help_text="the infusion's standard concentration: gives the pump rate in mL/h"
    )
    interval_options_h = models.JSONField(
        default=list, blank=True, help_text="dosing intervals the regimen search considers, e.g. [8, 12, 24]"
    )
    continuous_infusion = models.BooleanField(default=False, help_text="consider continuous infusions")
    max_plausible_concentration = models.FloatField(
        null=True, blank=True, help_text="levels above this (concentration unit) are refused as implausible"
    )
    limits_source = models.TextField(blank=True, help_text="where the limits come from; review per hospital")
    updated_at = models.DateTimeField(auto_now=True)

    objects = AuditedManager()

    # The hospital's limits (curators edit them, audited) and the descriptive fields the library sets.
    LIMIT_FIELDS = (
        "dose_step_mg",
        "strengths_mg",
        "max_single_dose_mg",
        "max_daily_dose_mg",
        "max_daily_dose_mg_per_kg",
        "max_infusion_rate_mg_per_h",
        "usual_infusion_duration_h",
        "standard_concentration_mg_per_ml",
        "interval_options_h",
        "continuous_infusion",
        "max_plausible_concentration",
        "limits_source",
    )
    DESCRIPTION_FIELDS = ("display_name", "atc_code", "molar_mass_g_per_mol", "routes", "concentration_unit")

    class Meta:
        ordering = ("name",)
        constraints = (
            models.CheckConstraint(
                condition=Q(molar_mass_g_per_mol__isnull=True) | Q(molar_mass_g_per_mol__gt=0),
                name="drug_molar_mass_positive",
            ),
            models.CheckConstraint(
                condition=Q(dose_step_mg__isnull=True) | Q(dose_step_mg__gt=0), name="drug_dose_step_positive"
            ),
            models.CheckConstraint(
                condition=Q(max_single_dose_mg__isnull=True) | Q(max_single_dose_mg__gt=0),
                name="drug_max_single_dose_positive",
            ),
            models.CheckConstraint(
                condition=Q(max_daily_dose_mg__isnull=True) | Q(max_daily_dose_mg__gt=0),
                name="drug_max_daily_dose_positive",
            ),
            models.CheckConstraint(
                condition=Q(max_daily_dose_mg_per_kg__isnull=True) | Q(max_daily_dose_mg_per_kg__gt=0),
                name="drug_max_daily_dose_per_kg_positive",
            ),
            models.CheckConstraint(
                condition=Q(max_infusion_rate_mg_per_h__isnull=True) | Q(max_infusion_rate_mg_per_h__gt=0),
                name="drug_max_infusion_rate_positive",
            ),
            models.CheckConstraint(
                condition=Q(usual_infusion_duration_h__isnull=True) | Q(usual_infusion_duration_h__gt=0),
                name="drug_usual_infusion_duration_positive",
            ),
            models.CheckConstraint(
                condition=Q(standard_concentration_mg_per_ml__isnull=True)
                | Q(standard_concentration_mg_per_ml__gt=0),
                name="drug_standard_concentration_positive",
            ),
        )

    def __str__(self) -> str:
        return self.display_name


class ModelVersionQuerySet(AuditedQuerySet):
    def published(self) -> ModelVersionQuerySet:
        return self.filter(status=ModelVersion.Status.PUBLISHED)

    def visible_to_clinicians(self) -> ModelVersionQuerySet:
        """Published and retired versions: retired ones stay readable for the courses that used them."""
        return self.filter(status__in=[ModelVersion.Status.PUBLISHED, ModelVersion.Status.RETIRED])


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        VALIDATED = "validated", "Validated"
        PUBLISHED = "published", "Published"
        RETIRED = "retired", "Retired"

    drug = models.ForeignKey(Drug, on_delete=models.PROTECT, related_name="model_versions")
    model_id = models.SlugField(max_length=100, help_text="the document's id")
    version = models.CharField(max_length=32, help_text="semantic version, e.g. 1.0.0")
    title = models.CharField(max_length=300)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    document = OrderedJSONField(
        help_text="the mipd-model/1 document, as the engine reads it (key order kept)"
    )
    document_sha256 = models.CharField(max_length=64, help_text="SHA-256 of the canonical JSON of document")
    citation_text = models.TextField()
    doi = models.CharField(max_length=200, blank=True)
    model_card = OrderedJSONField(default=dict, blank=True)
    reference_checks = models.JSONField(default=list, blank=True)
    covariate_sources = models.JSONField(
        default=dict, blank=True, help_text="where each covariate comes from in the patient's record"
    )
    transcription = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    publication_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    publication_requested_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    published_at = models.DateTimeField(null=True, blank=True)
    retired_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    retired_at = models.DateTimeField(null=True, blank=True)
    retired_reason = models.TextField(blank=True)
    document_seal = models.CharField(
        max_length=64,
        blank=True,
        help_text="keyed hash of the published document's SHA-256 (models_catalog.integrity), checked at use",
    )

    objects = ModelVersionQuerySet.as_manager()

    class Meta:
        ordering = ("drug__name", "model_id", "-created_at")
        constraints = (
            models.UniqueConstraint(fields=["model_id", "version"], name="model_version_unique"),
            models.CheckConstraint(
                condition=~Q(status="published")
                | (Q(published_by__isnull=False) & Q(published_at__isnull=False)),
                name="model_version_published_has_approver",
            ),
            models.CheckConstraint(
                condition=~Q(status="published")
                | Q(publication_requested_by__isnull=True)
                | ~Q(publication_requested_by=models.F("published_by")),
                name="model_version_four_eyes",
            ),
        )

    def __str__(self) -> str:
        return f"{self.model_id} {self.version}"

    # What a published version's users rely on: none of it may change once published.
    FROZEN_FIELDS = ("document", "covariate_sources", "reference_checks", "drug_id", "model_id", "version")

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Last line of defence behind the services: the hash is recomputed from the document itself, and a
        # published or retired version's clinical content cannot change, whatever the caller set.
        from models_catalog.engine_adapter import canonical_sha256

        self.document_sha256 = canonical_sha256(self.document)
        if self.pk is not None:
            stored = ModelVersion.objects.filter(pk=self.pk).values("status", *self.FROZEN_FIELDS).first()
            if stored is not None and stored["status"] in (self.Status.PUBLISHED, self.Status.RETIRED):
                changed = [name for name in self.FROZEN_FIELDS if stored[name] != getattr(self, name)]
                if changed:
                    raise ImmutableVersionError(
                        f"{self} is {stored['status']}: {', '.join(changed)} cannot change; "
                        "create a new version"
                    )
        super().save(*args, **kwargs)

    @property
    def is_frozen(self) -> bool:
        """Published and retired versions never change; drafts and validated ones can still be edited."""
        return self.status in (self.Status.PUBLISHED, self.Status.RETIRED)


class ValidationRun(models.Model):
    """The engine parsed the document and reran its reference checks; the result is kept for review."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="validation_runs")
    document_sha256 = models.CharField(max_length=64)
    engine_version = models.CharField(max_length=32)
    success = models.BooleanField()
    message = models.TextField(blank=True)
    results = models.JSONField(default=list, help_text="one entry per reference check")
    run_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    run_at = models.DateTimeField(auto_now_add=True)

    objects = AuditedManager()

    class Meta:
        ordering = ("-run_at", "-pk")

    def __str__(self) -> str:
        return f"{self.model_version} validation {'passed' if self.success else 'failed'}"


class TargetProtocol(models.Model):
    """The target for a drug and indication; the hospital edits these (the engine's target document)."""

    drug = models.ForeignKey(Drug, on_delete=models.PROTECT, related_name="target_protocols")
    indication = models.CharField(max_length=200)
    target = models.JSONField(help_text="engine target document: metric, low, high, toxicity_limit, ...")
    source = models.TextField(help_text="guideline or institutional decision the target comes from")
    institution_note = models.TextField(blank=True, help_text="local changes and why")
    active = models.BooleanField(default=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = AuditedManager()

    class Meta:
        ordering = ("drug__name", "indication")
        constraints = (
            models.UniqueConstraint(fields=["drug", "indication"], name="target_protocol_unique_indication"),
        )

    def __str__(self) -> str:
        return f"{self.drug.name}: {self.indication}"

    @property
    def metric(self) -> str:
        return str(self.target.get("metric", ""))


class PgxRuleTable(models.Model):
    """A genotype-to-dose guideline table (CPIC), stored as the engine reads it, with its version."""

    table_id = models.SlugField(max_length=100)
    guideline = models.TextField()
    guideline_version = models.TextField(help_text="as the guideline table states it (may be a sentence)")
    doi = models.CharField(max_length=200, blank=True)
    document = OrderedJSONField()
    document_sha256 = models.CharField(max_length=64)
    loaded_at = models.DateTimeField(auto_now_add=True)

    objects = AuditedManager()

    class Meta:
        ordering = ("table_id", "-loaded_at")
        constraints = (
            models.UniqueConstraint(fields=["table_id", "document_sha256"], name="pgx_table_unique_content"),
        )

    def __str__(self) -> str:
        return f"{self.table_id} ({self.guideline_version})"


class CatalogEvent(models.Model):
    """Audit trail: who did what to which catalog object, and when."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=40)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )
    target_protocol = models.ForeignKey(
        TargetProtocol, null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )
    details = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    objects = AuditedManager()

    class Meta:
        ordering = ("-at", "-pk")

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action}"


class CatalogChangeRequest(models.Model):
    """A change that alters dosing, waiting for a second curator: new drug limits, a target protocol, or
    retiring a published version (four-eyes, like publishing). ``proposed`` is the complete new state."""

    class Kind(models.TextChoices):
        DRUG_LIMITS = "drug_limits", "Drug limits"
        TARGET_PROTOCOL = "target_protocol", "Target protocol"
        RETIRE_VERSION = "retire_version", "Retire a model version"

    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting a second curator"
        APPROVED = "approved", "Approved and applied"
        REJECTED = "rejected", "Rejected"
        WITHDRAWN = "withdrawn", "Withdrawn"
        SUPERSEDED = "superseded", "Superseded by a newer request"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    drug = models.ForeignKey(Drug, on_delete=models.PROTECT, related_name="change_requests")
    target_protocol = models.ForeignKey(
        TargetProtocol, null=True, blank=True, on_delete=models.PROTECT, related_name="change_requests"
    )
    indication = models.CharField(max_length=200, blank=True, help_text="target protocols: the indication")
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="change_requests"
    )
    current = models.JSONField(default=dict, blank=True, help_text="the state when the change was proposed")
    proposed = models.JSONField(default=dict, blank=True, help_text="the complete new state")
    reason = models.TextField(help_text="why the change is proposed")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)

    objects = AuditedManager()

    class Meta:
        ordering = ("-requested_at", "-pk")
        constraints = (
            models.CheckConstraint(
                condition=~Q(status="approved")
                | (Q(decided_by__isnull=False) & ~Q(decided_by=models.F("requested_by"))),
                name="change_request_four_eyes",
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="change_request_has_reason"),
        )

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.drug}: {self.get_status_display().lower()}"
