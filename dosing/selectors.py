"""Reads of the dosing workflow: courses through the patient access helper, timelines, latest results."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.utils import timezone

from dosing.models import BayesianUpdate, DoseAdministration, DrugLevel, Recommendation, TherapyCourse
from models_catalog.labels import measurement_label, route_label
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
    kind: str  # "dose", "level", "covariate", "session"
    text: str
    struck: bool  # entered in error or excluded
    note: str = ""
    public_id: Any = None  # doses and levels: what the "entered in error" form acts on

    @property
    def kind_label(self) -> str:
        return {"dose": "Dose", "level": "Level", "covariate": "Measurement", "session": "Session"}[self.kind]


def course_timeline(
    *,
    course: TherapyCourse,
    doses: Sequence[DoseAdministration] | None = None,
    levels: Sequence[DrugLevel] | None = None,
) -> list[TimelineEntry]:
    """Everything recorded on the course in time order; ``doses`` and ``levels``: the course's own, already
    read by the page (in their default order), instead of a query each."""
    entries = []
    for dose in course.doses.all() if doses is None else doses:
        notes = [dose.error_reason] if dose.entered_in_error else []
        notes += [f"{n['message']} Confirmed: {n.get('reason', '')}" for n in dose.notices]
        entries.append(
            TimelineEntry(
                dose.given_at,
                "dose",
                f"{dose.amount_mg:g} mg {route_label(dose.route)}"
                + (f" over {dose.infusion_duration_h:g} h" if dose.infusion_duration_h else ""),
                dose.entered_in_error,
                " ".join(notes),
                dose.public_id,
            )
        )
    for level in course.levels.all() if levels is None else levels:
        shown = (
            f"< {level.lloq:g} {level.unit} (below LLOQ)"
            if level.below_lloq
            else f"{level.value:g} {level.unit}"
        )
        notes = []
        if level.excluded:
            notes.append(f"excluded: {level.exclusion_reason}")
        if level.entered_in_error:
            notes.append(f"entered in error: {level.error_reason}")
        elif level.plausibility == DrugLevel.Plausibility.HELD:
            notes.append(f"held, not used: {level.plausibility_score.get('reason', '')}")
        elif level.plausibility == DrugLevel.Plausibility.PENDING:
            notes.append("not yet checked against the model")
        elif level.plausibility == DrugLevel.Plausibility.CONFIRMED:
            notes.append(f"confirmed by {level.confirmed_by}: {level.confirmation_reason}")
        notes += [notice["message"] for notice in level.notices]
        entries.append(
            TimelineEntry(
                level.sampled_at,
                "level",
                f"level {shown}",
                level.excluded or level.entered_in_error or level.plausibility == DrugLevel.Plausibility.HELD,
                "; ".join(notes),
                level.public_id,
            )
        )
    for measurement in course.patient.measurements.all():
        entries.append(
            TimelineEntry(
                measurement.measured_at,
                "covariate",
                f"{measurement_label(measurement.kind)} {measurement.value_as_entered:g} "
                f"{measurement.unit_as_entered}",
                measurement.entered_in_error,
                measurement.error_reason,
            )
        )
    for session in course.patient.support_sessions.all():
        end = f"{timezone.localtime(session.ended_at):%Y-%m-%d %H:%M}" if session.ended_at else "ongoing"
        entries.append(
            TimelineEntry(
                session.started_at,
                "session",
                f"{session.get_modality_display()} until {end}",
                session.entered_in_error,
                session.error_reason,
            )
        )
    return sorted(entries, key=lambda entry: entry.at)


HELD_OR_PENDING = (DrugLevel.Plausibility.HELD, DrugLevel.Plausibility.PENDING)


def held_levels(*, course: TherapyCourse, levels: Sequence[DrugLevel] | None = None) -> list[DrugLevel]:
    """Levels held as implausible (not used) or still waiting for their check, oldest first; ``levels``:
    the course's levels already read (in their default order, sampled_at then pk), picked from instead."""
    if levels is not None:
        return [
            level
            for level in levels
            if not level.entered_in_error and not level.excluded and level.plausibility in HELD_OR_PENDING
        ]
    return list(
        course.levels.filter(
            entered_in_error=False,
            excluded=False,
            plausibility__in=HELD_OR_PENDING,
        ).order_by("sampled_at", "pk")
    )


def last_dose(
    *, course: TherapyCourse, doses: Sequence[DoseAdministration] | None = None
) -> DoseAdministration | None:
    """The latest dose not entered in error; ``doses``: the course's doses already read (in their default
    order, given_at then pk), picked from instead."""
    if doses is None:
        return course.doses.filter(entered_in_error=False).order_by("-given_at", "-pk").first()
    return next((dose for dose in reversed(doses) if not dose.entered_in_error), None)


# What the status poll shows of an update: a few short columns, never the stored inputs or results.
STATUS_FIELDS = ("pk", "public_id", "course_id", "status", "trigger", "error", "timings_s")


def latest_update(*, course: TherapyCourse, with_data: bool = True) -> BayesianUpdate | None:
    """The newest update; ``with_data=False`` leaves its inputs and results unread until used (a page
    shows them only when it failed with a stop)."""
    rows = course.updates.order_by("-requested_at", "-pk")
    if not with_data:
        rows = rows.defer("inputs", "results")
    return rows.first()


def latest_update_status(*, course: TherapyCourse) -> BayesianUpdate | None:
    """The newest update's state for the status poll: one indexed query of short columns."""
    return course.updates.order_by("-requested_at", "-pk").only(*STATUS_FIELDS).first()


def latest_finished_update(*, course: TherapyCourse, with_inputs: bool = True) -> BayesianUpdate | None:
    """The newest successful update by request order (a slow older one never hides a newer one).

    ``with_inputs=False``: the engine's case document (the model, every dose and level) is left unread
    until used; the course page shows only its hash.
    """
    rows = course.updates.filter(status=BayesianUpdate.Status.SUCCEEDED).order_by("-pk")
    if not with_inputs:
        rows = rows.defer("inputs")
    return rows.first()


def update_proposal(*, recommendation: Recommendation, done: BayesianUpdate | None) -> dict[str, Any] | None:
    """The recommendation as its update proposed it (``results.recommendation``), read from ``done`` when
    that is its update, else the one key from the database (not the whole stored result)."""
    if done is not None and recommendation.update_id == done.pk:
        return (done.results or {}).get("recommendation")
    return (
        BayesianUpdate.objects.filter(pk=recommendation.update_id)
        .values_list("results__recommendation", flat=True)
        .first()
    )


def current_recommendation(*, course: TherapyCourse) -> Recommendation | None:
    return (
        course.recommendations.exclude(status=Recommendation.Status.SUPERSEDED)
        .select_related("reviewed_by")  # shown with its review
        .order_by("-created_at", "-pk")
        .first()
    )


@dataclass(frozen=True)
class QueueItem:
    recommendation: Recommendation
    current: str  # the regimen being given, from the recorded doses
    proposed: str  # the proposed order, in words
    due_at: Any  # when the proposed first dose is due (None if unknown)
    n_alerts: int


def current_regimen(*, course: TherapyCourse) -> str:
    """The regimen being given, from the last two recorded doses ("1000 mg IV infusion every 12 h")."""
    doses = list(course.doses.filter(entered_in_error=False).order_by("-given_at", "-pk")[:2])
    if not doses:
        return "no dose recorded yet"
    last = doses[0]
    text = f"{last.amount_mg:g} mg {route_label(last.route)}"
    if last.infusion_duration_h:
        text += f" over {last.infusion_duration_h:g} h"
    if len(doses) == 2:
        gap_h = (last.given_at - doses[1].given_at).total_seconds() / 3600.0
        if gap_h > 0.1:
            text += f" every {gap_h:.3g} h"
    return text + f" (last {timezone.localtime(last.given_at):%d %b %H:%M})"


def review_queue(*, user: AbstractBaseUser | AnonymousUser) -> list[QueueItem]:
    """Recommendations awaiting a pharmacist's review, the most urgent first (the next dose due soonest)."""
    require_clinical_role(user=user)
    pending = Recommendation.objects.filter(
        status=Recommendation.Status.PENDING_REVIEW, course__patient__in=access.visible_patients(user=user)
    ).select_related("course__patient", "course__drug", "update")
    items = []
    for recommendation in pending:
        order = ((recommendation.update.results or {}).get("recommendation") or {}).get("order") or {}
        due = order.get("start_at")
        items.append(
            QueueItem(
                recommendation=recommendation,
                current=current_regimen(course=recommendation.course),
                proposed=order.get("text") or recommendation.regimen.get("description", ""),
                due_at=dt.datetime.fromisoformat(due) if due else None,
                n_alerts=len(recommendation.alerts),
            )
        )
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    return sorted(items, key=lambda item: (item.due_at or far, item.recommendation.pk))


@dataclass(frozen=True)
class QueueFigures:
    """The update queue at a glance, for /healthz: no patient data, counts and ages only."""

    queued: int
    running: int
    stuck: int  # running, or delivered and unstarted, past the reaper's limit
    oldest_queued_s: float | None
    outbox_pending: int
    oldest_outbox_s: float | None


def queue_figures(*, now: dt.datetime | None = None) -> QueueFigures:
    """Two indexed aggregate queries over the unfinished updates and the undelivered outbox rows."""
    from django.db.models import Count, Min, Q

    from dosing.claims import stale_after
    from dosing.models import UpdateDispatch

    now = now or timezone.now()
    before = now - stale_after()
    queued, running = Q(status=BayesianUpdate.Status.QUEUED), Q(status=BayesianUpdate.Status.RUNNING)
    updates = BayesianUpdate.objects.filter(queued | running).aggregate(
        queued=Count("pk", filter=queued),
        running=Count("pk", filter=running),
        stuck=Count(
            "pk",
            filter=(running & Q(started_at__lt=before)) | (queued & Q(dispatch__dispatched_at__lt=before)),
        ),
        oldest_queued=Min("requested_at", filter=queued),
    )
    outbox = UpdateDispatch.objects.filter(dispatched_at__isnull=True).aggregate(
        pending=Count("pk"), oldest=Min("created_at")
    )

    def age_s(moment: dt.datetime | None) -> float | None:
        return None if moment is None else round(max(0.0, (now - moment).total_seconds()), 1)

    return QueueFigures(
        queued=updates["queued"],
        running=updates["running"],
        stuck=updates["stuck"],
        oldest_queued_s=age_s(updates["oldest_queued"]),
        outbox_pending=outbox["pending"],
        oldest_outbox_s=age_s(outbox["oldest"]),
    )
