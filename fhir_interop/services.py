"""Importing a FHIR Bundle: every value goes through the same services as a typed one (patients.services,
dosing.services), so the same checks apply and the audit trail records it; every resource gets a report line.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from dosing import services as dosing_services
from dosing.models import TherapyCourse
from fhir_interop import plans
from fhir_interop.models import ExternalOrder, FhirImport, ImportedResource
from fhir_interop.parsing import BundleError, Entry, read_bundle
from patients import access
from patients import services as patient_services
from patients.identifiers import fhir_patient_mrn, normalize_mrn
from patients.models import Patient

IMPORTED, UNCHANGED, NOT_IMPORTED, CHANGED = "imported", "unchanged", "not_imported", "changed_in_source"

_SEX = {"female": "female", "male": "male", "other": "other", "unknown": "unknown"}
_ORDER = {"Patient": 0, "Observation": 1, "MedicationAdministration": 2, "MedicationRequest": 4}


@dataclass(frozen=True)
class Line:
    resource: str
    outcome: str
    reason: str = ""
    record: str = ""


def _messages(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(
            f"{field}: {' '.join(m for e in errors for m in e.messages)}"
            for field, errors in exc.error_dict.items()
        )
    return " ".join(exc.messages)


def _mrn(raw: dict[str, Any]) -> str:
    try:
        return fhir_patient_mrn(raw, system=settings.FHIR_MRN_SYSTEM)
    except ValidationError as exc:
        raise ValidationError({"bundle": exc.message_dict["mrn"]}) from None


def _patient_from(entry: Entry, *, user: AbstractBaseUser) -> tuple[Patient, Line]:
    raw = entry.raw
    mrn = _mrn(raw)
    if not mrn:
        raise ValidationError(
            {"bundle": ["the Patient has no MRN: no identifier with system FHIR_MRN_SYSTEM nor of type MR"]}
        )
    existing = Patient.objects.filter(mrn_key=normalize_mrn(mrn)).first()
    if existing is not None:
        if not access.can_access(user=user, patient=existing):
            raise PermissionDenied(access.NOT_YOURS)
        return existing, Line(
            entry.label, UNCHANGED, f"patient with MRN {mrn} already recorded", str(existing.public_id)
        )
    name = next(iter(raw.get("name", [])), {})
    try:
        birth_date = timezone.datetime.fromisoformat(raw.get("birthDate", "")).date()
    except ValueError:
        raise ValidationError({"bundle": ["the Patient has no full birthDate (YYYY-MM-DD)"]}) from None
    patient = patient_services.patient_create(
        mrn=mrn,
        family_name=str(name.get("family") or ""),
        given_name=" ".join(name.get("given", [])),
        birth_date=birth_date,
        sex=_SEX.get(str(raw.get("gender")), "unknown"),
        user=user,
    )
    return patient, Line(entry.label, IMPORTED, "", f"patient {patient.public_id}")


def _course(patient: Patient, drug: str) -> TherapyCourse:
    course = (
        TherapyCourse.objects.filter(patient=patient, drug__name=drug, status=TherapyCourse.Status.ACTIVE)
        .order_by("-opened_at")
        .first()
    )
    if course is None:
        raise plans.Unmappable(f"no active {drug} course for this patient: open one, then import again")
    return course


def _record(plan: plans.Plan, *, patient: Patient, user: AbstractBaseUser) -> Any:
    zone = timezone.get_default_timezone()
    if isinstance(plan, plans.MeasurementPlan):
        return patient_services.measurement_record(
            patient=patient,
            kind=plan.kind,
            value=plan.value,
            unit=plan.unit,
            measured_at=plan.measured_at.astimezone(zone),
            user=user,
        )
    if isinstance(plan, plans.GenotypePlan):
        return patient_services.genotype_record(
            patient=patient,
            gene=plan.gene,
            diplotype=plan.diplotype,
            lab=plan.lab,
            reported_on=plan.reported_on,
            user=user,
        )
    if isinstance(plan, plans.DosePlan):
        return dosing_services.dose_record(
            course=_course(patient, plan.drug),
            given_at=plan.given_at.astimezone(zone),
            amount_mg=plan.amount_mg,
            route=plan.route,
            infusion_duration_h=plan.infusion_duration_h,
            user=user,
        )
    if isinstance(plan, plans.LevelPlan):
        return dosing_services.level_record(
            course=_course(patient, plan.drug),
            sampled_at=plan.sampled_at.astimezone(zone),
            unit=plan.unit,
            value=plan.value,
            lloq=plan.lloq,
            below_lloq=plan.below_lloq,
            assay=plan.assay,
            user=user,
        )
    order = ExternalOrder(
        patient=patient,
        drug_name=plan.drug,
        status=plan.status,
        intent=plan.intent,
        authored_on=plan.authored_on,
        text=plan.text,
        imported_by=user,
    )
    order.full_clean()
    order.save()
    return order


def _about_patient(entry: Entry, patient_refs: set[str]) -> bool:
    reference = plans.subject_reference(entry.raw)
    return not patient_refs or reference in patient_refs


def _sort_key(entry: Entry) -> tuple[int, str]:
    # Doses before levels (a level needs a dose before it); within a kind, by time.
    order = _ORDER.get(entry.resource_type, 9)
    if entry.resource_type == "Observation" and any(
        c.get("code") in plans.mapping.LEVELS for c in (entry.raw.get("code") or {}).get("coding", [])
    ):
        order = 3
    moment = entry.raw.get("effectiveDateTime") or (entry.raw.get("effectivePeriod") or {}).get("start") or ""
    return order, str(moment)


@transaction.atomic
def bundle_import(
    *,
    document: bytes | str | dict[str, Any],
    user: AbstractBaseUser,
    channel: str,
    source: str = "",
    patient: Patient | None = None,
) -> FhirImport:
    """Import one Bundle about one patient; a report line for every entry, the whole import audited.

    The patient is the given one (the Bundle's Patient, if any, must carry the same MRN) or the Bundle's
    Patient, found by MRN or registered. Resources already imported from the same source are left alone.
    """
    try:
        data, entries = read_bundle(document)
    except BundleError as exc:
        raise ValidationError({"bundle": [str(exc)]}) from None
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    lines: list[Line] = []
    patient_entries = [e for e in entries if e.resource_type == "Patient" and not e.problem]
    if len(patient_entries) > 1:
        raise ValidationError({"bundle": ["the Bundle is about more than one patient: import one at a time"]})
    patient_refs: set[str] = set()
    if patient_entries:
        entry = patient_entries[0]
        patient_refs = {f"Patient/{entry.resource_id}", entry.full_url} - {""}
        if patient is not None:
            mrn = _mrn(entry.raw)
            if normalize_mrn(mrn) != patient.mrn_key:
                raise ValidationError(
                    {"bundle": [f"the Bundle's patient has MRN '{mrn}', not {patient.mrn}"]}
                )
            lines.append(Line(entry.label, UNCHANGED, "the patient of this record", str(patient.public_id)))
        else:
            patient, line = _patient_from(entry, user=user)
            lines.append(line)
    if patient is None:
        raise ValidationError({"bundle": ["the Bundle has no Patient: import it from the patient's page"]})
    if not access.can_access(user=user, patient=patient):
        raise PermissionDenied(access.NOT_YOURS)
    run = FhirImport.objects.create(
        patient=patient, channel=channel, source=source, bundle_sha256=digest, imported_by=user
    )
    for entry in sorted((e for e in entries if e not in patient_entries), key=_sort_key):
        lines.append(_import_entry(entry, run=run, patient=patient, patient_refs=patient_refs, user=user))
    run.report = [asdict(line) for line in lines]
    run.counts = {}
    for line in lines:
        run.counts[line.outcome] = run.counts.get(line.outcome, 0) + 1
    run.save(update_fields=["report", "counts"])
    return run


def _import_entry(
    entry: Entry, *, run: FhirImport, patient: Patient, patient_refs: set[str], user: AbstractBaseUser
) -> Line:
    if entry.problem:
        return Line(entry.label, NOT_IMPORTED, entry.problem)
    if not _about_patient(entry, patient_refs):
        reference = plans.subject_reference(entry.raw) or "no subject"
        return Line(entry.label, NOT_IMPORTED, f"about another patient ({reference})")
    known = ImportedResource.objects.filter(
        source=run.source, resource_type=entry.resource_type, resource_id=entry.resource_id
    ).first()
    if known is not None:
        if known.content_sha256 == entry.content_sha256:
            return Line(entry.label, UNCHANGED, "imported before", f"{known.target} {known.target_id}")
        return Line(
            entry.label,
            CHANGED,
            "changed in the source since it was imported: mark the earlier entry in error, then import again",
            f"{known.target} {known.target_id}",
        )
    try:
        plan = plans.plan_for(entry.resource_type, entry.raw)
        with transaction.atomic():  # a refused resource leaves nothing behind
            record = _record(plan, patient=patient, user=user)
            ImportedResource.objects.create(
                source=run.source,
                resource_type=entry.resource_type,
                resource_id=entry.resource_id,
                content_sha256=entry.content_sha256,
                target=record._meta.label_lower,
                target_id=record.pk,
                patient=patient,
                fhir_import=run,
            )
    except plans.Unmappable as exc:
        return Line(entry.label, NOT_IMPORTED, str(exc))
    except ValidationError as exc:  # the same check a typed entry meets (ConfirmationRequired included)
        return Line(entry.label, NOT_IMPORTED, f"refused by the checks: {_messages(exc)}")
    return Line(entry.label, IMPORTED, "", f"{record._meta.label_lower} {record.pk}")


def patient_pull(*, patient: Patient, user: AbstractBaseUser) -> FhirImport:
    """Import the patient's record from the configured FHIR server (client.FhirServerError if unreachable)."""
    from django.conf import settings

    from fhir_interop import client

    if not access.can_access(user=user, patient=patient):
        raise PermissionDenied(access.NOT_YOURS)
    document = client.patient_bundle(mrn=patient.mrn)
    return bundle_import(
        document=document,
        user=user,
        channel=FhirImport.Channel.SERVER,
        source=settings.FHIR_SERVER_BASE_URL,
        patient=patient,
    )
