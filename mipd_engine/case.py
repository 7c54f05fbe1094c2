"""Case files (model-spec section 2): one patient's model, covariates, doses, levels and requests."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidInputError, ModelError
from .events import CovariateChange, Dose, Observation, PatientRecord
from .model import PopulationModel, load_model, parse_error_model, parse_model

_DOSE_FIELDS = {
    "time_h",
    "amount_mg",
    "route",
    "compartment",
    "duration_h",
    "rate_mg_per_h",
    "interval_h",
    "additional",
    "steady_state",
    "modeled_duration",
}
_OBSERVATION_FIELDS = {"time_h", "value", "lloq", "output", "error"}
BOLUS_ROUTE = "iv_bolus"  # the preset route name of an injection given at once


@dataclass(frozen=True)
class PredictGrid:
    from_h: float
    to_h: float
    step_h: float

    def times(self) -> np.ndarray:
        n = math.floor((self.to_h - self.from_h) / self.step_h + 1e-9) + 1
        return self.from_h + self.step_h * np.arange(n)


@dataclass(frozen=True)
class PosteriorRequest:
    samples: int
    seed: int
    quantiles: tuple[float, ...]
    method: str = "importance"
    prediction_interval: bool = False


@dataclass(frozen=True)
class Case:
    model: PopulationModel
    record: PatientRecord
    predict: PredictGrid | None = None
    posterior: PosteriorRequest | None = None
    eta: np.ndarray | None = None
    prior_weight: float = 1.0
    target: Mapping[str, Any] | None = None
    regimen: Mapping[str, Any] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


def load_case(path: str | Path) -> Case:
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError("case", f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            "case", f"{path.name} is not valid JSON: {exc.msg} (line {exc.lineno})"
        ) from None
    return parse_case(document, base_dir=path.parent)


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(path, f"expected a finite number, got {value!r}")
    return float(value)


def parse_dose(document: Any, path: str) -> Dose:
    """One case-file dose object (time_h, amount_mg, route, duration_h, interval_h, additional...)."""
    if not isinstance(document, Mapping):
        raise InvalidInputError(path, "expected an object")
    unknown = set(document) - _DOSE_FIELDS
    if unknown:
        raise InvalidInputError(path, f"unknown field(s) {', '.join(sorted(unknown))}")
    if document.get("route") == BOLUS_ROUTE:
        for key in ("duration_h", "rate_mg_per_h"):
            if document.get(key):
                raise InvalidInputError(
                    f"{path}.{key}", "a bolus has no infusion duration or rate: use route iv_infusion"
                )
    try:
        return Dose(
            time_h=document.get("time_h"),
            amount_mg=document.get("amount_mg"),
            route=document.get("route"),
            compartment=document.get("compartment"),
            duration_h=document.get("duration_h"),
            rate_mg_per_h=document.get("rate_mg_per_h"),
            modeled_duration=bool(document.get("modeled_duration", False)),
            interval_h=document.get("interval_h"),
            additional=document.get("additional", 0),
            steady_state=bool(document.get("steady_state", False)),
        )
    except InvalidInputError as exc:
        raise InvalidInputError(f"{path}.{exc.path}", exc.message) from None


def parse_case(document: Any, *, base_dir: Path | None = None) -> Case:
    if not isinstance(document, Mapping):
        raise InvalidInputError("case", "a case file must be a JSON object")
    model_doc = document.get("model")
    if isinstance(model_doc, str):
        model_path = Path(model_doc)
        if not model_path.is_absolute() and base_dir is not None:
            model_path = base_dir / model_path
        model = load_model(model_path)
    elif isinstance(model_doc, Mapping):
        model = parse_model(model_doc)
    else:
        raise InvalidInputError("model", "give a model file path or an inline model object")

    covariates = {}
    for name, value in (document.get("covariates") or {}).items():
        if name not in model.covariates:
            raise InvalidInputError(f"covariates.{name}", f"the model has no covariate '{name}'")
        covariates[name] = _number(value, f"covariates.{name}")
    missing = [n for n in model.covariates if n in model.block.used_inputs and n not in covariates]
    if missing:
        raise InvalidInputError("covariates", f"missing value(s) for {', '.join(missing)}")
    changes = []
    for i, change in enumerate(document.get("covariate_changes") or []):
        path = f"covariate_changes[{i}]"
        if not isinstance(change, Mapping) or "time_h" not in change:
            raise InvalidInputError(path, "a change needs time_h and covariate values")
        values = {}
        for name, value in change.items():
            if name == "time_h":
                continue
            if name not in model.covariates:
                raise InvalidInputError(f"{path}.{name}", f"the model has no covariate '{name}'")
            values[name] = _number(value, f"{path}.{name}")
        for name in model.baseline_covariates:
            if name in values and values[name] != covariates.get(name):
                raise InvalidInputError(
                    f"{path}.{name}",
                    f"{name} is a baseline covariate (fixed for the course): it cannot change from "
                    f"{covariates.get(name, float('nan')):g} to {values[name]:g}",
                )
        changes.append(CovariateChange(_number(change["time_h"], f"{path}.time_h"), values))

    doses = [parse_dose(dose, f"doses[{i}]") for i, dose in enumerate(document.get("doses") or [])]

    observations = []
    for i, obs in enumerate(document.get("observations") or []):
        path = f"observations[{i}]"
        if not isinstance(obs, Mapping):
            raise InvalidInputError(path, "expected an object")
        unknown = set(obs) - _OBSERVATION_FIELDS
        if unknown:
            raise InvalidInputError(path, f"unknown field(s) {', '.join(sorted(unknown))}")
        output = obs.get("output")
        if output is not None and output not in model.outputs:
            raise InvalidInputError(f"{path}.output", f"unknown output '{output}'")
        error = None
        if obs.get("error") is not None:  # e.g. a monitoring device's own error model
            try:
                error = parse_error_model(f"{path}.error", obs["error"])
            except ModelError as exc:
                raise InvalidInputError(exc.path, exc.message) from None
        try:
            observations.append(
                Observation(
                    time_h=obs.get("time_h"),
                    value=obs.get("value"),
                    output=output,
                    lloq=obs.get("lloq"),
                    error=error,
                )
            )
        except InvalidInputError as exc:
            raise InvalidInputError(f"{path}.{exc.path}", exc.message) from None

    record = PatientRecord(
        covariates=covariates,
        doses=tuple(doses),
        observations=tuple(observations),
        covariate_changes=tuple(changes),
    )
    predict = None
    if document.get("predict") is not None:
        p = document["predict"]
        predict = PredictGrid(
            _number(p.get("from_h", 0), "predict.from_h"),
            _number(p.get("to_h"), "predict.to_h"),
            _number(p.get("step_h", 0.5), "predict.step_h"),
        )
        if predict.step_h <= 0 or predict.to_h < predict.from_h:
            raise InvalidInputError("predict", "need from_h <= to_h and a positive step_h")
        if len(predict.times()) > 100_000:
            raise InvalidInputError("predict", "more than 100,000 prediction times")
    posterior = None
    if document.get("posterior") is not None:
        p = document["posterior"]
        samples = int(_number(p.get("samples", 2000), "posterior.samples"))
        if not 1 <= samples <= 100_000:
            raise InvalidInputError("posterior.samples", "must lie between 1 and 100,000")
        quantiles = tuple(_number(q, "posterior.quantiles") for q in p.get("quantiles", [0.05, 0.5, 0.95]))
        if any(not 0 < q < 1 for q in quantiles):
            raise InvalidInputError("posterior.quantiles", "quantiles must lie strictly between 0 and 1")
        method = p.get("method", "importance")
        if method not in ("importance", "laplace"):
            raise InvalidInputError("posterior.method", f"unknown method '{method}' (importance, laplace)")
        posterior = PosteriorRequest(
            samples,
            int(_number(p.get("seed", 1), "posterior.seed")),
            quantiles,
            method,
            bool(p.get("prediction_interval", False)),
        )
    eta = None
    if document.get("eta") is not None:
        values = document["eta"]
        if not isinstance(values, Mapping):
            raise InvalidInputError("eta", "expected an object of eta values")
        unknown = set(values) - set(model.eta_names)
        if unknown:
            raise InvalidInputError("eta", f"unknown eta(s) {', '.join(sorted(unknown))}")
        eta = np.array([_number(values.get(n, 0.0), f"eta.{n}") for n in model.eta_names])
    prior_weight = _number(document.get("prior_weight", 1.0), "prior_weight")
    if not 0 < prior_weight <= 1:
        raise InvalidInputError("prior_weight", "must lie in (0, 1]")
    return Case(
        model=model,
        record=record,
        predict=predict,
        posterior=posterior,
        eta=eta,
        prior_weight=prior_weight,
        target=document.get("target"),
        regimen=document.get("regimen"),
        raw=dict(document),
    )
