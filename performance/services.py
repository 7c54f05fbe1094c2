"""Writes of the performance app: a level's prospective score, the sequential tests, alerts, summaries."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import caches
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.roles import Role
from accounts.selectors import user_has_role
from dosing import adapters
from dosing.models import DrugLevel, TherapyCourse
from models_catalog.models import ModelVersion
from performance import sequential, statistics
from performance.models import CusumTrack, PerformanceAlert, PerformanceSummary, ProspectiveScore
from performance.subgroups import DIMENSION_LABELS, DIMENSIONS, Subgroups, subgroups_at

logger = logging.getLogger(__name__)

# Levels whose errors count in the statistics: accepted at scoring, or held and then confirmed by a clinician.
COUNTED = (DrugLevel.Plausibility.ACCEPTED, DrugLevel.Plausibility.CONFIRMED)


def _subgroups(course: TherapyCourse, case: adapters.CourseCase, time_h: float) -> Subgroups:
    return subgroups_at(facts=case.facts, time_h=time_h, ward=course.patient.ward)


def score_record_from_hook(
    *, level: DrugLevel, course: TherapyCourse, case: adapters.CourseCase, score: dict[str, Any]
) -> ProspectiveScore | None:
    """dosing's level-scored hook: store the prospective score of a quantified level (a result below the
    LLOQ has no prediction error and is left out)."""
    if level.below_lloq or score.get("value") is None or score.get("interval_50") is None:
        return None
    time_h = adapters.hours(level.sampled_at, case.origin)
    return score_record(
        level=level,
        model_version=course.model_version,
        course=course,
        score=score,
        unit=case.model.outputs[score["output"]].unit,
        subgroups=_subgroups(course, case, time_h),
    )


def score_record(
    *,
    level: DrugLevel,
    model_version: ModelVersion,
    course: TherapyCourse,
    score: dict[str, Any],
    unit: str,
    subgroups: Subgroups,
) -> ProspectiveScore:
    """Store the score once per level and model version; a new accepted one advances its subgroups' tests.

    Safe to run twice: a second call finds the row and changes nothing.
    """
    observed = float(score["value"])
    median = float(score["median"])
    with transaction.atomic():
        row, created = ProspectiveScore.objects.get_or_create(
            level=level,
            model_version=model_version,
            defaults={
                "course": course,
                "patient_id": course.patient_id,
                "scored_at": timezone.now(),
                "sampled_at": level.sampled_at,
                "basis": score.get("basis", ""),
                "accepted": not score.get("held", False),
                "output": score.get("output", ""),
                "unit": unit,
                "observed": observed,
                "predicted_median": median,
                "pi50_low": float(score["interval_50"][0]),
                "pi50_high": float(score["interval_50"][1]),
                "pi90_low": float(score["interval_90"][0]),
                "pi90_high": float(score["interval_90"][1]),
                "error": observed - median,
                "relative_error": (observed - median) / median,
                "pit": min(1.0, max(0.0, float(score["quantile"]))),
                **subgroups.as_dict(),
            },
        )
        if created and row.accepted:
            tracks_advance(score=row)
    if created:
        transaction.on_commit(lambda: _summary_refresh_later(model_version.pk))
    return row


def _summary_refresh_later(model_version_id: int) -> None:
    """Queue a recompute of the model version's figures, at most one per REFRESH_PERIOD_S with a broker.

    A recompute reads every score of the version (seconds at 100,000 levels): one per new level would keep
    a worker busy on a morning round, so the first new score books the period (a shared cache key) and
    queues the recompute for its end, when it takes in every score of the period. In process (no broker)
    it runs at once.
    """
    from performance.tasks import refresh_summary

    period_s = settings.PERFORMANCE_REFRESH_PERIOD_S
    try:
        if settings.CELERY_TASK_ALWAYS_EAGER or period_s <= 0:
            refresh_summary.delay(model_version_id=model_version_id)
            return
        key = f"performance-refresh:{model_version_id}"
        if not caches[settings.THROTTLE_CACHE].add(key, 1, timeout=period_s):
            return  # booked: the queued recompute will include this score
        refresh_summary.apply_async(kwargs={"model_version_id": model_version_id}, countdown=period_s)
    except Exception:  # the broker away: the page says the figures are behind and offers a recompute
        logger.warning("performance summary of model version %s not queued", model_version_id, exc_info=True)


def tracks_advance(*, score: ProspectiveScore) -> list[PerformanceAlert]:
    """One more level in each of its subgroups' CUSUMs (rows locked: concurrent levels add in turn); an
    alert is raised where a statistic crosses the threshold and no alert of that test is open."""
    raised = []
    subgroups = Subgroups(**{f: getattr(score, f) for f in Subgroups.__dataclass_fields__})
    for dimension, band in subgroups.memberships():
        track, _ = CusumTrack.objects.get_or_create(
            model_version_id=score.model_version_id, dimension=dimension, band=band
        )
        track = CusumTrack.objects.select_for_update().get(pk=track.pk)
        state = sequential.step(
            sequential.CusumState(track.n_levels, track.bias_high, track.bias_low, track.dispersion),
            score.pit,
        )
        track.n_levels = state.n
        track.bias_high, track.bias_low, track.dispersion = state.bias_high, state.bias_low, state.dispersion
        track.save()
        for test in state.alarms():
            open_already = PerformanceAlert.objects.filter(
                model_version_id=score.model_version_id,
                dimension=dimension,
                band=band,
                test=test,
                status=PerformanceAlert.Status.OPEN,
            ).exists()
            if not open_already:
                raised.append(
                    PerformanceAlert.objects.create(
                        model_version_id=score.model_version_id,
                        dimension=dimension,
                        band=band,
                        test=test,
                        statistic=state.statistic(test),
                        threshold=sequential.THRESHOLD,
                        n_levels=state.n,
                        raised_at=timezone.now(),
                    )
                )
    return raised


def alert_close(*, alert: PerformanceAlert, user: AbstractBaseUser, reason: str) -> PerformanceAlert:
    """A curator closes an alert with the reason (e.g. the model was recalibrated, or the drift is explained);
    the subgroup's test starts again from zero, so a persisting problem raises a new alert."""
    if not user_has_role(user=user, role=Role.MODEL_CURATOR):
        raise PermissionDenied("only model curators close performance alerts")
    if not reason.strip():
        raise ValidationError({"reason": "Say why the alert is closed"})
    with transaction.atomic():
        alert = PerformanceAlert.objects.select_for_update().get(pk=alert.pk)
        if alert.status != PerformanceAlert.Status.OPEN:
            raise ValidationError("This alert is already closed")
        alert.status = PerformanceAlert.Status.CLOSED
        alert.closed_by = user
        alert.closed_at = timezone.now()
        alert.close_reason = reason.strip()
        alert.full_clean()
        alert.save()
        CusumTrack.objects.filter(
            model_version_id=alert.model_version_id, dimension=alert.dimension, band=alert.band
        ).update(**{alert.test: 0.0})
    return alert


def _statistics(rows: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, Any]:
    result = statistics.performance(
        observed=rows["observed"][mask],
        median=rows["median"][mask],
        pi50=rows["pi50"][mask],
        pi90=rows["pi90"][mask],
        pit=rows["pit"][mask],
    ).as_dict()
    result["n_patients"] = int(np.unique(rows["patient"][mask]).size)
    return result


def summary_refresh(
    *, model_version: ModelVersion, only_if_behind: bool = False
) -> PerformanceSummary | None:
    """Recompute the statistics of every subgroup of the model version from its counted scores.

    ``only_if_behind``: do nothing when the stored summary already includes the newest score (many queued
    refreshes after a burst of levels cost one computation).
    """
    if only_if_behind:
        newest = ProspectiveScore.objects.filter(model_version=model_version).order_by("-pk").first()
        current = PerformanceSummary.objects.filter(model_version=model_version).first()
        if newest is None or (current is not None and current.last_score_id >= newest.pk):
            return current
    scores = ProspectiveScore.objects.filter(
        model_version=model_version, level__entered_in_error=False, level__plausibility__in=COUNTED
    ).order_by("pk")
    fields = [
        "pk",
        "patient_id",
        "observed",
        "predicted_median",
        "pi50_low",
        "pi50_high",
        "pi90_low",
        "pi90_high",
        "pit",
        *DIMENSIONS[1:],
    ]
    values = list(scores.values_list(*fields))
    last = ProspectiveScore.objects.filter(model_version=model_version).order_by("-pk").first()
    if last is None:
        return None
    numeric = np.array([v[:9] for v in values], dtype=float).reshape(-1, 9)
    rows = {
        "patient": numeric[:, 1],
        "observed": numeric[:, 2],
        "median": numeric[:, 3],
        "pi50": numeric[:, 4:6],
        "pi90": numeric[:, 6:8],
        "pit": numeric[:, 8],
    }
    groups: list[dict[str, Any]] = [
        {
            "dimension": "all",
            "label": DIMENSION_LABELS["all"],
            "band": "all",
            **_statistics(rows, np.ones(len(values), dtype=bool)),
        }
    ]
    for offset, dimension in enumerate(DIMENSIONS[1:]):
        column = np.array([v[9 + offset] for v in values], dtype=object)
        for band in sorted({b for b in column if b and b != "not recorded"}):
            groups.append(
                {
                    "dimension": dimension,
                    "label": DIMENSION_LABELS[dimension],
                    "band": band,
                    **_statistics(rows, column == band),
                }
            )
    summary, _ = PerformanceSummary.objects.update_or_create(
        model_version=model_version,
        defaults={
            "computed_at": timezone.now(),
            "last_score_id": last.pk,
            "n_scores": len(values),
            "data": {"groups": groups, "unit": last.unit, "output": last.output},
        },
    )
    return summary


def alerts_for_course(*, course: TherapyCourse, case: adapters.CourseCase) -> list[tuple[str, str]]:
    """dosing's recommendation-alert hook: the open alerts of the course's model version in a subgroup the
    patient belongs to now."""
    open_alerts = list(
        PerformanceAlert.objects.filter(
            model_version=course.model_version, status=PerformanceAlert.Status.OPEN
        )
    )
    if not open_alerts:
        return []
    member = set(_subgroups(course, case, case.now_h).memberships())
    return [
        (f"model_performance:{alert.pk}", alert_message(alert))
        for alert in open_alerts
        if (alert.dimension, alert.band) in member
    ]


def alert_message(alert: PerformanceAlert) -> str:
    where = (
        "all patients" if alert.dimension == "all" else f"{DIMENSION_LABELS[alert.dimension]} {alert.band}"
    )
    return (
        f"in this hospital, {alert.model_version} predicts {where} poorly: "
        f"{sequential.TEST_LABELS[alert.test]} over the last {alert.n_levels} levels of the subgroup "
        f"(sequential test, alert raised {timezone.localtime(alert.raised_at):%Y-%m-%d}); weigh the "
        "recommendation against the levels and consider a model whose local performance is better"
    )


def model_card_section(*, version: ModelVersion, user: AbstractBaseUser) -> dict[str, Any] | None:
    from performance import selectors

    return {
        "template": "performance/_card_section.html",
        "context": selectors.card_section(version=version, user=user),
    }
