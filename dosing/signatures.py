"""Electronic signatures of pharmacists' reviews (21 CFR Part 11 §11.50, §11.70, §11.200; Annex 11 §14).

A signature is given with both components at the moment of signing (the password and a fresh authenticator
code: a code already used, even for the sign-in, is refused), and it records:

* the printed name of the signer, the time (UTC) and the meaning (approved, approved with changes, rejected);
* the SHA-256 of the canonical text of what was signed: the recommendation and the patient, the Bayesian
  update's inputs hash, the model version with its document hash, the engine version, the recommended and
  the approved regimen with the hash of its figures, the red warnings acknowledged, the note.

``verify`` recomputes that text from the records as they are now: any later change to the recommendation,
the update's inputs, the model file or the signature breaks it. The signature row is in the audit trail too.

Segregation of duties: nobody signs a recommendation computed from data they recorded themselves (the
course, its doses and levels, the patient's measurements, genotypes and consent, up to the update).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts import otp
from audit.canonical import canonical_json, sha256_hex
from audit.models import AuditEntry
from audit.recorder import record_event
from dosing.models import ElectronicSignature, Recommendation
from models_catalog import integrity

FAILURE_LIMIT = 5
FAILURE_WINDOW = dt.timedelta(minutes=15)
METHOD = "password and authenticator code (TOTP), both given at signing"
MEANINGS = {
    Recommendation.Status.APPROVED: ElectronicSignature.Meaning.APPROVED,
    Recommendation.Status.MODIFIED: ElectronicSignature.Meaning.MODIFIED,
    Recommendation.Status.REJECTED: ElectronicSignature.Meaning.REJECTED,
}


def printed_name(user: Any) -> str:
    full = user.get_full_name().strip()
    return f"{full} ({user.get_username()})" if full else user.get_username()


def _failed(user: Any, recommendation: Recommendation | None, field: str, message: str) -> ValidationError:
    record_event(
        AuditEntry.Action.SIGNATURE_FAILED,
        user=user,
        patient_id=recommendation.course.patient.public_id if recommendation is not None else None,
        object_type="dosing.recommendation",
        object_id=recommendation.pk if recommendation is not None else "",
        reason=message,
    )
    return ValidationError({field: [message]})


def authenticate_signer(
    *, user: AbstractBaseUser, password: str, otp_code: str, recommendation: Recommendation | None = None
) -> str:
    """Both signature components, now; each failure is an audit entry, and five in 15 min stop signing."""
    since = timezone.now() - FAILURE_WINDOW
    failures = AuditEntry.objects.filter(
        action=AuditEntry.Action.SIGNATURE_FAILED, actor_id=user.pk, at__gte=since
    ).count()
    if failures >= FAILURE_LIMIT:
        raise ValidationError(
            {
                "password": [
                    f"{failures} failed signatures in the last 15 minutes: signing is paused; try later"
                ]
            }
        )
    if not user.check_password(password):
        raise _failed(user, recommendation, "password", "the signature (your password) is not correct")
    if otp.verify_code(user=user, code=otp_code) is None:
        raise _failed(
            user,
            recommendation,
            "otp_code",
            "the authenticator code is wrong or already used (also for the sign-in): type the next one",
        )
    return METHOD


@dataclass(frozen=True)
class Conflict:
    what: str


def conflicts_of_interest(*, recommendation: Recommendation, user: AbstractBaseUser) -> list[str]:
    """What ``user`` recorded among the inputs of this recommendation (empty: they may sign it)."""
    course = recommendation.course
    patient = course.patient
    cutoff = recommendation.update.requested_at
    found = []
    if course.opened_by_id == user.pk:
        found.append("opened this course")
    checks = (
        ("doses", course.doses.all()),
        ("levels", course.levels.all()),
        ("measurements", patient.measurements.all()),
        ("genotypes", patient.genotypes.all()),
        ("consent records", patient.consents.all()),
    )
    for label, rows in checks:
        if rows.filter(recorded_by=user, recorded_at__lte=cutoff).exists():
            found.append(f"recorded {label}")
        model_fields = {field.name for field in rows.model._meta.fields}
        if (
            "error_marked_by" in model_fields
            and rows.filter(error_marked_by=user, error_marked_at__lte=cutoff).exists()
        ):
            found.append(f"marked {label} entered in error")
        if "excluded_by" in model_fields and rows.filter(excluded_by=user, excluded_at__lte=cutoff).exists():
            found.append(f"excluded {label}")
    return found


def require_segregation(*, recommendation: Recommendation, user: AbstractBaseUser) -> None:
    found = conflicts_of_interest(recommendation=recommendation, user=user)
    if found:
        raise ValidationError(
            "segregation of duties: you " + ", ".join(found) + " of this course; another pharmacist must sign"
        )


def _inputs_sha256(inputs: Any) -> str:
    """As dosing.services computes it when the update runs."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def signed_content(
    recommendation: Recommendation, *, signer: Any, signed_at: dt.datetime, meaning: str
) -> dict[str, Any]:
    """Exactly what a signature covers, from the records."""
    update = recommendation.update
    version = update.model_version
    course = recommendation.course
    return {
        "statement": ElectronicSignature.Meaning(meaning).label,
        "meaning": meaning,
        "signer": {"username": signer.get_username(), "printed_name": printed_name(signer)},
        "signed_at_utc": signed_at.astimezone(dt.UTC).isoformat(),
        "patient": {"id": str(course.patient.public_id), "mrn": course.patient.mrn},
        "course": str(course.public_id),
        "recommendation": str(recommendation.public_id),
        "update": {"id": str(update.public_id), "inputs_sha256": update.inputs_sha256},
        "model_version": {
            "model_id": version.model_id,
            "version": version.version,
            "document_sha256": version.document_sha256,
        },
        "engine_version": update.engine_version,
        "recommended_regimen": recommendation.regimen,
        "approved_regimen": recommendation.final_regimen,
        # the figures the pharmacist saw for what they approved, and the red warnings they acknowledged
        "approved_figures_sha256": (
            sha256_hex(canonical_json(recommendation.final_figures)) if recommendation.final_figures else None
        ),
        "acknowledged_warnings": list(recommendation.acknowledged_alerts or []),
        "note": recommendation.review_note,
    }


def sign(*, recommendation: Recommendation, user: AbstractBaseUser, method: str) -> ElectronicSignature:
    """The signature of a review just saved (same transaction); the database allows one per recommendation."""
    meaning = MEANINGS[Recommendation.Status(recommendation.status)]
    signed_at = recommendation.reviewed_at or timezone.now()
    content = canonical_json(
        signed_content(recommendation, signer=user, signed_at=signed_at, meaning=meaning)
    )
    signature = ElectronicSignature.objects.create(
        recommendation=recommendation,
        signer=user,
        printed_name=printed_name(user),
        signed_at=signed_at,
        meaning=meaning,
        content=content,
        content_sha256=sha256_hex(content),
        method=method,
    )
    record_event(
        AuditEntry.Action.SIGNATURE,
        patient_id=recommendation.course.patient.public_id,
        object_type="dosing.electronicsignature",
        object_id=signature.pk,
        details={"meaning": meaning, "content_sha256": signature.content_sha256},
        reason=recommendation.review_note,
    )
    return signature


def verify(signature: ElectronicSignature) -> list[str]:
    """Why the signature no longer holds (empty: it does): the signed records must be as signed."""
    signature = ElectronicSignature.objects.select_related("signer").get(pk=signature.pk)  # as stored now
    problems = []
    if sha256_hex(signature.content) != signature.content_sha256:
        problems.append("the signed text does not match its hash")
    recommendation = Recommendation.objects.select_related("course__patient", "update__model_version").get(
        pk=signature.recommendation_id
    )
    expected = canonical_json(
        signed_content(
            recommendation, signer=signature.signer, signed_at=signature.signed_at, meaning=signature.meaning
        )
    )
    if expected != signature.content:
        problems.append("the recommendation, its update or its model version changed after signing")
    if (
        MEANINGS.get(recommendation.status) != signature.meaning
        or recommendation.reviewed_by_id != signature.signer_id
    ):
        problems.append("the review's decision or reviewer differs from the signature")
    update = recommendation.update
    if update.inputs and _inputs_sha256(update.inputs) != update.inputs_sha256:
        problems.append("the update's stored inputs no longer match their hash")
    reason = integrity.problem(update.model_version)
    if reason:
        problems.append(f"the model version: {reason}")
    return problems


@dataclass(frozen=True)
class SignatureView:
    signature: ElectronicSignature
    problems: list[str]


def signature_view(*, recommendation: Recommendation | None) -> SignatureView | None:
    """A recommendation's signature with its verification now, for the course page (None: unsigned)."""
    if recommendation is None:
        return None
    signature = (
        ElectronicSignature.objects.filter(recommendation=recommendation).select_related("signer").first()
    )
    if signature is None:
        return None
    return SignatureView(signature=signature, problems=verify(signature))
