"""Writes to the catalog: model versions through their life (draft → validated → published → retired),
drugs, target protocols and PGx tables. Every write leaves a ``CatalogEvent``.

Publishing follows the four-eyes rule: the curator who approves a version must differ from the one who
asked for its publication, from its author and from its last editor. A version is published only when its
latest validation run, on the exact document being published, reproduced every reference value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.roles import Role
from accounts.selectors import user_has_role
from models_catalog import engine_adapter, integrity
from models_catalog.models import (
    CatalogChangeRequest,
    CatalogEvent,
    Drug,
    ModelVersion,
    TargetProtocol,
    ValidationRun,
)
from models_catalog.selectors import declared_measurement_kinds

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?$")
Status = ModelVersion.Status


def _require_curator(user: AbstractBaseUser | None) -> None:
    """``None`` is the system (a management command run by the hospital's IT); users need the role."""
    if user is not None and not user_has_role(user=user, role=Role.MODEL_CURATOR):
        raise PermissionDenied("only model curators change the model catalog")


def _event(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    model_version: ModelVersion | None = None,
    target_protocol: TargetProtocol | None = None,
    **details: Any,
) -> None:
    CatalogEvent.objects.create(
        actor=actor,
        action=action,
        model_version=model_version,
        target_protocol=target_protocol,
        details=details,
    )


def _check_mapping(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError({field: ["expected a JSON object"]})
    return dict(value)


def _check_version(version: str) -> str:
    version = (version or "").strip()
    if not SEMVER.match(version):
        raise ValidationError({"version": [f"'{version}' is not a semantic version (e.g. 1.0.0)"]})
    return version


def _document_fields(document: Any) -> dict[str, Any]:
    """Validate the document with the engine and derive the columns the catalog lists and searches."""
    model = engine_adapter.model_from_document(document)
    citation = model.citation or {}
    text = str(citation.get("text", "")).strip()
    if not text:
        raise ValidationError({"document": ["citation.text: every catalog model cites its source"]})
    try:
        drug = Drug.objects.get(name=model.drug)
    except Drug.DoesNotExist:
        raise ValidationError(
            {"document": [f"drug: '{model.drug}' is not in the catalog; add the drug first"]}
        ) from None
    return {
        "drug": drug,
        "model_id": model.id,
        "title": model.title or model.id,
        "citation_text": text,
        "doi": str(citation.get("doi", "")).strip(),
        "document_sha256": engine_adapter.canonical_sha256(document),
    }


def _check_covariate_sources(document: Any, sources: Any) -> dict[str, Any]:
    """Empty is allowed for a draft (the model cannot be used for patients until it has them)."""
    if not sources:
        return {}
    model = engine_adapter.model_from_document(document)
    return engine_adapter.covariate_sources_parse(sources, model)


def _check_reference_checks(checks: Any) -> list[Any]:
    if checks is None:
        return []
    if not isinstance(checks, list):
        raise ValidationError({"reference_checks": ["expected a JSON list"]})
    engine_adapter.reference_checks_parse(checks)
    return checks


@transaction.atomic
def model_version_create(
    *,
    document: Any,
    version: str,
    user: AbstractBaseUser | None,
    model_card: Mapping[str, Any] | None = None,
    reference_checks: list[Any] | None = None,
    transcription: Mapping[str, Any] | None = None,
    covariate_sources: Mapping[str, Any] | None = None,
) -> ModelVersion:
    """A new draft from a model file. Nothing is saved unless everything validates."""
    _require_curator(user)
    version = _check_version(version)
    fields = _document_fields(document)
    if ModelVersion.objects.filter(model_id=fields["model_id"], version=version).exists():
        raise ValidationError(
            {"version": [f"{fields['model_id']} {version} exists already: pick a new version"]}
        )
    model_version = ModelVersion(
        **fields,
        version=version,
        document=document,
        model_card=_check_mapping(model_card, "model_card"),
        reference_checks=_check_reference_checks(reference_checks),
        transcription=_check_mapping(transcription, "transcription"),
        covariate_sources=_check_covariate_sources(document, covariate_sources),
        created_by=user,
        last_edited_by=user,
    )
    model_version.full_clean()
    model_version.save()
    _event(actor=user, action="created", model_version=model_version, sha256=model_version.document_sha256)
    return model_version


@transaction.atomic
def model_version_update(
    *,
    model_version: ModelVersion,
    user: AbstractBaseUser | None,
    document: Any,
    model_card: Mapping[str, Any] | None = None,
    reference_checks: list[Any] | None = None,
    transcription: Mapping[str, Any] | None = None,
    covariate_sources: Mapping[str, Any] | None = None,
) -> ModelVersion:
    """Edit a version that is not yet published; it goes back to draft and must be validated again."""
    _require_curator(user)
    model_version = ModelVersion.objects.select_for_update().get(pk=model_version.pk)
    if model_version.status in (Status.PUBLISHED, Status.RETIRED):
        raise ValidationError(
            f"{model_version} is {model_version.status}: it never changes. Create a new version instead."
        )
    fields = _document_fields(document)
    if fields["model_id"] != model_version.model_id:
        raise ValidationError({"document": ["id: a new model id is a new model, not a new edit"]})
    for name, value in fields.items():
        setattr(model_version, name, value)
    model_version.document = document
    model_version.model_card = _check_mapping(model_card, "model_card")
    model_version.reference_checks = _check_reference_checks(reference_checks)
    model_version.transcription = _check_mapping(transcription, "transcription")
    model_version.covariate_sources = _check_covariate_sources(document, covariate_sources)
    model_version.status = Status.DRAFT
    model_version.publication_requested_by = None
    model_version.publication_requested_at = None
    model_version.last_edited_by = user
    model_version.full_clean()
    model_version.save()
    _event(actor=user, action="edited", model_version=model_version, sha256=model_version.document_sha256)
    return model_version


@transaction.atomic
def model_version_validate(*, model_version: ModelVersion, user: AbstractBaseUser | None) -> ValidationRun:
    """Parse the document with the engine and rerun its reference checks; store the run.

    A passing run moves a draft to validated; a failing one moves a validated version back to draft. Runs on
    published or retired versions are kept for audit and change nothing.
    """
    _require_curator(user)
    model_version = ModelVersion.objects.select_for_update().get(pk=model_version.pk)
    results: list[dict[str, Any]] = []
    try:
        model = engine_adapter.model_from_document(model_version.document)
        if not model_version.reference_checks:
            success, message = (
                False,
                "no reference checks: a version is validated against stored reference values",
            )
        else:
            report = engine_adapter.reference_checks_run(model, model_version.reference_checks)
            success, message = report.success, report.message
            results = [
                {
                    "description": result.check.description,
                    "source": result.check.source,
                    "expected": result.check.expected,
                    "observed": result.observed,
                    "unit": result.check.unit,
                    "rel_tol": result.check.rel_tol,
                    "rel_tol_percent": 100.0 * result.check.rel_tol,
                    "passed": result.passed,
                    "message": result.message,
                }
                for result in report.results
            ]
    except ValidationError as exc:
        success, message = False, "; ".join(exc.messages)
    run = ValidationRun.objects.create(
        model_version=model_version,
        document_sha256=model_version.document_sha256,
        engine_version=engine_adapter.ENGINE_VERSION,
        success=success,
        message=message,
        results=results,
        run_by=user,
    )
    if success and model_version.status == Status.DRAFT:
        model_version.status = Status.VALIDATED
    elif not success and model_version.status == Status.VALIDATED:
        model_version.status = Status.DRAFT
        model_version.publication_requested_by = None
        model_version.publication_requested_at = None
    model_version.save()
    _event(actor=user, action="validated" if success else "validation_failed", model_version=model_version)
    return run


def _require_usable_for_patients(model_version: ModelVersion) -> None:
    """A validity domain, and a source for every covariate the model uses, in a unit no other published model
    contradicts."""
    model = engine_adapter.model_from_document(model_version.document)
    if model.domain is None:
        raise ValidationError(
            {
                "document": [
                    "the model declares no validity domain: add its 'domain' (the hard limits of its use and "
                    "the ranges of the studied population, with their source) so that each patient can be "
                    "checked"
                ]
            }
        )
    sources = engine_adapter.covariate_sources_parse(model_version.covariate_sources or {}, model)
    declared = declared_measurement_kinds()
    for name, spec in sources.items():
        if spec.get("from") != "measurement":
            continue
        kind, unit = str(spec["kind"]), str(spec.get("unit", ""))
        if kind in declared and declared[kind] != unit:
            raise ValidationError(
                {
                    "covariate_sources": [
                        f"{name}: published models record '{kind}' in '{declared[kind]}', not '{unit}'; use "
                        "another kind name or the same unit"
                    ]
                }
            )


def _require_passing_validation(model_version: ModelVersion) -> None:
    latest = model_version.validation_runs.first()
    if latest is None or not latest.success or latest.document_sha256 != model_version.document_sha256:
        raise ValidationError(
            f"{model_version} has no passing validation run on its current model file: validate it first"
        )


@transaction.atomic
def model_version_request_publication(
    *, model_version: ModelVersion, user: AbstractBaseUser | None
) -> ModelVersion:
    _require_curator(user)
    model_version = ModelVersion.objects.select_for_update().get(pk=model_version.pk)
    if model_version.status != Status.VALIDATED:
        raise ValidationError(
            f"{model_version} is {model_version.status}: only a validated version can be published"
        )
    _require_passing_validation(model_version)
    _require_usable_for_patients(model_version)
    model_version.publication_requested_by = user
    model_version.publication_requested_at = timezone.now()
    model_version.save()
    _event(actor=user, action="publication_requested", model_version=model_version)
    return model_version


@transaction.atomic
def model_version_approve_publication(*, model_version: ModelVersion, user: AbstractBaseUser) -> ModelVersion:
    """Publish a version another curator asked to publish (four-eyes)."""
    if user is None:
        raise PermissionDenied("publishing needs a named second curator")
    _require_curator(user)
    model_version = ModelVersion.objects.select_for_update().get(pk=model_version.pk)
    if model_version.status != Status.VALIDATED:
        raise ValidationError(
            f"{model_version} is {model_version.status}: only a validated version can be published"
        )
    if model_version.publication_requested_at is None:
        raise ValidationError(f"{model_version}: nobody asked for its publication yet")
    involved = {
        model_version.publication_requested_by_id,
        model_version.created_by_id,
        model_version.last_edited_by_id,
    }
    if user.pk in involved:
        raise PermissionDenied(
            "four-eyes rule: the approving curator must not have written, edited or submitted this version"
        )
    _require_passing_validation(model_version)
    model_version.status = Status.PUBLISHED
    model_version.published_by = user
    model_version.published_at = timezone.now()
    integrity.seal(model_version)  # checked at every use for dosing (models_catalog.integrity)
    model_version.save()
    _event(actor=user, action="published", model_version=model_version, sha256=model_version.document_sha256)
    return model_version


@transaction.atomic
def model_version_retire(
    *, model_version: ModelVersion, user: AbstractBaseUser | None, reason: str
) -> ModelVersion:
    """Withdraw a published version from new courses; it stays readable for the courses that used it.

    A curator asks for it (``model_version_request_retirement``) and a second one approves; only the system
    (``user=None``: a management command run by IT) retires directly.
    """
    if user is not None:
        raise PermissionDenied(
            "retiring a version needs a second curator: request it, another curator approves"
        )
    return _retire(model_version=model_version, user=None, reason=reason)


def _retire(*, model_version: ModelVersion, user: AbstractBaseUser | None, reason: str) -> ModelVersion:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["say why the version is retired"]})
    model_version = ModelVersion.objects.select_for_update().get(pk=model_version.pk)
    if model_version.status != Status.PUBLISHED:
        raise ValidationError(
            f"{model_version} is {model_version.status}: only a published version is retired"
        )
    model_version.status = Status.RETIRED
    model_version.retired_by = user
    model_version.retired_at = timezone.now()
    model_version.retired_reason = reason
    model_version.save()
    _event(actor=user, action="retired", model_version=model_version, reason=reason)
    return model_version


def model_version_new_draft(
    *, source: ModelVersion, version: str, user: AbstractBaseUser | None
) -> ModelVersion:
    """Start the next version of a model from an existing one (a published version never changes)."""
    return model_version_create(
        document=source.document,
        version=version,
        user=user,
        model_card=source.model_card,
        reference_checks=source.reference_checks,
        covariate_sources=source.covariate_sources,
        transcription={**source.transcription, "derived_from": f"{source.model_id} {source.version}"},
    )


@transaction.atomic
def target_protocol_save(
    *,
    drug: Drug,
    indication: str,
    target: Mapping[str, Any],
    source: str,
    user: AbstractBaseUser | None,
    institution_note: str = "",
    active: bool = True,
) -> TargetProtocol:
    """Create or edit the target for a drug and indication directly: the system only (``user=None``).

    Curators propose (``target_protocol_propose``) and a second curator approves.
    """
    if user is not None:
        raise PermissionDenied("a target change needs a second curator: propose it, another curator approves")
    _check_target_protocol(target=target, source=source)
    return _save_target_protocol(
        drug=drug,
        indication=indication,
        target=target,
        source=source,
        user=None,
        institution_note=institution_note,
        active=active,
    )


def _check_target_protocol(*, target: Mapping[str, Any], source: str) -> None:
    engine_adapter.target_from_document(target)
    if not (source or "").strip():
        raise ValidationError({"source": ["name the guideline or decision the target comes from"]})


def _save_target_protocol(
    *,
    drug: Drug,
    indication: str,
    target: Mapping[str, Any],
    source: str,
    user: AbstractBaseUser | None,
    institution_note: str,
    active: bool,
) -> TargetProtocol:
    protocol = TargetProtocol.objects.filter(drug=drug, indication=indication).first()
    before = None if protocol is None else {"target": protocol.target, "active": protocol.active}
    protocol = protocol or TargetProtocol(drug=drug, indication=indication)
    protocol.target = dict(target)
    protocol.source = source.strip()
    protocol.institution_note = institution_note
    protocol.active = active
    protocol.updated_by = user
    protocol.full_clean()
    protocol.save()
    _event(
        actor=user,
        action="target_created" if before is None else "target_edited",
        target_protocol=protocol,
        before=before,
        after={"target": protocol.target, "active": protocol.active},
    )
    return protocol


@transaction.atomic
def drug_limits_update(*, drug: Drug, user: AbstractBaseUser | None, **values: Any) -> Drug:
    """Set a drug's limits directly: the system only (``user=None``). Curators propose a complete new set
    (``drug_limits_propose``) and a second curator approves it."""
    if user is not None:
        raise PermissionDenied("a limits change needs a second curator: propose it, another curator approves")
    return _apply_drug_limits(drug=drug, user=None, values=_complete_limits(values))


def _complete_limits(values: Mapping[str, Any]) -> dict[str, Any]:
    """A limits change is the whole set: a missing limit is refused, never taken as "no limit"."""
    unknown = set(values) - set(Drug.LIMIT_FIELDS)
    if unknown:
        raise ValidationError(f"not a drug limit: {', '.join(sorted(unknown))}")
    missing = [name for name in Drug.LIMIT_FIELDS if name not in values]
    if missing:
        raise ValidationError(
            "a limits change states every limit (empty means no limit, explicitly); missing: "
            + ", ".join(missing)
        )
    if not str(values.get("limits_source") or "").strip():
        raise ValidationError(
            {"limits_source": ["say where the limits come from (guideline, SmPC, local decision)"]}
        )
    return dict(values)


def _limits_of(drug: Drug) -> dict[str, Any]:
    return {name: getattr(drug, name) for name in Drug.LIMIT_FIELDS}


def _apply_drug_limits(*, drug: Drug, user: AbstractBaseUser | None, values: Mapping[str, Any]) -> Drug:
    drug = Drug.objects.select_for_update().get(pk=drug.pk)
    before = _limits_of(drug)
    for name, value in values.items():
        setattr(drug, name, value)
    drug.full_clean()
    drug.save()
    after = _limits_of(drug)
    changed = {
        name: {"before": before[name], "after": after[name]} for name in after if before[name] != after[name]
    }
    _event(actor=user, action="drug_limits_edited", drug=drug.name, changes=changed)
    return drug


# Four eyes on what changes dosing: a curator proposes, another approves (CatalogChangeRequest).

Kind = CatalogChangeRequest.Kind
RequestStatus = CatalogChangeRequest.Status


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["say why (the second curator reads it)"]})
    return reason


def _supersede_pending(**match: Any) -> None:
    CatalogChangeRequest.objects.filter(status=RequestStatus.PENDING, **match).update(
        status=RequestStatus.SUPERSEDED, decided_at=timezone.now()
    )


@transaction.atomic
def drug_limits_propose(
    *, drug: Drug, user: AbstractBaseUser, reason: str, **values: Any
) -> CatalogChangeRequest:
    """Propose a complete new set of limits for a drug; it applies when another curator approves."""
    if user is None:
        raise PermissionDenied("a proposal names its curator")
    _require_curator(user)
    reason = _require_reason(reason)
    values = _complete_limits(values)
    drug = Drug.objects.get(pk=drug.pk)  # the stored limits, as an approval will compare them
    trial = Drug.objects.get(pk=drug.pk)
    for name, value in values.items():
        setattr(trial, name, value)
    trial.full_clean()  # field errors now, not at approval
    _supersede_pending(kind=Kind.DRUG_LIMITS, drug=drug)
    request = CatalogChangeRequest.objects.create(
        kind=Kind.DRUG_LIMITS,
        drug=drug,
        current=_limits_of(drug),
        proposed={name: getattr(trial, name) for name in Drug.LIMIT_FIELDS},
        reason=reason,
        requested_by=user,
    )
    _event(actor=user, action="drug_limits_proposed", drug=drug.name, change_request=request.pk)
    return request


@transaction.atomic
def target_protocol_propose(
    *,
    drug: Drug,
    indication: str,
    target: Mapping[str, Any],
    source: str,
    user: AbstractBaseUser,
    reason: str,
    institution_note: str = "",
    active: bool = True,
) -> CatalogChangeRequest:
    """Propose a new or changed target protocol; it applies when another curator approves."""
    if user is None:
        raise PermissionDenied("a proposal names its curator")
    _require_curator(user)
    reason = _require_reason(reason)
    _check_target_protocol(target=target, source=source)
    protocol = TargetProtocol.objects.filter(drug=drug, indication=indication).first()
    _supersede_pending(kind=Kind.TARGET_PROTOCOL, drug=drug, indication=indication)
    request = CatalogChangeRequest.objects.create(
        kind=Kind.TARGET_PROTOCOL,
        drug=drug,
        target_protocol=protocol,
        indication=indication,
        current=_protocol_state(protocol),
        proposed={
            "target": dict(target),
            "source": source.strip(),
            "institution_note": institution_note,
            "active": active,
        },
        reason=reason,
        requested_by=user,
    )
    _event(actor=user, action="target_proposed", target_protocol=protocol, change_request=request.pk)
    return request


def _protocol_state(protocol: TargetProtocol | None) -> dict[str, Any]:
    if protocol is None:
        return {}
    return {
        "target": protocol.target,
        "source": protocol.source,
        "institution_note": protocol.institution_note,
        "active": protocol.active,
    }


@transaction.atomic
def model_version_request_retirement(
    *, model_version: ModelVersion, user: AbstractBaseUser, reason: str
) -> CatalogChangeRequest:
    """Ask for a published version to be retired; another curator approves."""
    if user is None:
        raise PermissionDenied("a request names its curator")
    _require_curator(user)
    reason = _require_reason(reason)
    if model_version.status != Status.PUBLISHED:
        raise ValidationError(
            f"{model_version} is {model_version.status}: only a published version is retired"
        )
    _supersede_pending(kind=Kind.RETIRE_VERSION, model_version=model_version)
    request = CatalogChangeRequest.objects.create(
        kind=Kind.RETIRE_VERSION,
        drug=model_version.drug,
        model_version=model_version,
        current={"status": model_version.status},
        proposed={"status": Status.RETIRED, "retired_reason": reason},
        reason=reason,
        requested_by=user,
    )
    _event(actor=user, action="retirement_requested", model_version=model_version, change_request=request.pk)
    return request


def _pending_for_decision(change_request: CatalogChangeRequest) -> CatalogChangeRequest:
    change_request = CatalogChangeRequest.objects.select_for_update().get(pk=change_request.pk)
    if change_request.status != RequestStatus.PENDING:
        raise ValidationError(f"this change is {change_request.get_status_display().lower()}")
    return change_request


@transaction.atomic
def change_request_approve(
    *, change_request: CatalogChangeRequest, user: AbstractBaseUser, note: str = ""
) -> CatalogChangeRequest:
    """A second curator approves: the change applies now, exactly as proposed (four-eyes)."""
    if user is None:
        raise PermissionDenied("approving needs a named second curator")
    _require_curator(user)
    change_request = _pending_for_decision(change_request)
    if change_request.requested_by_id == user.pk:
        raise PermissionDenied("four-eyes rule: a second curator approves what you proposed")
    stale = "what it changes was changed since it was proposed: propose it again on the current state"
    if change_request.kind == Kind.DRUG_LIMITS:
        drug = Drug.objects.select_for_update().get(pk=change_request.drug_id)
        if _json_state(_limits_of(drug)) != _json_state(change_request.current):
            raise ValidationError(stale)
        _apply_drug_limits(drug=drug, user=user, values=change_request.proposed)
    elif change_request.kind == Kind.TARGET_PROTOCOL:
        protocol = TargetProtocol.objects.filter(
            drug_id=change_request.drug_id, indication=change_request.indication
        ).first()
        if _json_state(_protocol_state(protocol)) != _json_state(change_request.current):
            raise ValidationError(stale)
        proposed = change_request.proposed
        _save_target_protocol(
            drug=change_request.drug,
            indication=change_request.indication,
            target=proposed["target"],
            source=proposed["source"],
            user=user,
            institution_note=proposed.get("institution_note", ""),
            active=bool(proposed.get("active", True)),
        )
    else:
        _retire(model_version=change_request.model_version, user=user, reason=change_request.reason)
    change_request.status = RequestStatus.APPROVED
    change_request.decided_by = user
    change_request.decided_at = timezone.now()
    change_request.decision_note = (note or "").strip()
    change_request.full_clean()
    change_request.save()
    _event(actor=user, action="change_approved", change_request=change_request.pk, kind=change_request.kind)
    return change_request


@transaction.atomic
def change_request_reject(
    *, change_request: CatalogChangeRequest, user: AbstractBaseUser, note: str
) -> CatalogChangeRequest:
    """Another curator rejects a proposal (saying why), or its author withdraws it."""
    _require_curator(user)
    change_request = _pending_for_decision(change_request)
    own = change_request.requested_by_id == user.pk
    if not own and not (note or "").strip():
        raise ValidationError({"note": ["say why the change is rejected"]})
    change_request.status = RequestStatus.WITHDRAWN if own else RequestStatus.REJECTED
    change_request.decided_by = user
    change_request.decided_at = timezone.now()
    change_request.decision_note = (note or "").strip()
    change_request.save()
    _event(
        actor=user, action="change_withdrawn" if own else "change_rejected", change_request=change_request.pk
    )
    return change_request


def _json_state(state: Mapping[str, Any]) -> str:
    """States compared as stored JSON (floats and lists as the JSON field gives them back)."""
    import json

    return json.dumps(state, sort_keys=True, default=str)
