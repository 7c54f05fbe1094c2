"""Therapy courses, dose administrations, drug levels, Bayesian updates and recommendations.

A course pins the exact model version it uses. Every Bayesian update stores the exact engine inputs (the case
document), the engine and model versions, its results, timings or its error, so a result can be reviewed and
reproduced later. Doses and levels are never deleted: wrong entries are marked ``entered_in_error``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from audit.querysets import AuditedManager
from models_catalog.fields import OrderedJSONField
from models_catalog.models import Drug, ModelVersion, TargetProtocol
from patients.models import ERROR_HAS_REASON, EnteredInError, Patient, public_id_field


class TherapyCourse(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        CLOSED = "closed", "Closed"

    public_id = public_id_field()
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="courses")
    drug = models.ForeignKey(Drug, on_delete=models.PROTECT, related_name="courses")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="courses")
    target_protocol = models.ForeignKey(
        TargetProtocol, null=True, blank=True, on_delete=models.PROTECT, related_name="courses"
    )
    target = models.JSONField(help_text="the engine target document in force for this course")
    indication = models.CharField(max_length=200)
    mic_mg_per_l = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    consent_override_reason = models.TextField(
        blank=True, help_text="why model-based dosing proceeds without the patient's consent"
    )
    missing_data_reason = models.TextField(
        blank=True, help_text="why the course was opened before the record held everything the model needs"
    )
    no_organ_support_confirmed_at = models.DateTimeField(
        null=True, blank=True, help_text="when the opener confirmed: no dialysis, CRRT or ECMO"
    )
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    opened_at = models.DateTimeField(auto_now_add=True)

    objects = AuditedManager()

    class Meta:
        ordering = ("-opened_at", "-pk")
        constraints = (
            models.CheckConstraint(
                condition=Q(mic_mg_per_l__isnull=True) | Q(mic_mg_per_l__gt=0), name="course_mic_positive"
            ),
        )

    def __str__(self) -> str:
        return f"{self.drug} for {self.patient} ({self.indication})"


class DoseAdministration(EnteredInError):
    public_id = public_id_field()
    course = models.ForeignKey(TherapyCourse, on_delete=models.PROTECT, related_name="doses")
    given_at = models.DateTimeField()
    amount_mg = models.FloatField()
    route = models.CharField(max_length=32)
    infusion_duration_h = models.FloatField(null=True, blank=True)
    notices = models.JSONField(
        default=list,
        blank=True,
        help_text="what was unusual when it was recorded and confirmed, with the reason",
    )
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    objects = AuditedManager()

    class Meta:
        ordering = ("given_at", "pk")
        indexes = (models.Index(fields=("course", "given_at")),)
        constraints = (
            models.CheckConstraint(condition=Q(amount_mg__gt=0), name="dose_amount_positive"),
            models.CheckConstraint(
                condition=Q(infusion_duration_h__isnull=True) | Q(infusion_duration_h__gt=0),
                name="dose_infusion_duration_positive",
            ),
            models.CheckConstraint(
                condition=~Q(route="iv_infusion") | Q(infusion_duration_h__isnull=False),
                name="dose_infusion_has_duration",
            ),
            ERROR_HAS_REASON,
        )

    def __str__(self) -> str:
        return f"{self.amount_mg:g} mg {self.route} at {self.given_at:%Y-%m-%d %H:%M}"


class DrugLevel(EnteredInError):
    """A measured concentration. ``value`` is as reported; ``value_model_unit`` is in the model's unit.

    A new level is scored against what the patient's model expects before it enters a fit
    (:mod:`mipd_engine.plausibility`): ``pending`` until scored, then ``accepted``, or ``held`` (kept out of
    every fit until a clinician confirms it, with the reason, or marks it entered in error).
    """

    class Plausibility(models.TextChoices):
        PENDING = "pending", "Not yet checked"
        ACCEPTED = "accepted", "Plausible"
        HELD = "held", "Held: implausible, not used"
        CONFIRMED = "confirmed", "Confirmed by a clinician"

    public_id = public_id_field()
    course = models.ForeignKey(TherapyCourse, on_delete=models.PROTECT, related_name="levels")
    sampled_at = models.DateTimeField()
    value = models.FloatField(null=True, blank=True, help_text="empty when below the LLOQ")
    unit = models.CharField(max_length=16)
    value_model_unit = models.FloatField(null=True, blank=True)
    lloq = models.FloatField(null=True, blank=True, help_text="lower limit of quantification, in unit")
    lloq_model_unit = models.FloatField(null=True, blank=True)
    below_lloq = models.BooleanField(default=False)
    assay = models.CharField(max_length=120, blank=True)
    model_output = models.CharField(
        max_length=40, blank=True, help_text="model output it measures; default first"
    )
    excluded = models.BooleanField(default=False)
    exclusion_reason = models.TextField(blank=True)
    excluded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    excluded_at = models.DateTimeField(null=True, blank=True)
    value_as_entered = models.FloatField(
        null=True, blank=True, help_text="the number typed, when it was below the LLOQ (stored as below)"
    )
    plausibility = models.CharField(max_length=10, choices=Plausibility.choices, default=Plausibility.PENDING)
    plausibility_score = models.JSONField(
        default=dict,
        blank=True,
        help_text="the level against the predictive distribution of the data before it",
    )
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirmation_reason = models.TextField(blank=True)
    notices = models.JSONField(default=list, blank=True, help_text="what the clinician should know about it")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    objects = AuditedManager()

    class Meta:
        ordering = ("sampled_at", "pk")
        indexes = (models.Index(fields=("course", "sampled_at")),)
        constraints = (
            models.CheckConstraint(
                condition=Q(value__isnull=True) | Q(value__gte=0), name="level_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(below_lloq=True, value__isnull=True, lloq__isnull=False)
                | Q(below_lloq=False, value__isnull=False),
                name="level_value_or_below_lloq",
            ),
            models.CheckConstraint(
                condition=Q(lloq__isnull=True) | Q(lloq__gt=0), name="level_lloq_positive"
            ),
            models.CheckConstraint(
                condition=Q(excluded=False) | ~Q(exclusion_reason=""), name="level_exclusion_has_reason"
            ),
            models.CheckConstraint(
                condition=~Q(plausibility="confirmed") | ~Q(confirmation_reason=""),
                name="level_confirmation_has_reason",
            ),
            ERROR_HAS_REASON,
        )

    def __str__(self) -> str:
        shown = f"< {self.lloq:g}" if self.below_lloq else f"{self.value:g}"
        return f"{shown} {self.unit} at {self.sampled_at:%Y-%m-%d %H:%M}"


class BayesianUpdate(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Done"
        FAILED = "failed", "Failed"
        SUPERSEDED = "superseded", "Superseded"

    public_id = public_id_field()
    course = models.ForeignKey(TherapyCourse, on_delete=models.PROTECT, related_name="updates")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=200, help_text="what asked for it: a new level, a dose, ...")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    engine_version = models.CharField(max_length=32, blank=True)
    inputs = OrderedJSONField(  # the model file inside keeps its key order
        default=dict, blank=True, help_text="the exact case document given to the engine"
    )
    inputs_sha256 = models.CharField(max_length=64, blank=True)
    origin = models.DateTimeField(null=True, blank=True, help_text="clock time of t = 0 h in inputs/results")
    seed = models.BigIntegerField(
        null=True, blank=True, help_text="random seed of the posterior draws, derived from the inputs"
    )
    results = models.JSONField(default=dict, blank=True)
    timings_s = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveIntegerField(
        default=0, help_text="deliveries to a worker used up: claims, and deliveries the broker lost"
    )
    task_id = models.CharField(max_length=255, blank=True, help_text="Celery task id of the current claim")
    claim_token = models.UUIDField(
        null=True, blank=True, help_text="fences the results: only the run holding this token may write them"
    )

    objects = AuditedManager()

    class Meta:
        ordering = ("-requested_at", "-pk")
        indexes = (
            models.Index(fields=("course", "status")),
            # The reaper and /healthz read only the unfinished rows: a small partial index.
            models.Index(
                fields=("status", "requested_at"),
                condition=Q(status__in=("queued", "running")),
                name="update_unfinished_idx",
            ),
        )

    def __str__(self) -> str:
        return f"update {self.pk} of course {self.course_id}: {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED, self.Status.SUPERSEDED)


class Recommendation(models.Model):
    class Status(models.TextChoices):
        PENDING_REVIEW = "pending_review", "Awaiting pharmacist review"
        APPROVED = "approved", "Approved"
        MODIFIED = "modified", "Approved with changes"
        REJECTED = "rejected", "Rejected"
        SUPERSEDED = "superseded", "Superseded"

    public_id = public_id_field()
    course = models.ForeignKey(TherapyCourse, on_delete=models.PROTECT, related_name="recommendations")
    update = models.OneToOneField(BayesianUpdate, on_delete=models.PROTECT, related_name="recommendation")
    basis = models.CharField(max_length=200, help_text="Bayesian (levels), a priori (covariates) or genotype")
    regimen = models.JSONField(help_text="dose_mg, interval_h, duration_h, start time")
    predicted = models.JSONField(help_text="target metric: median and 90 % credible interval, with unit")
    probability_of_target = models.FloatField()
    probability_of_toxicity = models.FloatField(null=True, blank=True)
    rationale = models.TextField()
    uncertainty_text = models.TextField(help_text="the uncertainty in plain words")
    warnings = models.JSONField(default=list, blank=True)
    alerts = models.JSONField(
        default=list, blank=True, help_text="warnings the reviewer must acknowledge: code, message"
    )
    acknowledged_alerts = models.JSONField(
        default=list, blank=True, help_text="codes the reviewer acknowledged"
    )
    candidates = models.JSONField(default=list, blank=True, help_text="the other ranked regimens")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING_REVIEW)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)
    final_regimen = models.JSONField(null=True, blank=True)
    final_figures = models.JSONField(
        null=True, blank=True, help_text="the approved regimen's order, PTA, P(toxic), exposure and forecast"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AuditedManager()

    class Meta:
        ordering = ("-created_at", "-pk")
        constraints = (
            models.CheckConstraint(
                condition=Q(probability_of_target__gte=0, probability_of_target__lte=1),
                name="rec_pta_probability",
            ),
        )

    def __str__(self) -> str:
        return f"recommendation {self.pk} ({self.status})"


class ElectronicSignature(models.Model):
    """A pharmacist's signature of a review (21 CFR Part 11, EU GMP Annex 11): see ``dosing.signatures``.

    Who (the printed name at the time), when (UTC), what it means, and the SHA-256 of the canonical text of
    exactly what was signed: the update's inputs hash, the model version and its document hash, the engine
    version, the recommended and the approved regimen. One per recommendation: of two pharmacists signing at
    once, the database lets exactly one in.
    """

    class Meaning(models.TextChoices):
        APPROVED = "approved", "Approved: I approve this regimen for administration"
        MODIFIED = "modified", "Approved with changes: I approve the regimen I stated instead"
        REJECTED = "rejected", "Rejected: this recommendation must not be given"

    public_id = public_id_field()
    recommendation = models.OneToOneField(Recommendation, on_delete=models.PROTECT, related_name="signature")
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    printed_name = models.CharField(
        max_length=300, help_text="the signer's full name and user name when signing"
    )
    signed_at = models.DateTimeField(help_text="UTC")
    meaning = models.CharField(max_length=16, choices=Meaning.choices)
    content = models.TextField(help_text="canonical JSON of what was signed")
    content_sha256 = models.CharField(max_length=64)
    method = models.CharField(max_length=200, help_text="how the signer was authenticated at signing")

    objects = AuditedManager()

    class Meta:
        ordering = ("-signed_at", "-pk")

    def __str__(self) -> str:
        return f"{self.printed_name}, {self.signed_at:%Y-%m-%d %H:%M} UTC: {self.get_meaning_display()}"


class UpdateDispatch(models.Model):
    """Transactional outbox: one row per update to hand to the broker, written in the update's transaction.

    A row without ``dispatched_at`` is still owed to the broker (it was down, or the process died before
    delivering); the dispatcher delivers it on commit and again periodically until the broker takes it.
    """

    update = models.OneToOneField(BayesianUpdate, on_delete=models.PROTECT, related_name="dispatch")
    created_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ("created_at", "pk")
        indexes = (models.Index(fields=("dispatched_at", "created_at")),)

    def __str__(self) -> str:
        state = "delivered" if self.dispatched_at else "pending delivery"
        return f"dispatch of update {self.update_id}: {state}"


class DrugModelStrategy(models.Model):
    """How the hospital uses the drug's published models (issue 17): the course's pinned model only, the
    best-fitting eligible model ("select"), or all eligible models averaged (Uster et al. 2021).

    ``prior_weights`` maps a model id to its stated prior weight (1 when absent); curators edit it, and every
    change is audited with its reason. A drug without a row uses its courses' pinned models.
    """

    class Mode(models.TextChoices):
        PINNED = "pinned", "One pinned model (the course's)"
        SELECT = "select", "Selection: the best-fitting eligible model"
        AVERAGE = "average", "Averaging over the eligible models"

    drug = models.OneToOneField(Drug, on_delete=models.PROTECT, related_name="model_strategy")
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.PINNED)
    prior_weights = models.JSONField(
        default=dict, blank=True, help_text="model id -> prior weight (a positive number; 1 when absent)"
    )
    reason = models.TextField(help_text="why the hospital chose this (protocol, committee decision)")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    objects = AuditedManager()

    class Meta:
        constraints = (
            models.CheckConstraint(
                condition=Q(mode__in=["pinned", "select", "average"]), name="drug_model_strategy_mode_known"
            ),
        )

    def __str__(self) -> str:
        return f"{self.drug}: {self.get_mode_display()}"

    def prior_weight(self, model_id: str) -> float:
        return float(self.prior_weights.get(model_id, 1.0))


class MonitoringDevice(models.Model):
    """A type of continuous concentration monitor the hospital uses, with its declared residual error.

    The error model (the engine's ``error`` object: additive, proportional, combined or exponential) comes
    from the device's validation against the laboratory assay; ``error_source`` says which. A series copies
    it when it is imported, so a later change to the device type never changes a stored fit's inputs.
    """

    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    manufacturer = models.CharField(max_length=200, blank=True)
    unit = models.CharField(max_length=16, help_text="unit of the values the device exports, e.g. mg/L")
    residual_error = models.JSONField(
        help_text='e.g. {"model": "combined", "additive": 0.8, "proportional": 0.12} (model-format.md)'
    )
    error_source = models.TextField(help_text="the validation the error figures come from")
    active = models.BooleanField(default=True)

    objects = AuditedManager()

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class MonitoringSeries(EnteredInError):
    """A concentration time series of a monitoring device, imported from its CSV (``dosing.monitoring``).

    ``points`` are ``[hours since first_at, value in the model's unit]`` pairs, strictly increasing in time;
    ``residual_error`` is the device's error model at import, used for these points in every fit.
    """

    public_id = public_id_field()
    course = models.ForeignKey(TherapyCourse, on_delete=models.PROTECT, related_name="monitoring_series")
    device = models.ForeignKey(MonitoringDevice, on_delete=models.PROTECT, related_name="series")
    device_serial = models.CharField(max_length=120, blank=True)
    residual_error = models.JSONField(help_text="the device's error model at import, in the model's unit")
    model_output = models.CharField(max_length=40, blank=True, help_text="model output it measures")
    unit = models.CharField(max_length=16, help_text="the model output's unit the points are stored in")
    points = models.JSONField(help_text="[hours after first_at, value] pairs")
    n_points = models.PositiveIntegerField()
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()
    source_name = models.CharField(max_length=255, help_text="the uploaded file's name")
    source_sha256 = models.CharField(max_length=64, help_text="SHA-256 of the uploaded file")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(auto_now_add=True)

    objects = AuditedManager()

    class Meta:
        ordering = ("first_at", "pk")
        constraints = (
            models.CheckConstraint(condition=Q(n_points__gt=0), name="series_has_points"),
            models.CheckConstraint(condition=Q(last_at__gte=F("first_at")), name="series_time_order"),
            models.UniqueConstraint(
                fields=("course", "source_sha256"),
                condition=Q(entered_in_error=False),
                name="series_imported_once",
            ),
            ERROR_HAS_REASON,
        )

    def __str__(self) -> str:
        return f"{self.device} series of {self.n_points} points from {self.first_at:%Y-%m-%d %H:%M}"

    @property
    def error_text(self) -> str:
        error = self.residual_error
        parts = [f"{key} {error[key]:g}" for key in ("additive", "proportional") if error.get(key)]
        return f"{error.get('model')} ({', '.join(parts)})"
