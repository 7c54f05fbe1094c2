"""Reads of the dosing workflow: courses through the patient access helper, timelines, latest results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from dosing.models import BayesianUpdate, Recommendation, TherapyCourse
from patients import access
from patients.selectors import require_clinical_role


def course_get(*, user: AbstractBaseUser | AnonymousUser, public_id: Any) -> TherapyCourse:
    """Courses are patient-scoped: loaded through the patient access helper (403 not yours, 404 absent)."""
    return access.scoped_get(
        TherapyCourse.objects.select_related("patient", "drug", "model_version", "target_protocol"),
        user=user,
        public_id=public_id,
        patient_of=lambda course: course.patient,
    )


def course_child_get(model: type[Any], *, user: AbstractBaseUser | AnonymousUser, public_id: Any) -> Any:
    """A dose, level, update or recommendation by its public id, through the patient access helper."""
    return access.scoped_get(
        model.objects.select_related("course__patient"),
        user=user,
        public_id=public_id,
        patient_of=lambda row: row.course.patient,
    )


@dataclass(frozen=True)
class TimelineEntry:
    at: Any
    kind: str  # "dose", "level", "covariate"
    text: str
    struck: bool  # entered in error or excluded
    note: str = ""
    public_id: Any = None  # doses and levels: what the "entered in error" form acts on


def course_timeline(*, course: TherapyCourse) -> list[TimelineEntry]:
    entries = [
        TimelineEntry(
            dose.given_at,
            "dose",
            f"{dose.amount_mg:g} mg {dose.route.replace('_', ' ')}"
            + (f" over {dose.infusion_duration_h:g} h" if dose.infusion_duration_h else ""),
            dose.entered_in_error,
            dose.error_reason,
            dose.public_id,
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
                level.public_id,
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
    pending = Recommendation.objects.filter(
        status=Recommendation.Status.PENDING_REVIEW, course__patient__in=access.visible_patients(user=user)
    )
    return list(pending.select_related("course__patient", "course__drug").order_by("created_at", "pk"))
