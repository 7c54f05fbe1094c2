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
from models_catalog import engine_adapter
from models_catalog.models import (
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
    model_version.save()
    _event(actor=user, action="published", model_version=model_version, sha256=model_version.document_sha256)
    return model_version


@transaction.atomic
def model_version_retire(
    *, model_version: ModelVersion, user: AbstractBaseUser | None, reason: str
) -> ModelVersion:
    """Withdraw a published version from new courses; it stays readable for the courses that used it."""
    _require_curator(user)
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
    """Create or edit the target for a drug and indication; the engine checks the target document."""
    _require_curator(user)
    engine_adapter.target_from_document(target)
    if not (source or "").strip():
        raise ValidationError({"source": ["name the guideline or decision the target comes from"]})
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
def drug_limits_update(*, drug: Drug, user: AbstractBaseUser, **values: Any) -> Drug:
    """The hospital's dose limits and steps for a drug; every change is audited with before and after."""
    _require_curator(user)
    unknown = set(values) - set(Drug.LIMIT_FIELDS)
    if unknown:
        raise ValidationError(f"not a drug limit: {', '.join(sorted(unknown))}")
    if not str(values.get("limits_source", drug.limits_source)).strip():
        raise ValidationError(
            {"limits_source": ["say where the limits come from (guideline, SmPC, local decision)"]}
        )
    drug = Drug.objects.select_for_update().get(pk=drug.pk)
    before = {name: getattr(drug, name) for name in Drug.LIMIT_FIELDS}
    for name, value in values.items():
        setattr(drug, name, value)
    drug.full_clean()
    drug.save()
    after = {name: getattr(drug, name) for name in Drug.LIMIT_FIELDS}
    changed = {
        name: {"before": before[name], "after": after[name]} for name in after if before[name] != after[name]
    }
    _event(actor=user, action="drug_limits_edited", drug=drug.name, changes=changed)
    return drug
