"""Model averaging and model selection over several population models of one drug.

Several published models may describe the patient; each is fitted to the same doses and levels, and the
fits are combined as in Uster et al. 2021 (Clin Pharmacol Ther 109:175, "A model averaging/selection
approach improves the predictive performance of model-informed precision dosing"):

    w_k ∝ prior_k × exp(−OFV_k / 2)

where ``OFV_k`` is the model's objective at its MAP estimate (−2 log posterior density of the levels and
random effects, :class:`~mipd_engine.objective.Objective`) and ``prior_k`` a stated prior weight (1 each
when nothing is known). Without levels every OFV is 0 and the weights are the priors. ``"select"`` keeps
only the model of highest weight (ties: the first given).

The mixture's figures (the regimen ranking, PTA, P(toxic), exposure and the forecast band) come from the
models' posterior draws pooled in proportion to the weights: model k contributes ``n_k`` of the ``N`` draws
(largest-remainder rounding of ``w_k N``). Its draws are the first ``n_k`` of the sample its own
recommendation used, so that the same inputs give the same answer to the byte; future inter-occasion effects
come from a generator seeded by every model's case seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from . import ENGINE_VERSION
from .case import Case
from .errors import InvalidInputError
from .objective import Objective
from .posterior import predictive_draws

# The search's own draw bookkeeping and metric evaluation (same package): the pooled figures are computed
# exactly as a single model's, only over draws of several models.
from .regimens import (
    _EXPOSURE,
    CandidateResult,
    Regimen,
    _Draws,
    _MetricEvaluation,
    extend_record,
    parse_recommendation_request,
    ranking_key,
    rationale,
    truncate_record,
)
from .reports import FittedCase, _sampling_advice, _with_current_infusion_duration, recommend_with_fit
from .targets import Target

METHODS = ("average", "select")
TOP = 5  # regimens listed, as search_regimens
MIN_PTA = 0.5  # as search_regimens: below it the best regimen is reported as not reaching the target
_SEED_SALT = 17  # keeps the mixture's generator apart from any single model's


@dataclass(frozen=True)
class ModelCandidate:
    """One model of the comparison: a label shown to people, its case (same patient) and prior weight."""

    label: str
    case: Case
    prior_weight: float = 1.0


def model_weights(*, ofv: Sequence[float], prior_weight: Sequence[float], method: str) -> np.ndarray:
    """Weights (K,) summing to 1: ∝ prior × exp(−OFV/2) (``"average"``) or 1 for the best (``"select"``).

    A model whose fit failed gives ``nan`` or ``inf`` as its OFV and gets weight 0. Raises
    :class:`InvalidInputError` when no model can be weighted.
    """
    if method not in METHODS:
        raise InvalidInputError("method", f"expected one of {', '.join(METHODS)}, got '{method}'")
    ofvs = np.asarray(ofv, dtype=float)
    priors = np.asarray(prior_weight, dtype=float)
    if ofvs.shape != priors.shape or ofvs.ndim != 1 or ofvs.size == 0:
        raise InvalidInputError("ofv", "give one OFV and one prior weight per model")
    if not np.all(np.isfinite(priors)) or np.any(priors < 0):
        raise InvalidInputError("prior_weight", "prior weights must be finite and not negative")
    with np.errstate(divide="ignore"):
        log_w = np.where(np.isfinite(ofvs) & (priors > 0), np.log(priors) - ofvs / 2.0, -np.inf)
    if not np.any(np.isfinite(log_w)):
        raise InvalidInputError("ofv", "no model has a successful fit and a positive prior weight")
    best = int(np.argmax(log_w))
    if method == "select":
        weights = np.zeros(ofvs.size)
        weights[best] = 1.0
        return weights
    weights = np.exp(log_w - log_w[best])  # log-sum-exp: OFVs in the thousands do not underflow
    return weights / weights.sum()


def draw_counts(weights: Sequence[float], n_draws: int) -> np.ndarray:
    """Integer draws per model (K,) summing to ``n_draws``: largest remainder of ``w × n_draws`` (ties: the
    first model)."""
    w = np.asarray(weights, dtype=float)
    if n_draws < 1:
        raise InvalidInputError("n_draws", f"must be at least 1, got {n_draws}")
    exact = w * n_draws
    counts = np.floor(exact).astype(int)
    remainder = exact - counts
    order = sorted(range(w.size), key=lambda k: (-round(remainder[k], 12), k))
    for k in order[: n_draws - int(counts.sum())]:
        counts[k] += 1
    return counts


@dataclass(frozen=True)
class _Member:
    candidate: ModelCandidate
    document: dict[str, Any]  # its own recommendation (recommend_case)
    fitted: FittedCase

    @property
    def ok(self) -> bool:
        return bool(self.document.get("success")) and self.fitted.sample is not None


def average_recommend(
    candidates: Sequence[ModelCandidate], *, method: str = "average", forecast: bool = True
) -> dict[str, Any]:
    """Fit every model, weigh them, and recommend from the mixture.

    Returns a document shaped like :func:`~mipd_engine.reports.recommend_case`'s (``success``,
    ``recommendation``, ``regimens``, ``forecast``, ``warnings``) plus ``averaging``: the method, and per
    model its label, prior weight, OFV, number of levels, weight, draws, success, own best regimen and PTA.
    With ``"select"`` the document is the chosen model's own recommendation.
    """
    if not candidates:
        raise InvalidInputError("models", "give at least one model")
    if method not in METHODS:
        raise InvalidInputError("method", f"expected one of {', '.join(METHODS)}, got '{method}'")
    members = []
    for candidate in candidates:
        document, fitted = recommend_with_fit(candidate.case, forecast=forecast, sampling_advice=False)
        members.append(_Member(candidate, document, fitted))
    ofvs = [m.document["map"]["ofv"] if m.ok else math.nan for m in members]
    weights = model_weights(ofv=ofvs, prior_weight=[m.candidate.prior_weight for m in members], method=method)
    n_total = members[0].candidate.case.posterior.samples if members[0].candidate.case.posterior else 2000
    counts = draw_counts(weights, n_total)
    table = [_model_row(m, w, int(n)) for m, w, n in zip(members, weights, counts, strict=True)]
    chosen = [k for k, n in enumerate(counts) if n > 0]
    if len(chosen) == 1:  # selection, or one model takes every draw: its own recommendation is the mixture's
        document = dict(members[chosen[0]].document)
        document["warnings"] = list(document.get("warnings", []))
    else:
        document = _mixture(members, counts, forecast=forecast)
    top = members[int(np.argmax(counts))]
    if document.get("regimens") and top.fitted.sample is not None and top.candidate.case.posterior:
        # When to draw the next level, for the recommended regimen, on the model of highest weight.
        target, _ = parse_recommendation_request(
            _with_current_infusion_duration(top.candidate.case, top.document)
        )
        document["sampling_advice"] = _sampling_advice(
            top.candidate.case,
            top.fitted.objective,
            top.fitted.sample.theta,
            _regimen(document["regimens"][0]),
            target,
            top.candidate.case.posterior.seed,
        )
    document["averaging"] = {
        "method": method,
        "weighting": "prior × exp(−OFV/2) (Uster et al. 2021)",
        "n_draws": int(n_total),
        "models": table,
    }
    return document


def _model_row(member: _Member, weight: float, n_draws: int) -> dict[str, Any]:
    document = member.document
    regimens = document.get("regimens") or []
    best = regimens[0] if regimens else None
    observations = [row for row in document.get("observations", []) if row.get("value") is not None]
    return {
        "label": member.candidate.label,
        "model_id": member.candidate.case.model.id,
        "prior_weight": float(member.candidate.prior_weight),
        "success": bool(document.get("success")),
        "message": document.get("message") or "",
        "ofv": float(document["map"]["ofv"]) if member.ok else None,
        "n_levels": len(member.candidate.case.record.observations),
        "weight": float(weight),
        "n_draws": n_draws,
        "levels": [
            {"time_h": row["time_h"], "value": row["value"], "ipred": row["ipred"]} for row in observations
        ],
        "best_regimen": best,
        "pta": best["pta"] if best else None,
        # Its own forecast with its own best regimen: the median curve over the case's predict grid.
        "forecast_median": _median_curve(document.get("forecast")),
    }


def _median_curve(forecast: dict[str, Any] | None) -> list[float] | None:
    if not forecast or not forecast.get("success"):
        return None
    quantiles = forecast["prediction"].get("quantiles") or {}
    return quantiles.get("0.5")


def _mixture(members: Sequence[_Member], counts: np.ndarray, *, forecast: bool) -> dict[str, Any]:
    used = [(m, int(n)) for m, n in zip(members, counts, strict=True) if n > 0]
    first = used[0][0]
    # The candidates already obey the constraints (each model's search ran on the same course's).
    target, _ = parse_recommendation_request(
        _with_current_infusion_duration(first.candidate.case, first.document)
    )
    units = {target.unit_for(m.candidate.case.model) for m, _ in used}
    if len(units) != 1:
        raise InvalidInputError("models", f"the models give the target in different units: {sorted(units)}")
    unit = units.pop()
    seeds = [int(m.candidate.case.posterior.seed) for m, _ in used if m.candidate.case.posterior]
    rng = np.random.default_rng([*seeds, _SEED_SALT])
    # The candidates: every weighted model's own top regimens, in a fixed order, without repeats.
    regimens: dict[tuple, Regimen] = {}
    for member, _ in used:
        for row in member.document.get("regimens", []):
            regimen = _regimen(row)
            regimens.setdefault(tuple(sorted(regimen.as_dict().items(), key=str)), regimen)
    candidates = list(regimens.values())
    if not candidates:
        raise InvalidInputError("models", "no weighted model proposed a regimen")
    pooled = _Pool(used, candidates, rng)
    scored = _score(target, pooled, candidates, unit)
    scored.sort(key=lambda c: ranking_key(c, target))
    best = scored[:TOP]
    success = best[0].pta >= MIN_PTA and not best[0].exceeds_toxicity
    message = "" if success else f"no candidate reaches the target; closest: {best[0].rationale}"
    if best[0].exceeds_toxicity:
        message = f"every candidate exceeds the toxicity limit; closest: {best[0].rationale}"
    has_levels = any(m.candidate.case.record.observations for m, _ in used)
    warnings: list[str] = []
    for member, _ in used:
        warnings += [f"{member.candidate.label}: {w}" for w in member.document.get("warnings", [])]
    if not success:
        warnings.append(message)
    # The past (fit plot, observations, MAP) is shown from the model of highest weight; what is to come
    # (the ranking, PTA, the forecast band) from the mixture.
    top = max(used, key=lambda item: item[1])[0]
    document: dict[str, Any] = {
        **top.document,
        "success": True,
        "message": "",
        "engine_version": ENGINE_VERSION,
        "recommendation": {
            "success": success,
            "message": message,
            "target": {**target.as_dict(), "unit": unit},
            "n_candidates": len(candidates),
            "n_evaluated": len(candidates),
            "n_draws": int(sum(n for _, n in used)),
            "method": "model averaging (pooled posterior draws)",
            "min_pta": MIN_PTA,
            "warnings": [],
            "basis": "bayesian" if has_levels else "a priori",
        },
        "regimens": [c.as_dict() for c in best],
        "warnings": warnings,
    }
    if forecast and first.candidate.case.predict is not None:
        document["forecast"] = _forecast(used, best[0].regimen, rng)
    return document


def _regimen(row: dict[str, Any]) -> Regimen:
    return Regimen(
        dose_mg=float(row["dose_mg"]),
        interval_h=float(row["interval_h"]),
        start_h=float(row["start_h"]),
        route=str(row["route"]),
        duration_h=float(row.get("duration_h") or 0.0),
        n_doses=row.get("n_doses"),
        loading_dose_mg=row.get("loading_dose_mg"),
        loading_duration_h=float(row.get("loading_duration_h") or 0.0),
        continuous=bool(row.get("continuous", False)),
    )


class _Pool:
    """A metric for every candidate over the pooled draws: model k's first n_k draws, models in order."""

    def __init__(
        self, used: Sequence[tuple[_Member, int]], candidates: list[Regimen], rng: np.random.Generator
    ):
        self.evaluations = []
        for member, n in used:
            case, fitted = member.candidate.case, member.fitted
            assert fitted.sample is not None
            past, _ = truncate_record(case.record, candidates[0].start_h)
            draws = _Draws(fitted.objective, fitted.sample.theta[:n], past, rng, extra_occasions=2)
            self.evaluations.append(
                _MetricEvaluation(
                    model=case.model,
                    past=past,
                    draws=draws,
                    candidates=candidates,
                    linear=case.model.is_linear,
                )
            )

    def __call__(self, target: Target, indexes: list[int]) -> np.ndarray:
        """(N, K) pooled values of the candidates ``indexes``."""
        parts = []
        for evaluate in self.evaluations:
            values = evaluate(target, only=indexes)
            parts.append(np.stack([values[i] for i in indexes], axis=1))
        return np.concatenate(parts, axis=0)


def _score(target: Target, pool: _Pool, candidates: list[Regimen], unit: str) -> list[CandidateResult]:
    model = pool.evaluations[0].model
    indexes = list(range(len(candidates)))
    matrix = pool(target, indexes)
    if not np.all(np.isfinite(matrix)):
        raise InvalidInputError("models", "the target metric is not finite for some posterior draws")
    quantiles = np.quantile(matrix, [0.05, 0.5, 0.95], axis=0)
    pta = target.attained(matrix).mean(axis=0)
    toxic_any = np.zeros(matrix.shape, dtype=bool)
    by_limit: list[tuple[str, np.ndarray]] = []
    for limit in target.safety_limits:
        marker = matrix if limit.target == target.metric_only() else pool(limit.target, indexes)
        over = marker > limit.above
        toxic_any |= over
        by_limit.append((limit.describe(model), over.mean(axis=0)))
    p_toxic = toxic_any.mean(axis=0) if by_limit else None
    exposure = _exposure(pool, candidates)
    results = []
    for i, regimen in enumerate(candidates):
        tox = None if p_toxic is None else float(p_toxic[i])
        limit = target.p_toxic_limit
        result = CandidateResult(
            regimen=regimen,
            median=float(quantiles[1, i]),
            ci_low=float(quantiles[0, i]),
            ci_high=float(quantiles[2, i]),
            pta=float(pta[i]),
            p_toxic=tox,
            rationale="",
            p_toxic_by_limit=tuple((label, float(p[i])) for label, p in by_limit),
            exceeds_toxicity=tox is not None and limit is not None and tox > limit + 1e-12,
            exposure=exposure[i],
        )
        results.append(replace(result, rationale=rationale(result, target, unit)))
    return results


def _exposure(pool: _Pool, candidates: list[Regimen]) -> list[tuple[dict[str, Any], ...]]:
    """AUC24, trough and peak (or Css) of each candidate over the pooled draws, as the search reports them."""
    model = pool.evaluations[0].model
    rows: list[list[dict[str, Any]]] = [[] for _ in candidates]
    metrics = list(_EXPOSURE)
    if any(r.continuous for r in candidates):
        metrics.append(("css", "Css", {}))
    for metric, label, extra in metrics:
        summary = Target(metric=metric, low=0.0, **extra)
        indexes = [
            i
            for i, regimen in enumerate(candidates)
            if not (regimen.continuous and metric in ("trough", "cmax"))
            and not (not regimen.continuous and metric == "css")
        ]
        if not indexes:
            continue
        matrix = pool(summary, indexes)
        for column, i in enumerate(indexes):
            low, median, high = np.quantile(matrix[:, column], [0.05, 0.5, 0.95])
            rows[i].append(
                {
                    "metric": metric,
                    "label": label,
                    "unit": summary.unit_for(model),
                    "median": float(median),
                    "ci90": [float(low), float(high)],
                }
            )
    return [tuple(r) for r in rows]


def _forecast(
    used: Sequence[tuple[_Member, int]], regimen: Regimen, rng: np.random.Generator
) -> dict[str, Any]:
    """The pooled band of the concentration over the predict grid with ``regimen`` from its start; the
    "map" curve is the weighted mean of the models' MAP curves (a mixture has no single mode)."""
    first = used[0][0].candidate.case
    assert first.predict is not None
    times = first.predict.times()
    quantiles = first.posterior.quantiles if first.posterior else (0.05, 0.5, 0.95)
    n_total = sum(n for _, n in used)
    pooled: list[np.ndarray] = []
    map_curve = np.zeros(times.size)
    for member, n in used:
        case, fitted = member.candidate.case, member.fitted
        assert fitted.sample is not None
        kept, _ = truncate_record(case.record, regimen.start_h)
        record = extend_record(kept, regimen.doses(until_h=float(times[-1])))
        objective = Objective(case.model, record, prior_weight=case.prior_weight)
        output = case.model.default_output
        pooled.append(predictive_draws(objective, fitted.sample.theta[:n], times, rng=rng)[output])
        mode = objective.simulator.predict(times, *objective.split(fitted.fit.theta[None, :])).outputs[output]
        map_curve += mode[0] * (n / n_total)
    draws = np.concatenate(pooled, axis=0)
    bands = np.quantile(draws, list(quantiles), axis=0)
    curve = {
        "map": [float(v) for v in map_curve],
        "quantiles": {f"{q:g}": [float(v) for v in bands[i]] for i, q in enumerate(quantiles)},
        "band": "credible",
    }
    output = first.model.default_output
    return {
        "success": True,
        "regimen": regimen.describe(),
        "prediction": {"times_h": [float(t) for t in times], "outputs": {output: curve}, **curve},
    }
