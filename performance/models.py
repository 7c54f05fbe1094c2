"""Prospective scores of levels, the sequential tests watching them, alerts and stored summaries."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from dosing.models import DrugLevel, TherapyCourse
from models_catalog.models import ModelVersion
from patients.models import Patient


class ProspectiveScore(models.Model):
    """One quantified level against the forecast of its model version from the data before it.

    Concentrations are in the model output's unit (``unit``); the subgroup facts are those at the level's
    time, as recorded when it was scored.
    """

    level = models.ForeignKey(DrugLevel, on_delete=models.PROTECT, related_name="prospective_scores")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    course = models.ForeignKey(TherapyCourse, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    scored_at = models.DateTimeField(db_index=True, help_text="the order of the sequential tests")
    sampled_at = models.DateTimeField()
    basis = models.CharField(max_length=10, help_text="posterior (earlier levels) or prior (covariates)")
    accepted = models.BooleanField(help_text="accepted at scoring (not held as implausible)")
    output = models.CharField(max_length=64)
    unit = models.CharField(max_length=16)
    observed = models.FloatField()
    predicted_median = models.FloatField()
    pi50_low = models.FloatField()
    pi50_high = models.FloatField()
    pi90_low = models.FloatField()
    pi90_high = models.FloatField()
    error = models.FloatField(help_text="observed - predicted median, in unit")
    relative_error = models.FloatField(help_text="error / predicted median")
    pit = models.FloatField(help_text="the level's quantile in its predictive distribution")
    age_band = models.CharField(max_length=40)
    sex = models.CharField(max_length=16)
    weight_band = models.CharField(max_length=40)
    bmi_band = models.CharField(max_length=40)
    renal_band = models.CharField(max_length=40)
    renal_measure = models.CharField(max_length=40, blank=True)
    care_setting = models.CharField(max_length=16)
    renal_support = models.CharField(max_length=24)
    ancestry = models.CharField(max_length=60, blank=True)

    class Meta:
        constraints = (
            models.UniqueConstraint(fields=["level", "model_version"], name="one_score_per_level_and_model"),
            models.CheckConstraint(condition=Q(pit__gte=0.0, pit__lte=1.0), name="pit_is_a_probability"),
            models.CheckConstraint(condition=Q(predicted_median__gt=0.0), name="predicted_median_positive"),
            models.CheckConstraint(
                condition=Q(pi50_low__lte=models.F("pi50_high"), pi90_low__lte=models.F("pi90_high")),
                name="prediction_intervals_ordered",
            ),
        )
        indexes = (models.Index(fields=("model_version", "scored_at")),)

    def __str__(self) -> str:
        return f"level {self.level_id} on {self.model_version_id}: PIT {self.pit:.2f}"


class CusumTrack(models.Model):
    """The sequential tests of one subgroup of one model version, after ``n_levels`` accepted levels."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    dimension = models.CharField(max_length=16)
    band = models.CharField(max_length=60)
    n_levels = models.PositiveIntegerField(default=0)
    bias_high = models.FloatField(default=0.0)
    bias_low = models.FloatField(default=0.0)
    dispersion = models.FloatField(default=0.0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = (
            models.UniqueConstraint(
                fields=["model_version", "dimension", "band"], name="one_track_per_subgroup"
            ),
        )

    def __str__(self) -> str:
        return f"{self.model_version_id} {self.dimension}={self.band}: {self.n_levels} levels"


class PerformanceAlert(models.Model):
    """A subgroup's sequential test crossed its threshold: the model predicts those patients worse than it
    promises. Open until a curator closes it with a reason (its test then starts again from zero)."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    dimension = models.CharField(max_length=16)
    band = models.CharField(max_length=60)
    test = models.CharField(max_length=16)
    statistic = models.FloatField(help_text="the CUSUM when raised, in log-likelihood-ratio units")
    threshold = models.FloatField()
    n_levels = models.PositiveIntegerField(help_text="accepted levels of the subgroup when raised")
    raised_at = models.DateTimeField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.TextField(blank=True)

    class Meta:
        constraints = (
            models.UniqueConstraint(
                fields=["model_version", "dimension", "band", "test"],
                condition=Q(status="open"),
                name="one_open_alert_per_subgroup_test",
            ),
            models.CheckConstraint(
                condition=Q(status="open") | (~Q(close_reason="") & Q(closed_at__isnull=False)),
                name="closed_alert_has_reason",
            ),
        )
        ordering = ("-raised_at", "-pk")

    def __str__(self) -> str:
        return f"{self.status} alert {self.test} on {self.model_version_id} {self.dimension}={self.band}"


class PerformanceSummary(models.Model):
    """The statistics of every subgroup of a model version, as of the newest score they include."""

    model_version = models.OneToOneField(ModelVersion, on_delete=models.PROTECT, related_name="+")
    computed_at = models.DateTimeField()
    last_score_id = models.BigIntegerField(help_text="the newest ProspectiveScore included")
    n_scores = models.PositiveIntegerField()
    data = models.JSONField()

    def __str__(self) -> str:
        return f"performance of {self.model_version_id}: {self.n_scores} levels"
