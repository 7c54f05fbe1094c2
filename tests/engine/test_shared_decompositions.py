"""Rate matrices decomposed once per course update give the same arrays as decomposing every batch afresh.

``linear_solver.shared_decompositions`` keeps the eigen-decompositions of blocks of rate matrices (one block
per segment of a record, one row per posterior draw) so that the band, the candidates, the sampling advice
and the forecast do not decompose the segments they share again. The reference is ``Eigen`` of the blocks'
concatenation, which every simulation used before: equal arrays, bit for bit.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mipd_engine import linear_solver, reports
from mipd_engine.case import parse_case
from mipd_engine.linear_solver import Eigen, _decompose, shared_decompositions

CASES = Path(__file__).resolve().parents[2] / "benchmarks" / "update_cases"

N = 300  # rows per block: above _SHARED_MIN_BATCH, so that blocks are kept


def _rates(rng, n_batch, n=3):
    """Depot -> central -> out, central <-> peripheral (n=3), or central <-> peripheral (n=2)."""
    k10, k12, k21, ka = (rng.uniform(0.05, 2.0, n_batch) for _ in range(4))
    k = np.zeros((n_batch, n, n))
    c = n - 2  # the central compartment
    if n == 3:
        k[:, 0, 0], k[:, 1, 0] = -ka, ka
    k[:, c, c] = -(k10 + k12)
    k[:, c + 1, c] = k12
    k[:, c, c + 1] = k21
    k[:, c + 1, c + 1] = -k21
    return k


def _assert_same(got, blocks):
    reference = Eigen(np.concatenate(blocks))
    for u, eigen in enumerate(got):
        rows = slice(u * N, (u + 1) * N)
        for name in ("lam", "vec", "inv"):
            np.testing.assert_array_equal(getattr(eigen, name), getattr(reference, name)[rows])


def _counting(monkeypatch):
    calls = []
    original = Eigen.__init__

    def counted(self, k):
        calls.append(k.shape[0])
        original(self, k)

    monkeypatch.setattr(Eigen, "__init__", counted)
    return calls


@pytest.mark.parametrize("n", [2, 3])
def test_blocks_seen_before_are_not_decomposed_again_and_give_the_same_arrays(monkeypatch, n):
    rng = np.random.default_rng(3)
    shared, first_only, second_only = (_rates(rng, N, n) for _ in range(3))
    calls = _counting(monkeypatch)
    with shared_decompositions():
        first = _decompose([shared, first_only])
        second = _decompose([shared.copy(), second_only])  # equal matrices, another array
        again = _decompose([second_only, shared])
    decomposed = list(calls)
    _assert_same(first, [shared, first_only])
    _assert_same(second, [shared, second_only])
    _assert_same(again, [second_only, shared])
    assert decomposed == [2 * N, N]  # both blocks at first, then only the new one, then none
    assert not again[0].lam.flags.writeable  # kept arrays cannot be changed in place by a caller


def test_outside_the_block_nothing_is_kept():
    rng = np.random.default_rng(4)
    blocks = [_rates(rng, N), _rates(rng, N)]
    _decompose(blocks)
    with shared_decompositions():
        assert linear_solver._SHARED.get() == {"bytes": 0}
    assert linear_solver._SHARED.get() is None
    assert _decompose(blocks)[0].lam.flags.writeable


def test_a_block_with_nudged_eigenvalues_is_decomposed_with_its_batch(monkeypatch):
    """A repeated eigenvalue is nudged (a batch-wide step): such a block is never combined on its own."""
    rng = np.random.default_rng(5)
    plain, other = _rates(rng, N), _rates(rng, N)
    defective = _rates(rng, N)
    defective[7] = np.diag([-1.0, -1.0, -2.0])  # equal eigenvalues: nudged
    calls = _counting(monkeypatch)
    with shared_decompositions():
        _decompose([plain])
        mixed = _decompose([plain, defective])
        assert not mixed[1].plain
        again = _decompose([defective, other])
    decomposed = list(calls)
    _assert_same(mixed, [plain, defective])
    _assert_same(again, [defective, other])
    assert decomposed == [N, N, 2 * N, 2 * N]  # the defective block, then its batch again; never kept


def test_a_course_update_gives_the_same_document_to_the_byte_with_and_without_sharing(monkeypatch):
    """Tacrolimus (three compartments, IOV): the band, candidates, advice and forecast share segments."""
    document = json.loads((CASES / "tacrolimus-andrews-2017.json").read_text())
    calls = _counting(monkeypatch)
    shared = json.dumps(reports.recommend_case(parse_case(document), forecast=True), sort_keys=True)
    n_shared = sum(calls)
    calls.clear()
    monkeypatch.setattr(linear_solver, "_SHARED_MIN_BATCH", 10**9)  # nothing kept: every batch afresh
    fresh = json.dumps(reports.recommend_case(parse_case(document), forecast=True), sort_keys=True)
    assert shared == fresh
    assert n_shared < sum(calls)  # fewer matrices decomposed
