"""The one access rule for patient data, and the one helper every patient-scoped object is loaded through.

* Clinicians and pharmacists see the patients of their care teams: the wards a team covers, the patients
  put on the team, or every patient for a hospital-wide team (e.g. the TDM pharmacy service). IT maintains
  the teams (``patients.models.CareTeam``).
* Anyone else's patient only by breaking the glass: a stated reason, a time limit, an audit entry
  (``patients.services.break_glass_open``).
* Curators, auditors and users without a clinical role see no patient data.

``scoped_get`` loads a patient, a course, a dose, a level ... by its public id and returns it only when the
rule allows: otherwise 403 (``PermissionDenied``, the record exists but is not the user's) or 404. Each
read and each refusal is an audit entry naming the patient.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import Model, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.roles import Role
from accounts.selectors import user_roles
from audit.models import AuditEntry
from audit.recorder import record_event
from patients.models import BreakGlassAccess, CareTeam, Patient

CLINICAL_ROLES = frozenset({Role.CLINICIAN, Role.PHARMACIST})
NOT_YOURS = (
    "this patient is not under the care of your teams; in an emergency, break the glass on the patient's "
    "page (your reason is recorded)"
)
RowT = TypeVar("RowT", bound=Model)
User = AbstractBaseUser | AnonymousUser


def has_clinical_role(*, user: User) -> bool:
    return bool(user_roles(user=user) & CLINICAL_ROLES)


def _teams(user: User) -> QuerySet[CareTeam]:
    return CareTeam.objects.filter(members=user, active=True)


def visible_filter(*, user: User) -> Q:
    """The patients ``user`` may see, as a filter on Patient (no role: none)."""
    if not has_clinical_role(user=user):
        return Q(pk__in=[])
    teams = list(_teams(user).values_list("pk", "wards", "covers_all_wards"))
    if any(all_wards for _, _, all_wards in teams):
        return Q()
    rule = Q(care_teams__pk__in=[pk for pk, _, _ in teams]) if teams else Q(pk__in=[])
    rule = Q(pk__in=Patient.objects.filter(rule).values("pk"))
    for ward in {str(ward).strip().casefold() for _, wards, _ in teams for ward in (wards or []) if ward}:
        rule |= Q(ward__iexact=ward)
    glass = BreakGlassAccess.objects.filter(user=user, expires_at__gt=timezone.now()).values("patient_id")
    return rule | Q(pk__in=glass)


def can_access(*, user: User, patient: Patient) -> bool:
    return Patient.objects.filter(visible_filter(user=user), pk=patient.pk).exists()


def break_glass_active(*, user: User, patient: Patient) -> BreakGlassAccess | None:
    return (
        BreakGlassAccess.objects.filter(user=user, patient=patient, expires_at__gt=timezone.now())
        .order_by("-expires_at")
        .first()
    )


def visible_patients(*, user: User) -> QuerySet[Patient]:
    if not has_clinical_role(user=user):
        refuse(user=user, patient=None, object_type="patients.patient", object_id="", why="no clinical role")
        raise PermissionDenied("patient data is available to clinicians and pharmacists only")
    return Patient.objects.filter(visible_filter(user=user))


def refuse(*, user: User, patient: Patient | None, object_type: str, object_id: Any, why: str) -> None:
    record_event(
        AuditEntry.Action.ACCESS_DENIED,
        patient_id=patient.public_id if patient is not None else None,
        object_type=object_type,
        object_id=object_id,
        reason=why,
    )


def _as_uuid(public_id: Any) -> uuid.UUID | None:
    if isinstance(public_id, uuid.UUID):
        return public_id
    try:
        return uuid.UUID(str(public_id))
    except (TypeError, ValueError, AttributeError):
        return None


def scoped_get(
    rows: QuerySet[RowT] | type[RowT],
    *,
    user: User,
    public_id: Any,
    patient_of: Callable[[RowT], Patient],
    record_read: bool = True,
) -> RowT:
    """The row with this public id if ``user`` may see its patient; else PermissionDenied or Http404.

    Every call leaves an audit entry: the read, or the refusal and why.
    """
    queryset = rows if isinstance(rows, QuerySet) else rows._default_manager.all()
    label = queryset.model._meta.label_lower
    if not has_clinical_role(user=user):
        refuse(user=user, patient=None, object_type=label, object_id=public_id, why="no clinical role")
        raise PermissionDenied("patient data is available to clinicians and pharmacists only")
    key = _as_uuid(public_id)
    row = queryset.filter(public_id=key).first() if key is not None else None
    if row is None:
        refuse(user=user, patient=None, object_type=label, object_id=public_id, why="no such record")
        raise Http404("no such record")
    patient = patient_of(row)
    if not can_access(user=user, patient=patient):
        refuse(
            user=user, patient=patient, object_type=label, object_id=row.pk, why="not under the user's care"
        )
        raise PermissionDenied(NOT_YOURS)
    if record_read:
        record_event(
            AuditEntry.Action.READ, patient_id=patient.public_id, object_type=label, object_id=row.pk
        )
    return row


def patient_access(*, user: User, public_id: Any) -> Patient:
    return scoped_get(Patient, user=user, public_id=public_id, patient_of=lambda patient: patient)
