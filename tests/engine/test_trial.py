"""In-silico trial: a drug level removes most between-patient variability, leaving the day-to-day part."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from mipd_engine.errors import InvalidInputError
from mipd_engine.model import parse_model
from mipd_engine.trial import STRATEGIES, TrialDesign, run_trial

# A vancomycin-like one-compartment model: IIV on CL (CV ~47 %) and V, IOV on CL (CV ~14 %).
VANCOMYCIN_LIKE = {
    "format": "mipd-model/1",
    "id": "vancomycin-like",
    "structure": {"preset": "1cmt"},
    "thetas": {"TVCL": 4.0, "TVV": 50.0},
    "parameters": {"CL": "TVCL * exp(ETA_CL + KAPPA_CL)", "V": "TVV * exp(ETA_V)"},
    "omega": {"etas": ["ETA_CL", "ETA_V"], "type": "variance", "matrix": [[0.2, 0.0], [0.0, 0.1]]},
    "iov": {"kappas": ["KAPPA_CL"], "type": "variance", "matrix": [[0.02]]},
    "outputs": {
        "conc": {
            "compartment": "central",
            "volume": "V",
            "unit": "mg/L",
            "error": {"model": "combined", "additive": 1.0, "proportional": 0.1},
        }
    },
}
DESIGN = TrialDesign(
    standard_dose_mg=1000.0,
    interval_h=12.0,
    target_low=200.0,
    target_high=300.0,
    duration_h=1.0,
    dose_step_mg=50.0,
)


@pytest.fixture(scope="module")
def trial():
    return run_trial(
        parse_model(VANCOMYCIN_LIKE), DESIGN, n_patients=200, rng=np.random.default_rng(20261127)
    )


def test_bayesian_dosing_approaches_the_variability_left_by_inter_occasion_variability(trial) -> None:
    cv = {strategy: trial.summary[strategy]["cv"] for strategy in STRATEGIES}
    print("exposure CV by strategy:", {k: round(v, 3) for k, v in cv.items()})
    # Levels remove the between-patient part: a standard dose leaves the whole IIV + IOV.
    assert cv["standard"] > 2 * cv["bayes_2_levels"]
    assert cv["bayes_2_levels"] < cv["bayes_1_level"] < cv["a_priori"]
    # The floor: the dose computed from the true individual parameters still meets the next occasion's
    # unknown kappa. With two occasions of levels, eta is estimated with an error of the order of the IOV
    # itself (each occasion's kappa is confounded with eta; residual error adds to it), so the Bayesian CV is
    # expected within twice that floor, not equal to it.
    assert cv["known_individual"] <= cv["bayes_2_levels"] <= 2 * cv["known_individual"]


def test_bayesian_dosing_reaches_the_target_more_often(trial) -> None:
    attainment = {strategy: trial.summary[strategy]["attainment"] for strategy in STRATEGIES}
    assert attainment["bayes_2_levels"] > attainment["standard"] + 0.3
    assert attainment["bayes_1_level"] > attainment["a_priori"]
    assert all(trial.summary[s]["failed_fits"] == 0 for s in STRATEGIES)


def test_results_are_written_as_csv_and_png(trial, tmp_path: Path) -> None:
    trial.write_csv(tmp_path / "trial.csv")
    trial.write_plot(tmp_path / "trial.png")
    with open(tmp_path / "trial.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 200
    assert float(rows[0]["standard_dose_mg"]) == pytest.approx(1000.0)
    assert (tmp_path / "trial.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"target_low": 300.0, "target_high": 200.0}, "target"),
        ({"standard_dose_mg": -5.0}, "standard_dose_mg"),
        ({"sampling_h": (13.0,)}, "sampling_h"),
        ({"interval_h": 0.0}, "interval_h"),
        # Tacrolimus: 8 mg doses with the default 250 mg step would all round to 0 mg.
        ({"standard_dose_mg": 8.0}, "dose_step_mg"),
    ],
)
def test_it_rejects_an_impossible_design(changes, field) -> None:
    arguments = {
        "standard_dose_mg": 1000.0,
        "interval_h": 12.0,
        "target_low": 200.0,
        "target_high": 300.0,
        **changes,
    }
    with pytest.raises(InvalidInputError, match=field):
        TrialDesign(**arguments)
