"""The compiled right-hand side of the ODE path equals its numpy form to the bit, and so do simulations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mipd_engine import ode_solver
from mipd_engine.events import Dose, Observation, PatientRecord
from mipd_engine.model import parse_model
from mipd_engine.simulation import simulate

pytest.importorskip("numba")  # without numba the numpy form is the only one (checked everywhere else)

MODEL = {
    "format": "mipd-model/1",
    "id": "ode-rhs-test",
    "structure": {
        "compartments": ["depot", "central", "peripheral", "metabolite"],
        "flows": [
            {"from": "depot", "to": "central", "rate": "KA"},
            {"from": "central", "to": "peripheral", "rate": "Q/V"},
            {"from": "peripheral", "to": "central", "rate": "Q/VP"},
            {"from": "metabolite", "to": None, "rate": "0.2"},
        ],
        "saturable": [
            {"from": "central", "to": "metabolite", "vmax": "VMAX", "km": "KM", "volume": "V"},
            {"from": "central", "to": None, "vmax": "0.5*VMAX", "km": "2*KM", "volume": "V"},
        ],
    },
    "thetas": {"TVKA": 1.1, "TVV": 30.0, "TVQ": 4.0, "TVVP": 50.0, "TVVMAX": 60.0, "TVKM": 3.0},
    "parameters": {
        "KA": "TVKA * exp(ETA_KA)",
        "V": "TVV * exp(ETA_V)",
        "Q": "TVQ",
        "VP": "TVVP",
        "VMAX": "TVVMAX * exp(ETA_VMAX)",
        "KM": "TVKM",
    },
    "omega": {
        "etas": ["ETA_KA", "ETA_V", "ETA_VMAX"],
        "type": "variance",
        "matrix": [[0.2, 0, 0], [0, 0.1, 0], [0, 0, 0.2]],
    },
    "routes": {"oral": ["depot"], "iv_infusion": ["central"]},
    "outputs": {
        "conc": {
            "compartment": "central",
            "volume": "V",
            "unit": "mg/L",
            "error": {"model": "proportional", "proportional": 0.1},
        }
    },
}


def test_the_compiled_right_hand_side_is_the_numpy_one_to_the_bit() -> None:
    rng = np.random.default_rng(7)
    n, n_cmt = 9, 4
    k = rng.normal(size=(n, n_cmt, n_cmt)) * (rng.random((n_cmt, n_cmt)) < 0.6)
    saturable = [
        (1, 3, rng.random(n) * 50, rng.random(n) * 5, 10 + rng.random(n) * 20),
        (1, None, rng.random(n) * 50, rng.random(n) * 5, 10 + rng.random(n) * 20),
    ]
    input_rate = rng.random((n, n_cmt)) * (rng.random((n, n_cmt)) < 0.5)
    compiled, args = ode_solver._rhs_factory(k, saturable, input_rate)
    numpy_form, no_args = ode_solver._rhs_factory(k, saturable, input_rate, compiled=False)
    assert compiled is not numpy_form and no_args == ()
    for _ in range(20):
        y = rng.random(n * n_cmt) * 100
        assert np.array_equal(compiled(0.0, y, *args), numpy_form(0.0, y))


def test_simulations_with_the_compiled_right_hand_side_are_the_numpy_ones(monkeypatch) -> None:
    model = parse_model(MODEL)
    assert not model.is_linear
    record = PatientRecord(
        doses=(
            Dose(0.0, 500.0, route="oral", interval_h=12.0, additional=3),
            Dose(6.0, 300.0, route="iv_infusion", duration_h=2.0),
        ),
        observations=(Observation(3.0, 5.0),),
    )
    times = np.linspace(0.0, 48.0, 97)
    eta = np.random.default_rng(3).multivariate_normal(np.zeros(3), model.omega, size=5)
    compiled = simulate(model, record, times, eta=eta).outputs["conc"]
    monkeypatch.setattr(ode_solver, "_COMPILED", [None])
    numpy_form = simulate(model, record, times, eta=eta).outputs["conc"]
    assert np.array_equal(compiled, numpy_form)


def test_under_a_deadline_the_first_call_does_not_wait_for_the_compiler(tmp_path) -> None:
    """A fresh process: under a budget the numpy form serves while numba compiles in the background."""
    import subprocess
    import sys
    from pathlib import Path

    code = f"""
import json, numpy as np
from mipd_engine import ode_solver
from mipd_engine.deadline import deadline
from mipd_engine.events import Dose, PatientRecord
from mipd_engine.model import parse_model
from mipd_engine.simulation import simulate
model = parse_model(json.loads({json.dumps(json.dumps(MODEL))}))
record = PatientRecord(doses=(Dose(0.0, 500.0, route="oral"),))
with deadline(60):
    first = simulate(model, record, [1.0, 5.0]).outputs["conc"]
    compiled_in_background = bool(ode_solver._COMPILING)  # not in this thread, which went on in numpy
ode_solver._COMPILING[0].join()
again = simulate(model, record, [1.0, 5.0]).outputs["conc"]
print(compiled_in_background, ode_solver._COMPILED[0] is not None, np.array_equal(first, again))
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "True"]
