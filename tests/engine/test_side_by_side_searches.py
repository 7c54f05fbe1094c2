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


def test_a_deadline_stops_both_searches() -> None:
    model = load_model(REFERENCE / "run201" / "model.json")  # the ODE path: slow enough to run out
    record = read_nonmem(REFERENCE / "run201" / "data.csv", model)[0]
    objective = Objective(model, record)
    starts = _starts(objective)
    with pytest.raises(DeadlineExceeded), deadline(0.05):
        _minimise_side_by_side(objective, starts)
