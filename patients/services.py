"""Writes about patients: registration, measurements, genotypes and consent. Each write that can change a
patient's covariates asks for a Bayesian update of the patient's active courses (after commit)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.roles import Role
from accounts.selectors import user_has_role
from audit.models import AuditEntry
from audit.recorder import record_event
from mipd_engine.covariate_sources import CANONICAL_UNITS
from mipd_engine.errors import InvalidInputError
from mipd_engine.pgx import GuidelineTableError, phenotype
from models_catalog.selectors import declared_measurement_kinds
from patients import access
from patients.clock import clinical_time
from patients.identifiers import normalize_mrn
from patients.models import (
    BreakGlassAccess,
    CareTeam,
    ConsentRecord,
    CovariateMeasurement,
    Genotype,
    Patient,
    SupportSession,
)
from patients.units import CovariateUnitError, to_canonical

# Set by dosing.apps at start-up: patients must not import dosing (dosing depends on patients).
covariates_changed_hook: Callable[..., None] | None = None
FUTURE_TOLERANCE = dt.timedelta(minutes=10)
logger = logging.getLogger(__name__)


def _require_clinician(user: AbstractBaseUser) -> None:
    if not user_has_role(user=user, role=Role.CLINICIAN):
        raise PermissionDenied("only clinicians record patient data")


def _not_in_future(moment: dt.datetime, field: str) -> dt.datetime:
    moment = clinical_time(moment, field=field)
    if moment > timezone.now() + FUTURE_TOLERANCE:
        raise ValidationError({field: ["lies in the future"]})
    return moment


@transaction.atomic
def patient_create(
    *,
    mrn: str,
    family_name: str,
    given_name: str,
    birth_date: dt.date,
    sex: str,
    user: AbstractBaseUser,
    ward: str = "",
) -> Patient:
    _require_clinician(user)
    today = timezone.localdate()
    if birth_date > today:
        raise ValidationError({"birth_date": ["lies in the future"]})
    if (today - birth_date).days > 125 * 365.25:
        raise ValidationError({"birth_date": ["more than 125 years ago: check the date"]})
    mrn_key = mrn_unused(mrn)
    teams = list(CareTeam.objects.filter(members=user, active=True))
    if not teams:
        raise PermissionDenied(
            "you are in no care team: ask IT to add you to one before registering patients"
        )
    patient = Patient(
        mrn_key=mrn_key,
        mrn=mrn.strip(),
        family_name=family_name.strip(),
        given_name=given_name.strip(),
        birth_date=birth_date,
        sex=sex,
        ward=ward.strip(),
        created_by=user,
    )
    patient.full_clean()
    patient.save()
    # The registering clinician's teams care for the patient (whatever the ward is called).
    for team in teams:
        team.patients.add(patient)
    return patient


def mrn_unused(mrn: str) -> str:
    """The normalised MRN, or a field error naming the patient who has it (or a look-alike of it)."""
    key = normalize_mrn(mrn)
    existing = Patient.objects.filter(mrn_key=key).first()
    if existing is not None:
        same = (
            ""
            if existing.mrn == mrn.strip()
            else f" (as {existing.mrn!r}: the same identifier once normalised)"
        )
        raise ValidationError(
            {
                "mrn": [
                    f"MRN {key} belongs to {existing.family_name.upper()}, {existing.given_name}, born "
                    f"{existing.birth_date:%Y-%m-%d}{same}: open that record instead of creating a second one"
                ]
            }
        )
    return key


@transaction.atomic
def break_glass_open(*, patient: Patient, user: AbstractBaseUser, reason: str) -> BreakGlassAccess:
    """Emergency access to a patient outside the user's care teams, for a while, with the reason recorded."""
    if not access.has_clinical_role(user=user):
        raise PermissionDenied("patient data is available to clinicians and pharmacists only")
    reason = (reason or "").strip()
    if len(reason) < 10:
        raise ValidationError(
            {"reason": ["say why you need this patient's record now (at least 10 characters)"]}
        )
    grant = BreakGlassAccess.objects.create(
        user=user,
        patient=patient,
        reason=reason,
        expires_at=timezone.now() + dt.timedelta(hours=settings.BREAK_GLASS_HOURS),
    )
    record_event(
        AuditEntry.Action.BREAK_GLASS,
        patient_id=patient.public_id,
        object_type="patients.breakglassaccess",
        object_id=grant.pk,
        details={"expires_at": grant.expires_at},
        reason=reason,
    )
    logger.warning("break-the-glass access: %s opened patient %s: %s", user, patient.public_id, reason)
    return grant


@transaction.atomic
def measurement_record(
    *,
    patient: Patient,
    kind: str,
    value: float,
    unit: str,
    measured_at: dt.datetime,
    user: AbstractBaseUser,
    declared_unit: str | None = None,
) -> CovariateMeasurement:
    """Store a covariate in its canonical unit; a wrong unit or an implausible value is a field error."""
    _require_clinician(user)
    if kind == "dialysis":
        raise ValidationError(
            {
                "kind": [
                    "record dialysis, CRRT or ECMO as a session with its start and end, not as a measurement"
                ]
            }
        )
    measured_at = _not_in_future(measured_at, "measured_at")
    if measured_at.date() < patient.birth_date:
        raise ValidationError({"measured_at": ["lies before the patient's birth"]})
    try:
        if declared_unit is None and kind not in CANONICAL_UNITS:
            declared = declared_measurement_kinds()
            if kind not in declared:
                raise CovariateUnitError("kind", f"unknown measurement kind '{kind}'")
            declared_unit = declared[kind]
        canonical, canonical_unit = to_canonical(kind, float(value), unit, declared_unit=declared_unit)
    except CovariateUnitError as exc:
        raise ValidationError({exc.field: [str(exc)]}) from None
    measurement = CovariateMeasurement(
        patient=patient,
        kind=kind,
        value=canonical,
        unit=canonical_unit,
        value_as_entered=float(value),
        unit_as_entered=unit.strip(),
        measured_at=measured_at,
        recorded_by=user,
    )
    measurement.full_clean()
    measurement.save()
    if covariates_changed_hook is not None:
        covariates_changed_hook(patient=patient, user=user, trigger=f"new {kind.replace('_', ' ')}")
    return measurement


@transaction.atomic
def support_session_record(
    *,
    patient: Patient,
    modality: str,
    started_at: dt.datetime,
    user: AbstractBaseUser,
    ended_at: dt.datetime | None = None,
    note: str = "",
) -> SupportSession:
    """A dialysis, CRRT or ECMO session (ongoing while ``ended_at`` is empty); overlaps are refused."""
    _require_clinician(user)
    started_at = _not_in_future(started_at, "started_at")
    if started_at.date() < patient.birth_date:
        raise ValidationError({"started_at": ["lies before the patient's birth"]})
    if ended_at is not None:
        ended_at = _not_in_future(ended_at, "ended_at")
        if ended_at <= started_at:
            raise ValidationError({"ended_at": ["must be after the start"]})
    _refuse_overlap(patient=patient, modality=modality, start=started_at, end=ended_at)
    session = SupportSession(
        patient=patient,
        modality=modality,
        started_at=started_at,
        ended_at=ended_at,
        note=note.strip(),
        recorded_by=user,
        end_recorded_by=user if ended_at else None,
        end_recorded_at=timezone.now() if ended_at else None,
    )
    session.full_clean()
    session.save()
    if covariates_changed_hook is not None:
        covariates_changed_hook(
            patient=patient, user=user, trigger=f"{session.get_modality_display()} recorded"
        )
    return session


def _refuse_overlap(
    *,
    patient: Patient,
    modality: str,
    start: dt.datetime,
    end: dt.datetime | None,
    exclude: int | None = None,
) -> None:
    sessions = patient.support_sessions.filter(modality=modality, entered_in_error=False).exclude(pk=exclude)
    for other in sessions:
        other_end = other.ended_at
        if (other_end is None or start < other_end) and (end is None or other.started_at < end):
            raise ValidationError({"started_at": [f"overlaps the session already recorded: {other}"]})


@transaction.atomic
def support_session_end(
    *, session: SupportSession, ended_at: dt.datetime, user: AbstractBaseUser
) -> SupportSession:
    """Record the end of an ongoing session, once (a wrong end: mark the session entered in error)."""
    _require_clinician(user)
    session = SupportSession.objects.select_for_update().get(pk=session.pk)
    if session.ended_at is not None or session.entered_in_error:
        raise ValidationError({"ended_at": ["this session has already ended"]})
    ended_at = _not_in_future(ended_at, "ended_at")
    if ended_at <= session.started_at:
        raise ValidationError({"ended_at": ["must be after the start"]})
    session.ended_at = ended_at
    session.end_recorded_by = user
    session.end_recorded_at = timezone.now()
    session.save(update_fields=["ended_at", "end_recorded_by", "end_recorded_at"])
    if covariates_changed_hook is not None:
        covariates_changed_hook(
            patient=session.patient, user=user, trigger=f"{session.get_modality_display()} ended"
        )
    return session


@transaction.atomic
def genotype_record(
    *,
    patient: Patient,
    gene: str,
    diplotype: str,
    lab: str,
    reported_on: dt.date,
    user: AbstractBaseUser,
) -> Genotype:
    """The phenotype is called by the engine's CPIC tables from the diplotype, never typed by hand."""
    _require_clinician(user)
    if reported_on > timezone.localdate():
        raise ValidationError({"reported_on": ["lies in the future"]})
    try:
        call = phenotype(gene=gene, diplotype=diplotype)
    except (InvalidInputError, GuidelineTableError) as exc:
        raise ValidationError({"diplotype": [str(exc)]}) from None
    if call.source is None:
        raise ValidationError({"gene": [f"no guideline table covers {gene}: {call.reason}"]})
    if call.diplotype is None:
        raise ValidationError({"diplotype": [call.reason]})
    genotype = Genotype(
        patient=patient,
        gene=call.gene,
        diplotype=call.diplotype,
        # An unknown allele gives no phenotype: stored as "Indeterminate" with the reason, never guessed.
        phenotype=call.phenotype or "Indeterminate",
        phenotype_source=f"{call.source.table_id} ({call.source.version}): {call.reason}",
        lab=lab.strip(),
        reported_on=reported_on,
        recorded_by=user,
    )
    genotype.full_clean()
    genotype.save()
    if covariates_changed_hook is not None:
        covariates_changed_hook(patient=patient, user=user, trigger=f"new {call.gene} genotype")
    return genotype


@transaction.atomic
def consent_record(
    *, patient: Patient, scope: str, status: str, user: AbstractBaseUser, note: str = ""
) -> ConsentRecord:
    _require_clinician(user)
    record = ConsentRecord(patient=patient, scope=scope, status=status, note=note.strip(), recorded_by=user)
    record.full_clean()
    record.save()
    if covariates_changed_hook is not None and scope != ConsentRecord.Scope.RESEARCH_USE:
        # Dosing consent or genotype consent changes what the engine may use: recompute, and retire
        # recommendations made under the old consent.
        covariates_changed_hook(patient=patient, user=user, trigger=f"consent changed: {record}")
    return record


@transaction.atomic
def entry_mark_in_error(
    *, entry: CovariateMeasurement | Genotype | SupportSession, reason: str, user: AbstractBaseUser
) -> CovariateMeasurement | Genotype | SupportSession:
    """A wrongly recorded measurement, genotype or session: kept for the record, used no more."""
    _require_clinician(user)
    entry.mark_in_error(reason=reason, user=user)
    if covariates_changed_hook is not None:
        what = {CovariateMeasurement: "measurement", Genotype: "genotype", SupportSession: "session"}[
            type(entry)
        ]
        covariates_changed_hook(patient=entry.patient, user=user, trigger=f"{what} entered in error")
    return entry


def measurement_mark_in_error(
    *, measurement: CovariateMeasurement, reason: str, user: AbstractBaseUser
) -> CovariateMeasurement:
    return entry_mark_in_error(entry=measurement, reason=reason, user=user)  # type: ignore[return-value]
