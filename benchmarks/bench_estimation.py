"""MAP estimation against NONMEM: agreement of etas and fit time per patient, for the eight reference models.

Prints, per model: subjects, share within 0.001 of NONMEM's etas, share where the engine instead reached a
lower objective than NONMEM's estimate (NONMEM stopped at a local minimum), failures, fit time per patient
(median, 95th percentile) and the whole batch time; then the worst cases.

    python benchmarks/bench_estimation.py [--limit N] [--runs run001,run003]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from mipd_engine.validation import compare_run

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "nonmem-validation"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=None, help="subjects per model (default: all)")
    parser.add_argument("--runs", default=None, help="comma-separated folders (default: all)")
    args = parser.parse_args()
    if not REFERENCE.is_dir():
        sys.exit(f"reference data not found at {REFERENCE}")
    runs = args.runs.split(",") if args.runs else sorted(p.name for p in REFERENCE.iterdir() if p.is_dir())
    print(
        f"{'model':8} {'n':>5} {'within 1e-3':>12} {'NONMEM worse':>13} {'failed':>7} "
        f"{'median ms':>10} {'p95 ms':>8} {'batch s':>8}"
    )
    worst = []
    for run in runs:
        started = time.perf_counter()
        _, results = compare_run(REFERENCE / run, limit=args.limit)
        batch = time.perf_counter() - started
        seconds = np.array([r.seconds for r in results]) * 1000
        agree = np.mean([r.agrees for r in results])
        better = np.mean([r.engine_better and not r.agrees for r in results])
        failed = sum(not r.success for r in results)
        print(
            f"{run:8} {len(results):5d} {100 * agree:11.1f}% {100 * better:12.1f}% {failed:7d} "
            f"{np.median(seconds):10.1f} {np.percentile(seconds, 95):8.1f} {batch:8.1f}",
            flush=True,
        )
        worst += [(r.max_abs_difference, run, r) for r in results if not r.agrees]
    print("\nSubjects differing from NONMEM by more than 0.001 (largest first):")
    for diff, run, r in sorted(worst, key=lambda x: -x[0])[:30]:
        print(
            f"  {run} ID {r.id}: max |d eta| {diff:.4f}; engine ofv {r.ofv:.3f}, "
            f"engine objective at NONMEM's etas {r.ofv_at_reference:.3f}; success={r.success}"
        )


if __name__ == "__main__":
    main()
