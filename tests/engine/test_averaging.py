"""Model averaging and selection (mipd_engine.averaging): weights, draw allocation, determinism, and the
averaged forecast's error in simulation where the truth is one of three models."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mipd_engine.averaging import ModelCandidate, average_recommend, draw_counts, model_weights
from mipd_engine.case import parse_case
from mipd_engine.errors import InvalidInputError
from mipd_engine.reports import recommend_case
from tests.engine import averaging_sim as sim


def test_the_weights_are_the_prior_times_exp_of_minus_half_the_ofv() -> None:
    # By hand: e^-5 = 0.006737947, 2 e^-6 = 0.004957504, e^-7.5 = 0.000553084; sum 0.012248535.
    weights = model_weights(ofv=[10.0, 12.0, 15.0], prior_weight=[1.0, 2.0, 1.0], method="average")
    assert weights == pytest.approx([0.550102, 0.404743, 0.045155], abs=1e-6)


def test_large_ofvs_do_not_underflow_and_a_failed_fit_gets_no_weight() -> None:
    weights = model_weights(ofv=[5010.0, 5012.0, math.nan], prior_weight=[1.0, 1.0, 1.0], method="average")
    assert weights == pytest.approx([1 / (1 + math.exp(-1)), math.exp(-1) / (1 + math.exp(-1)), 0.0])


def test_selection_keeps_the_best_weighted_model_only() -> None:
    weights = model_weights(ofv=[10.0, 9.0, 15.0], prior_weight=[1.0, 0.2, 1.0], method="select")
    # 10 vs 9 + 2 ln 5 = 12.2 in OFV units: the first model wins despite its higher OFV.
    assert list(weights) == [1.0, 0.0, 0.0]


def test_no_usable_model_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="no model"):
        model_weights(ofv=[math.inf, math.nan], prior_weight=[1.0, 1.0], method="average")
    with pytest.raises(InvalidInputError, match="method"):
        model_weights(ofv=[1.0], prior_weight=[1.0], method="vote")


def test_the_draws_are_shared_by_largest_remainder() -> None:
    # 2000 × weights = 1100.20, 809.49, 90.31: floors sum to 1999, the largest remainder (0.49) gets one.
    counts = draw_counts([0.550102245, 0.404742613, 0.045155142], 2000)
    assert list(counts) == [1100, 810, 90]
    assert list(draw_counts([1 / 3] * 3, 2000)) == [667, 667, 666]


def _candidates(patient: dict, *, samples: int, priors=(1.0, 1.0, 1.0)) -> list[ModelCandidate]:
    return [
        ModelCandidate(
            m["id"],
            parse_case(
                sim.case(m, crcl=patient["crcl"], levels=patient["levels"], samples=samples, amount_mg=1000)
            ),
            prior,
        )
        for m, prior in zip(sim.MODELS, priors, strict=True)
    ]


@pytest.fixture(scope="module")
def patient() -> dict:
    return sim.simulated_patient(0, np.random.default_rng(1), amount_mg=1000)


@pytest.fixture(scope="module")
def averaged(patient: dict) -> dict:
    return average_recommend(_candidates(patient, samples=300, priors=(1.0, 2.0, 0.5)), method="average")


def test_the_weights_of_a_case_follow_each_models_own_fit(patient: dict, averaged: dict) -> None:
    rows = averaged["averaging"]["models"]
    own = [recommend_case(c.case) for c in _candidates(patient, samples=300)]
    ofvs = [doc["map"]["ofv"] for doc in own]
    raw = [p * math.exp(-(o - min(ofvs)) / 2) for p, o in zip((1.0, 2.0, 0.5), ofvs, strict=True)]
    expected = [r / sum(raw) for r in raw]
    assert [row["ofv"] for row in rows] == pytest.approx(ofvs, rel=1e-12)
    assert [row["weight"] for row in rows] == pytest.approx(expected, rel=1e-9)
    assert sum(row["n_draws"] for row in rows) == 300
    assert [row["n_levels"] for row in rows] == [2, 2, 2]
    # Each model's own best regimen and PTA are the ones its single-model recommendation gives.
    assert [row["pta"] for row in rows] == [doc["regimens"][0]["pta"] for doc in own]


def test_the_mixture_pta_is_the_share_of_pooled_draws(patient: dict, averaged: dict) -> None:
    """A regimen's mixture PTA equals Σ n_k PTA_k / N when every model evaluates it on its first n_k draws."""
    from mipd_engine.regimens import evaluate_regimens, parse_recommendation_request
    from mipd_engine.reports import recommend_with_fit

    best = averaged["regimens"][0]
    regimen = next(r for r in averaged["regimens"] if r["dose_mg"] == best["dose_mg"])
    total = 0.0
    from mipd_engine.averaging import _regimen

    for candidate, row in zip(
        _candidates(patient, samples=300), averaged["averaging"]["models"], strict=True
    ):
        _, fitted = recommend_with_fit(candidate.case, sampling_advice=False)
        target, _ = parse_recommendation_request(candidate.case.target)
        (result,) = evaluate_regimens(
            model=candidate.case.model,
            record=candidate.case.record,
            posterior_theta=fitted.sample.theta[: row["n_draws"]],
            objective=fitted.objective,
            target=target,
            regimens=[_regimen(regimen)],
            rng=np.random.default_rng(0),
        )
        total += result.pta * row["n_draws"]
    assert best["pta"] == pytest.approx(total / 300, abs=1e-12)


def test_the_same_inputs_give_the_same_answer_to_the_byte(patient: dict, averaged: dict) -> None:
    again = average_recommend(_candidates(patient, samples=300, priors=(1.0, 2.0, 0.5)), method="average")
    assert json.dumps(again, sort_keys=True) == json.dumps(averaged, sort_keys=True)


def test_selection_gives_the_chosen_models_own_recommendation(patient: dict, averaged: dict) -> None:
    selected = average_recommend(_candidates(patient, samples=300, priors=(1.0, 2.0, 0.5)), method="select")
    rows = selected["averaging"]["models"]
    winner = max(range(3), key=lambda k: averaged["averaging"]["models"][k]["weight"])
    assert [row["weight"] for row in rows] == [1.0 if k == winner else 0.0 for k in range(3)]
    own = recommend_case(_candidates(patient, samples=300)[winner].case, forecast=True)
    assert selected["regimens"] == own["regimens"]
    assert selected["sampling_advice"] == own["sampling_advice"]  # the next level's advice too


@pytest.mark.slow
def test_the_averaged_forecast_beats_the_average_single_model_and_matches_the_best(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """30 simulated patients, 10 whose truth is each model; two levels fitted, the next one (59.5 h) forecast.

    Error: the forecast median's relative error against the true concentration (no residual error).
    """
    rng = np.random.default_rng(2026)
    index = round(sim.HELD_OUT_H / 0.5)  # the predict grid runs from 0 h by 0.5 h
    errors: dict[str, list[float]] = {"averaged": [], **{m["id"]: [] for m in sim.MODELS}}
    for i in range(30):
        patient = sim.simulated_patient(i % 3, rng, amount_mg=1000)
        document = average_recommend(_candidates(patient, samples=300), method="average")
        truth = patient["held_out"]
        median = document["forecast"]["prediction"]["quantiles"]["0.5"][index]
        errors["averaged"].append((median - truth) / truth)
        for row in document["averaging"]["models"]:
            errors[row["label"]].append((row["forecast_median"][index] - truth) / truth)
    mape = {name: float(np.mean(np.abs(values))) for name, values in errors.items()}
    rmse = {name: float(np.sqrt(np.mean(np.square(values)))) for name, values in errors.items()}
    singles = [m["id"] for m in sim.MODELS]
    with capsys.disabled():
        for name in errors:
            print(f"\n{name}: MAPE {mape[name] * 100:.1f} %, relative RMSE {rmse[name] * 100:.1f} %", end="")
        print(f"\nmean single model: MAPE {np.mean([mape[s] for s in singles]) * 100:.1f} %")
    assert mape["averaged"] <= min(mape[s] for s in singles)
    assert mape["averaged"] < np.mean([mape[s] for s in singles])
    assert rmse["averaged"] <= min(rmse[s] for s in singles)
