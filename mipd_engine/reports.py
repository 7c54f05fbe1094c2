"""Whole workflows on a case, returning the JSON documents of the command line (model-spec section 2)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import ENGINE_VERSION
from .case import Case, PosteriorRequest
from .dose_solver import dose_for_auc
from .errors import EngineError, InvalidInputError
from .estimation import MapResult, fit_map
from .linear_solver import shared_decompositions
from .objective import Objective
from .posterior import PosteriorSample, credible_band, sample_posterior, shrinkage
from .regimens import (
    Regimen,
    evaluate_regimens,
    extend_record,
    parse_recommendation_request,
    search_regimens,
    truncate_record,
)
from .sampling_advice import advise_sampling, candidate_sampling_times
from .simulation import PatientSimulator
from .targets import TARGET_FIELDS, Target


def _floats(values: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=float).ravel()]


def _parameters_at(objective: Objective, theta: np.ndarray) -> dict[str, float]:
    """Model parameters of the estimate, with the covariates in force at the last level (or the start)."""
    eta, kappa = objective.split(theta[None, :])
    simulator = objective.simulator
    t = float(objective.times_h.max()) if objective.n_obs else -np.inf
    segment = simulator.schedule.segments[int(simulator.schedule.segment_of_time(np.array([t]))[0])]
    k = None if kappa is None else kappa[:, min(segment.occasion, kappa.shape[1] - 1), :]
    values = objective.model.evaluate(segment.covariates, eta, k)
    return {name: float(np.ravel(values[name])[0]) for name in objective.model.parameter_names}


def _warnings(case: Case) -> list[str]:
    model = case.model
    warnings = list(model.covariate_warnings(case.record.covariates))
    for change in case.record.covariate_changes:
        warnings += [f"at {change.time_h:g} h: {w}" for w in model.covariate_warnings(change.values)]
    return warnings


def _prediction_block(case: Case, curves: dict[str, dict[str, Any]], times: np.ndarray) -> dict[str, Any]:
    """The spec's layout: top-level keys for a single-output model, ``outputs`` always."""
    block: dict[str, Any] = {"times_h": _floats(times), "outputs": curves}
    if len(curves) == 1:
        block.update(next(iter(curves.values())))
    return block


@dataclass(frozen=True)
class _Fitted:
    """What a fit leaves for the steps after it: the posterior sample is drawn once and reused."""

    document: dict[str, Any]
    objective: Objective
    fit: MapResult
    sample: PosteriorSample | None = None
    rng: np.random.Generator | None = None  # the generator as it stood right after sampling


def fit_case(case: Case) -> dict[str, Any]:
    """MAP fit (or fixed etas), observation diagnostics, prediction with credible bands."""
    return _fit_case(case).document


def _fit_case(case: Case) -> _Fitted:
    model = case.model
    objective = Objective(model, case.record, prior_weight=case.prior_weight)
    warnings = _warnings(case)
    if case.eta is not None:
        theta = np.concatenate([case.eta, np.zeros(objective.dimension - model.n_eta)])
        ofv = float(objective(theta)[0])
        fit = MapResult(
            success=True,
            message="etas given in the case, not estimated",
            theta=theta,
            eta=case.eta,
            kappa=np.zeros((objective.n_occasions_estimated, model.n_kappa)),
            ofv=ofv,
            covariance=np.full((objective.dimension,) * 2, np.nan),
            eta_covariance=np.full((model.n_eta, model.n_eta), np.nan),
            n_iterations=0,
            n_evaluations=1,
            n_starts=0,
            gradient_norm=float("nan"),
        )
    else:
        fit = fit_map(model, case.record, objective=objective)
    warnings += list(fit.warnings)
    document: dict[str, Any] = {
        "success": fit.success,
        "message": fit.message,
        "engine_version": ENGINE_VERSION,
        "model_id": model.id,
        "map": {
            "eta": dict(zip(model.eta_names, _floats(fit.eta), strict=True)),
            "parameters": _parameters_at(objective, fit.theta),
            "ofv": fit.ofv,
            "n_iterations": fit.n_iterations,
            "eta_covariance": [_floats(row) for row in fit.eta_covariance],
            "shrinkage": dict(zip(model.eta_names, _floats(shrinkage(fit, model.omega)), strict=True))
            if model.n_eta
            else {},
        },
        "warnings": warnings,
    }
    if model.n_kappa:
        document["map"]["kappa"] = [dict(zip(model.kappa_names, _floats(k), strict=True)) for k in fit.kappa]
    if not fit.success:
        # A failed fit reports why and no predictions that could pass for an individual estimate.
        return _Fitted(document, objective, fit)
    sample: PosteriorSample | None = None
    rng: np.random.Generator | None = None
    ipred = objective.predictions(fit.theta)[0]
    pred = objective.predictions(np.zeros(objective.dimension))[0]
    rows = []
    for j, obs in enumerate(case.record.observations):
        error = objective.errors[j]
        row: dict[str, Any] = {
            "time_h": obs.time_h,
            "value": obs.value,
            "output": obs.output or model.default_output,
            "pred": float(pred[j]),
            "ipred": float(ipred[j]),
        }
        if obs.value is not None:
            if error.model == "exponential":
                row["iwres"] = float((np.log(obs.value) - np.log(max(ipred[j], 1e-300))) / error.additive)
            else:
                row["iwres"] = float(
                    (obs.value - ipred[j]) / np.sqrt(error.variance(np.array([ipred[j]]))[0])
                )
        else:
            row["lloq"] = obs.lloq
        rows.append(row)
    document["observations"] = rows
    if case.predict is not None:
        times = case.predict.times()
        curves: dict[str, dict[str, Any]] = {}
        map_curve = objective.simulator.predict(times, *objective.split(fit.theta[None, :])).outputs
        apriori = objective.simulator.predict(
            times, *objective.split(np.zeros((1, objective.dimension)))
        ).outputs
        for name in model.outputs:
            curves[name] = {"map": _floats(map_curve[name][0]), "apriori": _floats(apriori[name][0])}
        if case.posterior is not None and objective.dimension and case.eta is None:
            rng = np.random.default_rng(case.posterior.seed)
            sample = sample_posterior(
                objective, fit, n_samples=case.posterior.samples, rng=rng, method=case.posterior.method
            )
            band = credible_band(
                objective,
                sample,
                times,
                quantiles=case.posterior.quantiles,
                rng=copy.deepcopy(rng),  # the band's draws leave the generator as sampling left it
                prediction_interval=case.posterior.prediction_interval,
            )
            for name in model.outputs:
                curves[name]["quantiles"] = {
                    f"{q:g}": _floats(band.quantiles[q][name]) for q in band.quantiles
                }
                curves[name]["band"] = band.kind
            document["posterior"] = {
                "method": sample.method,
                "samples": sample.n_samples,
                "effective_sample_size": sample.effective_sample_size,
                "proposals": sample.n_proposals,
            }
            warnings += list(sample.warnings)
        document["prediction"] = _prediction_block(case, curves, times)
    return _Fitted(document, objective, fit, sample, rng)


def simulate_case(case: Case) -> dict[str, Any]:
    """Typical-patient prediction (etas 0 or the case's etas) and prior predictive quantiles."""
    model = case.model
    if case.predict is None:
        raise InvalidInputError("predict", "simulate needs a 'predict' block (from_h, to_h, step_h)")
    simulator = PatientSimulator(model, case.record)
    times = case.predict.times()
    eta = case.eta if case.eta is not None else np.zeros(model.n_eta)
    typical = simulator.predict(times, eta[None, :]).outputs
    curves: dict[str, dict[str, Any]] = {
        name: {"typical": _floats(typical[name][0])} for name in model.outputs
    }
    if case.posterior is not None and model.n_eta:
        rng = np.random.default_rng(case.posterior.seed)
        etas = rng.multivariate_normal(
            np.zeros(model.n_eta), model.omega, size=case.posterior.samples, method="cholesky"
        )
        kappa = None
        if model.n_kappa:
            kappa = rng.multivariate_normal(
                np.zeros(model.n_kappa),
                model.iov_omega,
                size=(case.posterior.samples, simulator.n_occasions),
                method="cholesky",
            )
        draws = simulator.predict(times, etas, kappa).outputs
        for name in model.outputs:
            curves[name]["quantiles"] = {
                f"{q:g}": _floats(np.quantile(draws[name], q, axis=0)) for q in case.posterior.quantiles
            }
    return {
        "success": True,
        "engine_version": ENGINE_VERSION,
        "model_id": model.id,
        "prediction": {"times_h": _floats(times), "outputs": curves},
        "warnings": _warnings(case),
    }


def recommend_case(case: Case, *, forecast: bool = False) -> dict[str, Any]:
    """The fit, then ranked regimens for the case's ``target`` (and the exact dose when asked for).

    ``target`` either describes a target range with regimen constraints (model-spec: metric, low, high,
    interval_options_h, dose_step_mg, max_dose_mg, start_h...) or an exact solve: ``{"metric": "auc",
    "window_h": [a, b], "value": v}`` with a ``regimen`` shape, which gives the unrounded dose at the point
    estimate (MAP, or the case's etas).

    ``forecast=True`` adds ``"forecast"``: the MAP curve and credible band over the ``predict`` grid with the
    best regimen replacing the doses from its start, from the same posterior draws (no second fit).
    """
    return recommend_with_fit(case, forecast=forecast)[0]


@dataclass(frozen=True)
class FittedCase:
    """The fit behind a recommendation, for a caller that combines several models' posteriors
    (:mod:`mipd_engine.averaging`): the objective, the MAP result and the posterior draws the search used."""

    objective: Objective
    fit: MapResult
    sample: PosteriorSample | None


def recommend_with_fit(
    case: Case, *, forecast: bool = False, sampling_advice: bool = True
) -> tuple[dict[str, Any], FittedCase]:
    """:func:`recommend_case`, with the fit and the posterior draws it ranked the regimens on
    (``sampling_advice=False`` leaves out the advice on the next level, for a caller that gives its own)."""
    with shared_decompositions():  # the same draws are simulated on several records
        return _recommend_with_fit(case, forecast=forecast, sampling_advice=sampling_advice)


def _recommend_with_fit(
    case: Case, *, forecast: bool, sampling_advice: bool
) -> tuple[dict[str, Any], FittedCase]:
    if not isinstance(case.target, Mapping):
        raise InvalidInputError("target", "recommend needs a 'target' object")
    fitted = _fit_case(case)
    document, objective, fit = fitted.document, fitted.objective, fitted.fit
    kept = FittedCase(objective, fit, fitted.sample)
    if not document["success"]:
        document["regimens"] = []
        return document, kept
    model = case.model
    theta = fit.theta
    if "value" in case.target:
        document["exact"] = _exact_dose(case, objective, theta)
        return document, kept
    target, constraints = parse_recommendation_request(_with_current_infusion_duration(case, document))
    request = case.posterior or PosteriorRequest(samples=2000, seed=1, quantiles=(0.05, 0.5, 0.95))
    if case.eta is not None:
        rng = np.random.default_rng(request.seed)
        draws = theta[None, :]  # known etas: one point, no parameter uncertainty
    elif fitted.sample is not None and fitted.rng is not None:
        # The fit drew them for its band; sampling again with the same seed would only repeat them.
        sample, rng = fitted.sample, fitted.rng
        draws = sample.theta
    else:
        rng = np.random.default_rng(request.seed)
        sample = sample_posterior(objective, fit, n_samples=request.samples, rng=rng, method=request.method)
        draws = sample.theta
        kept = FittedCase(objective, fit, sample)
    forecast_rng = copy.deepcopy(rng)  # for the forecast band: the draws a separate fit would have made
    result = search_regimens(
        model=model,
        record=case.record,
        posterior_theta=draws,
        objective=objective,
        target=target,
        constraints=constraints,
        rng=rng,
    )
    search = result.as_dict()
    document["recommendation"] = {key: value for key, value in search.items() if key != "regimens"}
    # The hybrid strategy's label: levels make it Bayesian; without levels it rests on covariates only.
    document["recommendation"]["basis"] = (
        "known etas (what-if)"
        if case.eta is not None
        else ("bayesian" if case.record.observations else "a priori")
    )
    document["regimens"] = search["regimens"]
    if not result.success:
        document["warnings"].append(result.message)
    if sampling_advice and result.regimens and case.eta is None:
        document["sampling_advice"] = _sampling_advice(
            case, objective, draws, result.regimens[0].regimen, target, request.seed
        )
    if forecast and result.regimens and case.predict is not None and case.eta is None:
        document["forecast"] = _forecast(
            case, fit, sample, result.regimens[0].regimen, forecast_rng, request.quantiles
        )
    return document, kept


def _sampling_advice(
    case: Case, objective: Objective, draws: np.ndarray, regimen: Regimen, target: Any, seed: int
) -> dict[str, Any]:
    """When to take the next level for ``regimen``: the option that most narrows the target metric.

    The case's optional ``sampling`` block: ``working_hours`` [from, to] (local hours) and ``clock_offset_h``
    (the local clock hour of record time 0), for the random times; its own generator keeps the other results
    unchanged.
    """
    settings = case.raw.get("sampling") or {}
    if not isinstance(settings, Mapping):
        raise InvalidInputError("sampling", "expected an object with working_hours and clock_offset_h")
    hours = settings.get("working_hours")
    peak_after = target.peak_after_end_h if target.metric == "peak" and target.peak_after_end_h else 1.0
    try:
        options = candidate_sampling_times(
            regimen,
            working_hours=tuple(hours) if hours is not None else None,
            clock_offset_h=float(settings.get("clock_offset_h", 0.0)),
            peak_after_end_h=peak_after,
        )
        if not options:
            return {"success": False, "message": "no practical sampling time in the next intervals"}
        advice = advise_sampling(
            model=case.model,
            record=case.record,
            posterior_theta=draws,
            objective=objective,
            regimen=regimen,
            target=target,
            options=options,
            rng=np.random.default_rng([seed, 12]),
        )
    except EngineError as exc:  # advice is optional: its failure never costs the recommendation
        return {"success": False, "message": f"no sampling advice: {exc}"}
    return advice.as_dict()


def evaluate_case(case: Case, regimens: Sequence[Regimen]) -> dict[str, Any]:
    """The figures of given regimens (what-if, a pharmacist's change), with the forecast of the first.

    The same fit, posterior draws and evaluation as :func:`recommend_case`, so that a regimen's figures here
    equal its row among the candidates of the same case. ``case.target`` gives the target and its toxicity
    markers; its regimen constraints are not used (the regimens are given).
    """
    if not isinstance(case.target, Mapping):
        raise InvalidInputError("target", "the figures of a regimen need a 'target' object")
    if not regimens:
        raise InvalidInputError("regimens", "give at least one regimen")
    with shared_decompositions():  # the same draws are simulated on several records
        return _evaluate_case(case, regimens)


def _evaluate_case(case: Case, regimens: Sequence[Regimen]) -> dict[str, Any]:
    fitted = _fit_case(case)
    document, objective, fit = fitted.document, fitted.objective, fitted.fit
    if not document["success"]:
        document["regimens"] = []
        return document
    target = Target.from_mapping({k: v for k, v in case.target.items() if k in TARGET_FIELDS})
    request = case.posterior or PosteriorRequest(samples=2000, seed=1, quantiles=(0.05, 0.5, 0.95))
    if fitted.sample is not None and fitted.rng is not None:
        sample, rng = fitted.sample, fitted.rng
    else:
        rng = np.random.default_rng(request.seed)
        sample = sample_posterior(objective, fit, n_samples=request.samples, rng=rng, method=request.method)
    forecast_rng = copy.deepcopy(rng)
    results = evaluate_regimens(
        model=case.model,
        record=case.record,
        posterior_theta=sample.theta,
        objective=objective,
        target=target,
        regimens=list(regimens),
        rng=rng,
    )
    document["regimens"] = [result.as_dict() for result in results]
    document["target"] = target.as_dict(case.model)
    document["sampling_advice"] = _sampling_advice(
        case, objective, sample.theta, regimens[0], target, request.seed
    )
    if case.predict is not None:
        document["forecast"] = _forecast(case, fit, sample, regimens[0], forecast_rng, request.quantiles)
    return document


def _forecast(
    case: Case,
    fit: MapResult,
    sample: PosteriorSample,
    regimen: Regimen,
    rng: np.random.Generator,
    quantiles: Sequence[float],
) -> dict[str, Any]:
    """The record with ``regimen`` from its start: MAP curve and credible band from the posterior draws.

    Future doses add no data, so the posterior is the one already sampled; future occasions draw fresh
    kappas inside the band, as for any forecast.
    """
    assert case.predict is not None
    times = case.predict.times()
    kept, _ = truncate_record(case.record, regimen.start_h)
    record = extend_record(kept, regimen.doses(until_h=float(times[-1])))
    objective = Objective(case.model, record, prior_weight=case.prior_weight)
    map_curve = objective.simulator.predict(times, *objective.split(fit.theta[None, :])).outputs
    band = credible_band(objective, sample, times, quantiles=quantiles, rng=rng)
    curves = {
        name: {
            "map": _floats(map_curve[name][0]),
            "quantiles": {f"{q:g}": _floats(band.quantiles[q][name]) for q in band.quantiles},
            "band": band.kind,
        }
        for name in case.model.outputs
    }
    return {
        "success": True,
        "regimen": regimen.describe(),
        "prediction": _prediction_block(case, curves, times),
    }


def _exact_dose(case: Case, objective: Objective, theta: np.ndarray) -> dict[str, Any]:
    target = case.target or {}
    shape = case.regimen or {}
    if target.get("metric") != "auc":
        raise InvalidInputError(
            "target.metric", "an exact solve supports metric 'auc' (with window_h and value)"
        )
    window = target.get("window_h")
    if not (isinstance(window, list | tuple) and len(window) == 2):
        raise InvalidInputError("target.window_h", "give [start_h, end_h]")
    for key in ("start_h", "doses", "interval_h"):
        if key not in shape:
            raise InvalidInputError(f"regimen.{key}", "required for an exact solve")
    regimen = Regimen(
        dose_mg=1.0,
        interval_h=float(shape["interval_h"]),
        start_h=float(shape["start_h"]),
        route=str(shape.get("route", "iv_infusion")),
        duration_h=float(shape.get("duration_h", 0.0)),
        n_doses=int(shape["doses"]),
    )
    eta, kappa = objective.split(theta[None, :])
    solution = dose_for_auc(
        case.model,
        case.record,
        target_auc=float(target["value"]),
        regimen=regimen,
        eta=eta[0],
        kappa=None if kappa is None else kappa[0],
        window_h=(float(window[0]), float(window[1])),
    )
    return {
        "success": solution.success,
        "message": solution.message,
        "dose_mg": solution.dose_mg,
        "metric": solution.value,
        "target_value": solution.target_value,
        "method": solution.method,
        "warnings": list(solution.warnings),
    }


def _with_current_infusion_duration(case: Case, document: dict[str, Any]) -> Mapping[str, Any]:
    """An infusion target without a duration rule keeps the duration of the patient's latest infusion.

    The spec's example target block names no infusion duration; guessing one silently would be unsafe, so
    the duration in use is kept and the output says so. With no infusion recorded, the request is refused.
    """
    request = dict(case.target or {})
    route = request.get("route", "iv_infusion")
    if (
        route != "iv_infusion"
        or request.get("infusion_duration_h")
        or request.get("max_infusion_rate_mg_per_h")
    ):
        return request
    if request.get("continuous_infusion") and not request.get("interval_options_h"):
        if not request.get("loading_dose_options_mg"):
            return request  # a continuous infusion alone runs over 24 h: no duration to keep
    infusions = [d for d in case.record.doses if d.infusion_duration_h > 0]
    if not infusions:
        return request  # the constraints' own validation names the missing field
    duration = infusions[-1].infusion_duration_h
    request["infusion_duration_h"] = duration
    document["warnings"].append(
        f"target: no infusion duration given; the current infusion duration ({duration:g} h) is kept"
    )
    return request
