"""The only place catalog rows become engine inputs (and engine errors become Django validation errors)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from django.core.exceptions import ValidationError

from mipd_engine import ENGINE_VERSION
from mipd_engine.case import parse_case
from mipd_engine.covariate_sources import parse_covariate_sources
from mipd_engine.errors import EngineError, InvalidInputError
from mipd_engine.model import PopulationModel, parse_model
from mipd_engine.reference_checks import (
    ReferenceCheck,
    ReferenceReport,
    parse_reference_checks,
    run_reference_checks,
)
from mipd_engine.reports import simulate_case
from mipd_engine.targets import Target

__all__ = [
    "ENGINE_VERSION",
    "canonical_sha256",
    "covariate_sources_parse",
    "model_from_document",
    "prediction_band",
    "reference_checks_parse",
    "reference_checks_run",
    "target_from_document",
    "version_model",
]


def canonical_json(document: Any) -> str:
    """Key-sorted, whitespace-free JSON: the same model gives the same text, hence the same hash."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_sha256(document: Any) -> str:
    return hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()


def model_from_document(document: Any, *, field: str = "document") -> PopulationModel:
    """The engine's model, or a ValidationError on ``field`` naming the path inside the model file."""
    try:
        return parse_model(document)
    except InvalidInputError as exc:
        raise ValidationError({field: [str(exc)]}, code="invalid_model") from None


# Parsed models of published and retired versions, whose documents never change (ModelVersion.save refuses).
PARSED_MODELS_MAX = 32
_parsed_models: OrderedDict[tuple[int, str], PopulationModel] = OrderedDict()
_parsed_models_lock = threading.Lock()


def version_model(version: Any) -> PopulationModel:
    """The engine's model of a catalog version, parsed once per process for a frozen version (bounded LRU).

    Keyed by the row and its document's SHA-256, not the hash alone: the canonical JSON sorts keys, so two
    versions of the same content in another key order share a hash but not, say, their outputs' order. A
    draft or validated version can still be edited, so it is parsed each time.
    """
    if not version.is_frozen or version.pk is None:
        return parse_model(version.document)
    key = (version.pk, version.document_sha256)
    with _parsed_models_lock:
        model = _parsed_models.get(key)
        if model is not None:
            _parsed_models.move_to_end(key)
            return model
    model = parse_model(version.document)
    for matrix in (model.omega, model.iov_omega):  # shared by every request: a write in place would leak
        if matrix is not None:
            matrix.flags.writeable = False
    with _parsed_models_lock:
        _parsed_models[key] = model
        while len(_parsed_models) > PARSED_MODELS_MAX:
            _parsed_models.popitem(last=False)
    return model


def reference_checks_parse(checks_document: Any) -> tuple[ReferenceCheck, ...]:
    try:
        return parse_reference_checks(checks_document)
    except InvalidInputError as exc:
        raise ValidationError({"reference_checks": [str(exc)]}, code="invalid_reference_checks") from None


def reference_checks_run(model: PopulationModel, checks_document: Any) -> ReferenceReport:
    """Parse the stored reference checks and run them; a parse error is a ValidationError."""
    return run_reference_checks(model, reference_checks_parse(checks_document))


def covariate_sources_parse(document: Any, model: PopulationModel) -> dict[str, dict[str, Any]]:
    try:
        return parse_covariate_sources(document, model)
    except InvalidInputError as exc:
        raise ValidationError({"covariate_sources": [str(exc)]}, code="invalid_covariate_sources") from None


def target_from_document(document: Any, *, field: str = "target") -> Target:
    try:
        return Target.from_mapping(document)
    except InvalidInputError as exc:
        raise ValidationError({field: [str(exc)]}, code="invalid_target") from None


def prediction_band(
    *,
    document: Mapping[str, Any],
    covariates: Mapping[str, float],
    doses: Sequence[Mapping[str, Any]],
    until_h: float,
    samples: int = 1000,
    seed: int = 20240601,
) -> dict[str, Any]:
    """Typical-patient curve and 5/50/95 % prior prediction band for a regimen (the curator's preview)."""
    case_document = {
        "model": dict(document),
        "covariates": dict(covariates),
        "doses": [dict(dose) for dose in doses],
        "predict": {"from_h": 0.0, "to_h": float(until_h), "step_h": max(float(until_h) / 400.0, 0.05)},
        "posterior": {"samples": samples, "seed": seed, "quantiles": [0.05, 0.5, 0.95]},
    }
    try:
        return simulate_case(parse_case(case_document))
    except InvalidInputError as exc:
        raise ValidationError(str(exc), code="invalid_preview") from None
    except EngineError as exc:
        raise ValidationError(
            f"the engine could not simulate this regimen: {exc}", code="engine_error"
        ) from None
