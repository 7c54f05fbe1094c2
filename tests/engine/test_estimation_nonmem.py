"""MAP estimates against NONMEM's own POSTHOC estimates for the eight reference models.

Reference: ../shared/reference/nonmem-validation (mapbayr's validation set, NONMEM 7, METHOD=1 INTER
MAXEVAL=0). The acceptance of the project: the engine's etas match NONMEM's within 0.001 (absolute) for at
least 99.5 % of subjects. Two models (lag time, run003; parallel absorption, run006) have subjects whose
posterior has two modes, and NONMEM's single local search from eta = 0 sometimes stops in the worse one
(sometimes at an objective in the thousands). There the engine must either agree with NONMEM or reach a lower
value of the same objective than NONMEM's estimate: checked per subject, never assumed.

The fast subset runs always; the full comparison (1,000 subjects per model) is marked ``slow`` and runs in CI.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mipd_engine.validation import compare_run

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "nonmem-validation"
RUNS = ["run001", "run003", "run006", "run102", "run201", "run301", "run401", "run901"]
# The ODE path (Michaelis-Menten, run201) costs ~0.3 s per subject: a shorter fast subset.
BIMODAL = ("run003", "run006")
FAST_SUBSET = {run: (6 if run == "run201" else 30) for run in RUNS}

pytestmark = pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"reference data not found at {REFERENCE}")


def _check(results, *, strict: bool) -> None:
    differing = [r for r in results if not r.agrees]
    unexplained = [r for r in differing if not r.engine_better]
    report = "; ".join(
        f"ID {r.id}: max|d eta| {r.max_abs_difference:.4f}, "
        f"ofv {r.ofv:.3f} vs {r.ofv_at_reference:.3f} at NONMEM's"
        for r in sorted(differing, key=lambda r: -r.max_abs_difference)[:10]
    )
    assert all(r.success for r in results if r.agrees), "a fit that agrees with NONMEM reported failure"
    # Every subject either agrees with NONMEM or reaches a strictly better optimum of the same objective.
    share_ok = 1 - len(unexplained) / len(results)
    assert share_ok >= 0.995, f"{len(unexplained)} unexplained differences: {report}"
    if strict:
        agreement = np.mean([r.agrees for r in results])
        assert agreement >= 0.995, f"agreement {agreement:.3f} < 0.995: {report}"


@pytest.mark.parametrize("run", RUNS)
def test_it_matches_nonmem_etas_on_a_subset_of_subjects(run: str) -> None:
    _, results = compare_run(REFERENCE / run, limit=FAST_SUBSET[run])
    _check(results, strict=run not in BIMODAL)


@pytest.mark.slow
@pytest.mark.parametrize("run", RUNS)
def test_it_matches_nonmem_etas_for_all_subjects(run: str) -> None:
    _, results = compare_run(REFERENCE / run)
    assert len(results) == 1000
    _check(results, strict=run not in BIMODAL)
