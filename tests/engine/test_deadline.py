"""The engine's wall-clock budget (``mipd_engine.deadline``): a long computation stops soon after its budget,
and without a budget nothing changes, to the byte.

Measured on the 2-core CI machine (no budget): the linear simulation below takes about 1.2 s, the
Michaelis-Menten one about 7 s; with a 0.2 s budget both stop at about 0.2 s.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time

import numpy as np
import pytest
import scipy

from mipd_engine import deadline as deadline_module
from mipd_engine.case import parse_case
from mipd_engine.deadline import DeadlineExceeded, check_deadline, deadline, remaining_s
from mipd_engine.estimation import fit_map
from mipd_engine.events import Dose, Observation, PatientRecord
from mipd_engine.model import parse_model
from mipd_engine.reports import recommend_case
from mipd_engine.simulation import simulate

from .conftest import preset_model
from .test_recommend_forecast import CASE
from .test_simulation_vs_ode import michaelis_menten_model

BUDGET_S = 0.2
# The stop comes at the next check: one segment or chunk of the linear solver, one interval of the ODE
# solver, one objective evaluation. Each is milliseconds here; 2 s of slack absorbs a busy shared machine
# (CI measured 1.46 s for the saturable model under load); without a budget that run takes about 7 s.
SLACK_S = 2.0


def _linear() -> tuple:
    model = parse_model(
        preset_model("2cmt", {"CL": 4.0, "V1": 20.0, "Q": 5.0, "V2": 40.0}, eta_on=("CL", "V1"))
    )
    return model, 300, 1000  # about 2 s without a budget (the solver got faster: 100 x 500 took 0.23 s)


def _saturable() -> tuple:
    model = parse_model(michaelis_menten_model({"VMAX": 100.0, "KM": 5.0, "V": 30.0, "KA": 1.0, "CL": 2.0}))
    return model, 200, 128


def _long_run(model, n_doses: int, n_draws: int):
    record = PatientRecord(
        doses=(Dose(0.0, 500.0, route="iv_infusion", duration_h=1.0, interval_h=6.0, additional=n_doses - 1),)
    )
    times = np.linspace(0.0, 6.0 * n_doses, 1000)
    eta = np.random.default_rng(1).normal(0.0, 0.3, (n_draws, model.n_eta))
    return lambda: simulate(model, record, times, eta=eta)


@pytest.mark.parametrize("workload", [_linear, _saturable], ids=["linear", "michaelis-menten"])
def test_a_deadline_stops_a_long_simulation_soon_after_its_budget(workload) -> None:
    model, n_doses, n_draws = workload()
    # Warm-up without a budget: a process's first saturable simulation compiles its right-hand side at once
    # (seconds, in a fresh environment); under a budget that compile runs in a background thread holding the
    # interpreter, which is not what this test times.
    _long_run(model, 1, 1)()
    run = _long_run(model, n_doses, n_draws)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as stopped, deadline(BUDGET_S):
        run()
    elapsed = time.monotonic() - started
    assert stopped.value.budget_s == pytest.approx(BUDGET_S)
    assert BUDGET_S <= stopped.value.elapsed_s <= elapsed < BUDGET_S + SLACK_S
    assert "budget of 0.2 s" in str(stopped.value)
    check_deadline()  # the budget ended with its block


def test_a_deadline_stops_an_estimation_between_iterations(monkeypatch) -> None:
    model = parse_model(preset_model("1cmt", {"CL": 4.0, "V": 30.0}, eta_on=("CL", "V")))
    record = PatientRecord(
        doses=(Dose(0.0, 1000.0, route="iv_infusion", duration_h=1.0, interval_h=12.0, additional=3),),
        observations=(Observation(11.5, 8.0), Observation(35.5, 9.0)),
    )
    calls = 0

    def slow_clock():  # each objective evaluation "takes" 0.1 s of the budget, without sleeping
        nonlocal calls
        calls += 1
        return 1000.0 + 0.1 * calls

    monkeypatch.setattr(deadline_module, "_now", slow_clock)
    with pytest.raises(DeadlineExceeded), deadline(1.0):
        fit_map(model, record)
    monkeypatch.undo()
    assert calls <= 12  # stopped at the first check past the budget, not at the end of the fit
    assert fit_map(model, record).success  # and the same fit completes without a budget


def test_deadlines_nest_and_an_inner_one_never_extends_the_outer() -> None:
    assert remaining_s() is None
    with deadline(5.0):
        outer = remaining_s()
        with deadline(60.0):
            assert remaining_s() <= outer
        with deadline(1.0):
            assert remaining_s() <= 1.0
        assert 4.0 < remaining_s() <= 5.0
    assert remaining_s() is None
    with pytest.raises(ValueError, match="positive"), deadline(0):
        pass


def test_a_deadline_belongs_to_its_thread() -> None:
    seen: list[float | None] = []
    with deadline(1e-6):
        time.sleep(0.01)
        worker = threading.Thread(target=lambda: (check_deadline(), seen.append(remaining_s())))
        worker.start()
        worker.join()
        with pytest.raises(DeadlineExceeded):
            check_deadline()
    assert seen == [None]  # another request's thread has its own (no) budget


def _digest(result: dict) -> str:
    return hashlib.sha256(
        json.dumps(result, sort_keys=True, allow_nan=False, default=str).encode()
    ).hexdigest()


# recommend_case(CASE, forecast=True) computed by the engine before deadlines existed (main at 2061c9e),
# with these libraries; another numpy or scipy may round differently, which is not this test's concern.
# Re-taken when the linear solver of large batches (posterior draws over time grids) began summing its
# terms in another order, and when the regimen search began scaling steady-state measurements from one
# per unit dose: 21 numbers of the document moved in their last bit (at most 2.6e-16 relative,
# benchmarks/bench_update_parts.py --compare), none by more.
BEFORE = {
    "sha256": "9cd6d9e595b8c462e7e80525391b9e800ac3b82d42b9cf5e482ec4bc703e8d81",
    "numpy": "2.4.6",
    "scipy": "1.17.1",
}


def test_results_with_and_without_a_budget_are_identical_to_the_byte() -> None:
    plain = recommend_case(parse_case(copy.deepcopy(CASE)), forecast=True)
    with deadline(600.0):
        budgeted = recommend_case(parse_case(copy.deepcopy(CASE)), forecast=True)
    assert _digest(plain) == _digest(budgeted)
    if (np.__version__, scipy.__version__) != (BEFORE["numpy"], BEFORE["scipy"]):
        pytest.skip(f"the digest from before was taken with numpy {BEFORE['numpy']}, scipy {BEFORE['scipy']}")
    assert _digest(plain) == BEFORE["sha256"]
