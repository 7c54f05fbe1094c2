"""The sorted-scan superposition used for large batches gives the direct sum's amounts.

``linear_solver._piece_terms`` sums the pieces' modal terms directly for small batches (estimation) and by a
recursion over the pieces sorted by end time for large ones (posterior bands, virtual patients). Both paths
are forced here on the same inputs: random pieces (boluses, infusions, inactive pieces, ends shared or
differing between rows, levels at a bolus time) and whole predictions of the reference models.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mipd_engine import linear_solver
from mipd_engine.linear_solver import Eigen, _piece_terms
from mipd_engine.model import load_model
from mipd_engine.nonmem import read_nonmem
from mipd_engine.simulation import PatientSimulator

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "nonmem-validation"


def _both_paths(monkeypatch, compute):
    monkeypatch.setattr(linear_solver, "_SCAN_MIN_ELEMENTS", 10**18)
    direct = compute()
    monkeypatch.setattr(linear_solver, "_SCAN_MIN_ELEMENTS", 0)
    scan = compute()
    return direct, scan


def _random_rates(rng, n_batch):
    # Depot -> central -> out, central <-> peripheral: three distinct real eigenvalues per row.
    ka, k10, k12, k21 = (rng.uniform(0.05, 2.0, n_batch) for _ in range(4))
    k = np.zeros((n_batch, 3, 3))
    k[:, 0, 0] = -ka
    k[:, 1, 0] = ka
    k[:, 1, 1] = -(k10 + k12)
    k[:, 2, 1] = k12
    k[:, 1, 2] = k21
    k[:, 2, 2] = -k21
    return k


@pytest.mark.parametrize("shared_ends", [True, False])
@pytest.mark.parametrize("with_active", [True, False])
def test_scan_matches_direct_sum_on_random_pieces(monkeypatch, shared_ends, with_active):
    rng = np.random.default_rng(3)
    n_batch, n_pieces = 40, 9
    eigen = Eigen(_random_rates(rng, n_batch))
    administered = np.sort(rng.uniform(0, 60, n_pieces))
    administered[3] = administered[2]  # two pieces at the same time
    lag = np.zeros((n_batch, n_pieces)) if shared_ends else rng.uniform(0, 2, (n_batch, n_pieces))
    start = administered[None, :] + lag
    duration = np.where(rng.random(n_pieces) < 0.5, 0.0, rng.uniform(0.5, 4, n_pieces))
    duration = np.broadcast_to(duration, (n_batch, n_pieces)).copy()
    if not shared_ends:
        duration *= rng.uniform(0.5, 1.5, (n_batch, n_pieces))
    amount = rng.uniform(10, 1000, (n_batch, n_pieces))
    compartment = rng.integers(0, 2, n_pieces)
    active = rng.random((n_batch, n_pieces)) < 0.8 if with_active else None
    # Grid plus the exact administration and end times (a level at a bolus time is pre-dose).
    times = np.concatenate((np.linspace(0, 80, 97), administered, administered + duration[0]))
    direct, scan = _both_paths(
        monkeypatch, lambda: _piece_terms(eigen, times, start, amount, duration, compartment, active)
    )
    np.testing.assert_allclose(scan, direct, rtol=1e-12, atol=1e-12 * np.abs(direct).max())


@pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"reference data not found at {REFERENCE}")
@pytest.mark.parametrize("run", ["run001", "run003", "run006", "run102", "run301", "run401", "run901"])
def test_scan_matches_direct_sum_on_reference_models(monkeypatch, run):
    model = load_model(REFERENCE / run / "model.json")
    record = read_nonmem(REFERENCE / run / "data.csv", model)[0]
    simulator = PatientSimulator(model, record)
    rng = np.random.default_rng(5)
    eta = rng.multivariate_normal(np.zeros(model.n_eta), model.omega, size=300)
    last = max(o.time_h for o in record.observations)
    times = np.concatenate((np.linspace(0, last + 24, 200), [d.time_h for d in record.doses]))
    direct, scan = _both_paths(monkeypatch, lambda: simulator.predict(times, eta).outputs)
    for name in direct:
        np.testing.assert_allclose(scan[name], direct[name], rtol=1e-10, atol=1e-12)
