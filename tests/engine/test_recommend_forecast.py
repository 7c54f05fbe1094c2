"""recommend_case(forecast=True): the best regimen's forecast from the posterior already drawn.

The reference is the independent route the app used before: a second full fit (MAP, posterior sample and
band) of the case with the regimen's doses replacing the recorded ones from its start. Future doses add no
data, so the two must agree; the draws are seeded alike, so to rounding.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from mipd_engine.case import parse_case
from mipd_engine.regimens import Regimen
from mipd_engine.reports import fit_case, recommend_case
from tests.engine.test_cli import MODEL

CASE = {
    "model": MODEL,
    "covariates": {"CRCL": 80},
    "doses": [
        {
            "time_h": 0,
            "amount_mg": 1000,
            "route": "iv_infusion",
            "duration_h": 1,
            "interval_h": 12,
            "additional": 3,
        }
    ],
    "observations": [{"time_h": 11.5, "value": 9.5}, {"time_h": 35.5, "value": 11.0}],
    "predict": {"from_h": 0, "to_h": 96, "step_h": 0.5},
    "posterior": {"samples": 1000, "seed": 3, "quantiles": [0.05, 0.5, 0.95]},
    "target": {
        "metric": "trough",
        "low": 10,
        "high": 15,
        "interval_options_h": [12, 24],
        "dose_step_mg": 250,
        "max_dose_mg": 3000,
        "infusion_duration_h": 1,
        "start_h": 48,
    },
}


def test_the_forecast_equals_a_second_fit_with_the_regimen_appended() -> None:
    result = recommend_case(parse_case(copy.deepcopy(CASE)), forecast=True)
    best = result["regimens"][0]
    regimen = Regimen(
        dose_mg=best["dose_mg"],
        interval_h=best["interval_h"],
        start_h=best["start_h"],
        route=best["route"],
        duration_h=best["duration_h"],
    )
    reference_case = copy.deepcopy(CASE)
    reference_case.pop("target")
    reference_case["doses"] = [
        {"time_h": t, "amount_mg": 1000, "route": "iv_infusion", "duration_h": 1} for t in (0, 12, 24, 36)
    ] + [
        {
            "time_h": dose.time_h,
            "amount_mg": dose.amount_mg,
            "route": dose.route,
            "duration_h": dose.duration_h,
            "interval_h": dose.interval_h,
            "additional": dose.additional,
        }
        for dose in regimen.doses(until_h=96)
    ]
    reference = fit_case(parse_case(reference_case))
    forecast = result["forecast"]["prediction"]["outputs"]["conc"]
    expected = reference["prediction"]["outputs"]["conc"]
    assert forecast["map"] == pytest.approx(expected["map"], rel=1e-9, abs=1e-12)
    for q in ("0.05", "0.5", "0.95"):
        assert forecast["quantiles"][q] == pytest.approx(expected["quantiles"][q], rel=1e-9, abs=1e-12)
    # The forecast differs from the recorded regimen's curve after the regimen starts, not before.
    recorded = np.array(result["prediction"]["outputs"]["conc"]["map"])
    times = np.array(result["prediction"]["times_h"])
    after = times > regimen.start_h + regimen.interval_h
    assert np.allclose(
        np.array(forecast["map"])[times <= regimen.start_h], recorded[times <= regimen.start_h]
    )
    assert not np.allclose(np.array(forecast["map"])[after], recorded[after])


def test_reusing_the_fit_s_posterior_leaves_the_ranking_unchanged() -> None:
    """The search used to draw the same sample a second time; reusing the fit's gives the same regimens."""
    with_band = recommend_case(parse_case(copy.deepcopy(CASE)))
    without_band = copy.deepcopy(CASE)
    without_band.pop("predict")  # no band: the search samples on its own, as it always did
    alone = recommend_case(parse_case(without_band))
    assert [r["description"] for r in with_band["regimens"]] == [r["description"] for r in alone["regimens"]]
    assert [r["pta"] for r in with_band["regimens"]] == pytest.approx([r["pta"] for r in alone["regimens"]])
