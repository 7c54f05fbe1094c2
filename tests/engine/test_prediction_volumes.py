"""A prediction divides the amounts by each segment's volumes run by run: the same levels as dividing by
the volumes gathered per time, byte for byte, for times in order or not and across covariate changes."""

from __future__ import annotations

import numpy as np
import pytest

from mipd_engine import simulation
from mipd_engine.case import parse_case
from mipd_engine.simulation import PatientSimulator

from .test_covariate_variation import case_document


def _simulator() -> PatientSimulator:
    # The weight changes twice: three segments with different volumes.
    document = case_document(
        covariate_changes=[{"time_h": 30, "WT": 90}, {"time_h": 60, "WT": 55}],
        doses=[
            {"time_h": float(t), "amount_mg": 1000, "route": "iv_infusion", "duration_h": 1}
            for t in (0, 24, 48)
        ],
    )
    case = parse_case(document)
    return PatientSimulator(case.model, case.record)


def _gathered(simulator: PatientSimulator, times: np.ndarray, eta: np.ndarray) -> dict[str, np.ndarray]:
    """The levels as amounts / volumes gathered per time × scale (the formula the runs replace)."""
    model = simulator.model
    out = {}
    for name, spec in model.outputs.items():
        amounts, values = simulator.amounts(times, np.array([spec.compartment]), eta, None)
        segment = simulator.schedule.segment_of_time(times)
        volume = np.stack([v[spec.volume] for v in values], axis=1)[:, segment]
        out[name] = amounts[:, :, 0] / volume * spec.scale
    return out


@pytest.mark.parametrize("order", ["grid", "shuffled", "one time", "none"])
def test_levels_equal_the_gathered_quotients_byte_for_byte(order: str) -> None:
    simulator = _simulator()
    assert len(simulator.schedule.segments) >= 3
    rng = np.random.default_rng(3)
    eta = rng.multivariate_normal(np.zeros(simulator.model.n_eta), simulator.model.omega, size=50)
    times = {
        "grid": np.linspace(0.0, 90.0, 400),
        "shuffled": rng.permutation(np.linspace(0.0, 90.0, 400)),  # many runs: the gather is kept
        "one time": np.array([45.0]),
        "none": np.array([]),
    }[order]

    levels = simulator.predict(times, eta).outputs
    expected = _gathered(simulator, times, eta)

    for name in expected:
        assert levels[name].shape == (50, times.size)
        assert levels[name].tobytes() == expected[name].tobytes()
    if order == "shuffled":
        segment = simulator.schedule.segment_of_time(times)
        assert np.count_nonzero(np.diff(segment)) + 1 > simulation._MAX_VOLUME_RUNS
