"""Reads of the dosing workflow: courses through the patient access helper, timelines, latest results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import Http404

from dosing.models import BayesianUpdate, Recommendation, TherapyCourse
from patients.selectors import require_clinical_role


def course_get(*, user: AbstractBaseUser | AnonymousUser, pk: int) -> TherapyCourse:
    """Courses are patient-scoped: the same role rule as patient_get."""
    require_clinical_role(user=user)
    try:
        return TherapyCourse.objects.select_related(
            "patient", "drug", "model_version", "target_protocol"
        ).get(pk=pk)
    except TherapyCourse.DoesNotExist:
        raise Http404("no such course") from None


@dataclass(frozen=True)
class TimelineEntry:
    at: Any
    kind: str  # "dose", "level", "covariate"
    text: str
    struck: bool  # entered in error or excluded
    note: str = ""
    pk: int | None = None  # doses and levels: what the "entered in error" form acts on


def course_timeline(*, course: TherapyCourse) -> list[TimelineEntry]:
    entries = [
        TimelineEntry(
            dose.given_at,
            "dose",
            f"{dose.amount_mg:g} mg {dose.route.replace('_', ' ')}"
            + (f" over {dose.infusion_duration_h:g} h" if dose.infusion_duration_h else ""),
            dose.entered_in_error,
            dose.error_reason,
            dose.pk,
        )
        for dose in course.doses.all()
    ]
    for level in course.levels.all():
        shown = (
            f"< {level.lloq:g} {level.unit} (below LLOQ)"
            if level.below_lloq
            else f"{level.value:g} {level.unit}"
        )
        note = level.exclusion_reason if level.excluded else level.error_reason
        entries.append(
            TimelineEntry(
                level.sampled_at,
                "level",
                f"level {shown}",
                level.excluded or level.entered_in_error,
                note,
                level.pk,
            )
        )
    for measurement in course.patient.measurements.all():
        entries.append(
            TimelineEntry(
                measurement.measured_at,
                "covariate",
                f"{measurement.kind.replace('_', ' ')} {measurement.value_as_entered:g} "
                f"{measurement.unit_as_entered}",
                measurement.entered_in_error,
                measurement.error_reason,
            )
        )
    return sorted(entries, key=lambda entry: entry.at)


def latest_update(*, course: TherapyCourse) -> BayesianUpdate | None:
    return course.updates.order_by("-requested_at", "-pk").first()


def latest_finished_update(*, course: TherapyCourse) -> BayesianUpdate | None:
    """The newest successful update by request order (a slow older one never hides a newer one)."""
    return course.updates.filter(status=BayesianUpdate.Status.SUCCEEDED).order_by("-pk").first()


def current_recommendation(*, course: TherapyCourse) -> Recommendation | None:
    return (
        course.recommendations.exclude(status=Recommendation.Status.SUPERSEDED)
        .order_by("-created_at", "-pk")
        .first()
    )


def review_queue(*, user: AbstractBaseUser | AnonymousUser) -> list[Recommendation]:
    """Recommendations awaiting a pharmacist's review, oldest first."""
    require_clinical_role(user=user)
    pending = Recommendation.objects.filter(status=Recommendation.Status.PENDING_REVIEW)
    return list(pending.select_related("course__patient", "course__drug").order_by("created_at", "pk"))
