"""The two local searches of a fit run side by side, their points evaluated in shared batches.

They must give what the searches give one after the other (the same points, so the same estimates), in
fewer objective calls, and a deadline must stop both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mipd_engine.deadline import DeadlineExceeded, deadline
from mipd_engine.estimation import _minimise_from, _minimise_side_by_side, _safe, _screening_candidates
from mipd_engine.model import load_model
from mipd_engine.nonmem import read_nonmem
from mipd_engine.objective import Objective

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "nonmem-validation"
pytestmark = pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"reference data not found at {REFERENCE}")


class CountingObjective(Objective):
    calls = 0

    def __call__(self, theta):
        self.calls += 1
        return super().__call__(theta)


def _starts(objective: Objective) -> list[tuple[np.ndarray, None]]:
    candidates = _screening_candidates(objective)
    best = candidates[int(np.argmin(_safe(objective, candidates)))]
    return [(np.zeros(objective.dimension), None), (best, None)]


@pytest.mark.parametrize("run", ["run001", "run003", "run102"])
def test_side_by_side_searches_reach_the_points_of_sequential_ones_in_fewer_calls(run: str) -> None:
    model = load_model(REFERENCE / run / "model.json")
    for record in read_nonmem(REFERENCE / run / "data.csv", model)[:3]:
        sequential = CountingObjective(model, record)
        expected = [_minimise_from(sequential, start, h) for start, h in _starts(sequential)]
        together = CountingObjective(model, record)
        starts = _starts(together)
        calls_before = together.calls
        results = _minimise_side_by_side(together, starts)
        for got, want in zip(results, expected, strict=True):
            # Batches of a different size may round differently in the last bits, nothing more.
            np.testing.assert_allclose(got.x, want.x, rtol=0, atol=1e-9)
            assert got.fun == pytest.approx(want.fun, abs=1e-9)
        assert together.calls - calls_before < sequential.calls - 1  # less the screening call of _starts


def test_a_deadline_stops_both_searches(monkeypatch) -> None:
    import time

    from mipd_engine import deadline as deadline_module

    model = load_model(REFERENCE / "run201" / "model.json")
    record = read_nonmem(REFERENCE / "run201" / "data.csv", model)[0]
    objective = Objective(model, record)
    starts = _starts(objective)
    with pytest.raises(DeadlineExceeded), deadline(10.0):
        # The budget runs out at once: the first check of either search stops both (and the fit returns).
        monkeypatch.setattr(deadline_module, "_now", lambda: time.monotonic() + 100.0)
        _minimise_side_by_side(objective, starts)


def test_the_restarts_after_a_failed_check_run_in_groups_and_keep_the_lowest_minimum(monkeypatch) -> None:
    from mipd_engine import estimation

    model = load_model(REFERENCE / "run001" / "model.json")
    record = read_nonmem(REFERENCE / "run001" / "data.csv", model)[0]
    normal = estimation.fit_map(model, record)
    real_check = estimation._check_mode
    checks = []

    def first_check_fails(objective, theta):
        check = real_check(objective, theta)
        checks.append(check)
        if len(checks) > 1:
            return check
        return estimation._ModeCheck(False, "forced", False, check.hessian, check.value, check.gradient)

    monkeypatch.setattr(estimation, "_check_mode", first_check_fails)
    restarted = estimation.fit_map(model, record)
    # 2 searches, then the polished point and 2 per axis (3 etas): 7 more, in groups of at most 4.
    assert restarted.n_starts == 2 + 1 + 2 * model.n_eta > 2 + estimation._MAX_SIDE_BY_SIDE
    assert restarted.success
    assert restarted.ofv == pytest.approx(normal.ofv, abs=1e-9)
    np.testing.assert_allclose(restarted.eta, normal.eta, rtol=0, atol=1e-6)
