"""Refit: a Bayesian update for every active course of a drug, after an engine or library release.

Nothing about the patients changed, so unlike :func:`dosing.services.update_request` a refit supersedes no
recommendation when it is queued: a pending one stays reviewable until the refit's own result replaces it
(``_recommendation_store``), and a signed one (approved, modified, rejected) is never touched. A course whose
update is still queued or running is skipped: that update already fits the data as recorded. Each update is
queued through the outbox in its course's own transaction, so a broker that is down leaves it pending for
the beat's dispatcher, never lost.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.roles import Role
from accounts.selectors import user_has_role
from audit import context
from dosing.models import BayesianUpdate, Recommendation, TherapyCourse
from dosing.orders import regimen_label
from dosing.outbox import outbox_add
from dosing.services import updates_fail_stale
from models_catalog.models import Drug, ModelVersion

Status = BayesianUpdate.Status
PENDING = (Status.QUEUED, Status.RUNNING)


@dataclass(frozen=True)
class RefitQueued:
    courses: int  # active courses of the drug (on the model version, when one was named)
    update_ids: tuple[int, ...]  # the updates queued, one per course
    skipped_pending: int  # courses left alone: an update of theirs was already queued or running


@dataclass(frozen=True)
class RefitProgress:
    counts: dict[str, int]  # update status -> how many of the refit's updates are in it
    waited_s: float

    @property
    def pending(self) -> int:
        return sum(self.counts.get(status, 0) for status in PENDING)


def refit_scope(*, drug: str, model_version: str = "") -> tuple[Drug, ModelVersion | None]:
    """The drug by name and, when given, one of its model versions as ``MODEL_ID@VERSION`` or ``VERSION``."""
    found = Drug.objects.filter(name=drug).first()
    if found is None:
        known = ", ".join(Drug.objects.order_by("name").values_list("name", flat=True)) or "none"
        raise ValidationError({"drug": [f"no drug '{drug}' (known: {known})"]})
    if not model_version:
        return found, None
    model_id, _, version = model_version.rpartition("@")
    versions = ModelVersion.objects.filter(drug=found, version=version)
    if model_id:
        versions = versions.filter(model_id=model_id)
    matches = list(versions[:2])
    if len(matches) != 1:
        labels = ", ".join(
            f"{v.model_id}@{v.version}" for v in ModelVersion.objects.filter(drug=found).order_by("model_id")
        )
        problem = "matches several versions, name one as MODEL_ID@VERSION" if matches else "is not one"
        raise ValidationError({"model_version": [f"'{model_version}' {problem} of {drug} (its: {labels})"]})
    return found, matches[0]


def refit_queue(
    *, drug: Drug, user: AbstractBaseUser, model_version: ModelVersion | None = None, reason: str = ""
) -> RefitQueued:
    """Queue an update for every active course of ``drug`` (on ``model_version`` only, when given);
    ``reason`` (e.g. "vanco-x@2.0.0 published") is added to the updates' trigger."""
    if not user_has_role(user=user, role=Role.CLINICIAN):
        raise PermissionDenied("only clinicians request Bayesian updates")
    courses = TherapyCourse.objects.filter(drug=drug, status=TherapyCourse.Status.ACTIVE)
    if model_version is not None:
        courses = courses.filter(model_version=model_version)
    course_ids = list(courses.order_by("pk").values_list("pk", flat=True))
    label = f" on {model_version.model_id}@{model_version.version}" if model_version else ""
    trigger = f"refit of the active {drug.name} courses{label}" + (f" ({reason})" if reason else "")
    queued: list[int] = []
    skipped = 0
    with context.acting_as(user), context.because(trigger):
        # A dead worker's update is not "pending": failed with its reason, as a new update replaces it.
        updates_fail_stale(BayesianUpdate.objects.filter(course_id__in=course_ids), timezone.now())
        for course_id in course_ids:
            with transaction.atomic():
                # The lock update_request takes: no other update of this course is queued meanwhile.
                course = TherapyCourse.objects.select_for_update().filter(pk=course_id).first()
                if course is None or course.status != TherapyCourse.Status.ACTIVE:
                    continue  # closed since the list was read: nothing to refit
                if course.updates.filter(status__in=PENDING).exists():
                    skipped += 1
                    continue
                update = BayesianUpdate.objects.create(
                    course=course, trigger=trigger, requested_by=user, model_version=course.model_version
                )
                outbox_add(update=update)
            queued.append(update.pk)
    return RefitQueued(courses=len(course_ids), update_ids=tuple(queued), skipped_pending=skipped)


def refit_progress(*, update_ids: tuple[int, ...]) -> RefitProgress:
    rows = BayesianUpdate.objects.filter(pk__in=update_ids).values_list("status", flat=True)
    return RefitProgress(counts=dict(Counter(rows)), waited_s=0.0)


def refit_wait(*, update_ids: tuple[int, ...], timeout_s: float, poll_s: float = 1.0) -> RefitProgress:
    """Poll until every update of the refit has finished or ``timeout_s`` has passed; the last counts."""
    started = time.monotonic()
    while True:
        progress = refit_progress(update_ids=update_ids)
        waited = time.monotonic() - started
        if progress.pending == 0 or waited >= timeout_s:
            return RefitProgress(counts=progress.counts, waited_s=waited)
        time.sleep(min(poll_s, max(timeout_s - waited, 0.0)))


# -- what the refit changed ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefitChange:
    """One course of a refit: its recommendation before (the latest, whatever its status) and after."""

    course: str  # the course's public id
    outcome: str  # "changed", "unchanged", "first" (none before), "no recommendation", "failed", "pending"
    before: str  # regimen label, or "" when there was none
    before_pta: float | None
    before_status: str  # pending review, approved, modified, rejected, superseded
    after: str
    after_pta: float | None
    note: str = ""  # why it failed, or that the course's model version is retired

    def line(self) -> str:
        def shown(label: str, pta: float | None) -> str:
            return f"{label} (PTA {pta * 100:.0f} %)" if label and pta is not None else (label or "none")

        before = shown(self.before, self.before_pta) + (f", {self.before_status}" if self.before else "")
        text = f"course {self.course}: {before} -> {shown(self.after, self.after_pta)}: {self.outcome}"
        return text + (f" ({self.note})" if self.note else "")


def _signature(regimen: dict[str, Any]) -> tuple[Any, ...]:
    """A regimen without its start (the start moves with the clock between two fits)."""
    keys = ("dose_mg", "interval_h", "route", "duration_h", "loading_dose_mg", "continuous", "n_doses")
    return tuple(regimen.get(key) for key in keys)


def refit_report(*, update_ids: tuple[int, ...]) -> list[RefitChange]:
    """Per refit update, in course order: the regimen and PTA before and after, and what changed.

    The "before" is the course's latest recommendation made before the refit (pending, signed or
    superseded); signed ones are read, never changed.
    """
    updates = BayesianUpdate.objects.filter(pk__in=update_ids).select_related("course__model_version")
    changes = []
    for update in sorted(updates, key=lambda u: u.course_id):
        course = update.course
        before = (
            Recommendation.objects.filter(course=course, update__pk__lt=update.pk)
            .order_by("-update__pk")
            .first()
        )
        after = Recommendation.objects.filter(update=update).first()
        note = ""
        if course.model_version.status == ModelVersion.Status.RETIRED:
            note = f"its model {course.model_version} is retired: consider a new course on a published one"
        if update.status in PENDING:
            outcome = "pending"
        elif update.status != Status.SUCCEEDED:
            outcome, note = update.status, "; ".join(filter(None, [update.error, note]))
        elif after is None:
            outcome = "no recommendation"
        elif before is None:
            outcome = "first"
        else:
            same = _signature(before.regimen) == _signature(after.regimen)
            outcome = "unchanged" if same else "changed"
        changes.append(
            RefitChange(
                course=str(course.public_id),
                outcome=outcome,
                before=regimen_label(before.regimen) if before else "",
                before_pta=before.probability_of_target if before else None,
                before_status=before.get_status_display().lower() if before else "",
                after=regimen_label(after.regimen) if after else "",
                after_pta=after.probability_of_target if after else None,
                note=note,
            )
        )
    return changes


def refit_after_catalog_change(*, model_version: ModelVersion, action: str) -> None:
    """A version of a drug was published or retired: queue, after the commit, the refit of the drug's active
    courses (``REFIT_ON_CATALOG_CHANGE_AS`` names the clinician account; empty: nothing happens)."""
    username = settings.REFIT_ON_CATALOG_CHANGE_AS
    if not username or action not in ("published", "retired"):
        return
    from dosing.tasks import refit_drug

    reason = f"{model_version.model_id}@{model_version.version} {action}"
    transaction.on_commit(
        lambda: refit_drug.delay(drug_id=model_version.drug_id, username=username, reason=reason)
    )


def refit_drug_run(*, drug_id: int, username: str, reason: str = "") -> RefitQueued:
    """The Celery fan-out's first step: one update per active course, each run by any worker."""
    user = get_user_model()._default_manager.filter(username=username, is_active=True).first()
    if user is None:
        raise PermissionDenied(f"no active user '{username}' (REFIT_ON_CATALOG_CHANGE_AS)")
    return refit_queue(drug=Drug.objects.get(pk=drug_id), user=user, reason=reason)
