"""The engine part of a course update, step by step: where the time of ``recommend_case`` goes.

A course update runs ``recommend_case(parse_case(document), forecast=True)`` (``dosing.services.update_run``).
This script runs it on the case documents of ``benchmarks/update_cases/`` (real course updates of the demo
data, one per library model: the model, covariates, doses, levels, target and posterior request exactly as
the worker built them) and times its parts by wrapping the engine functions it calls: the MAP fit, the
posterior draws, the credible bands of the fit, the regimen search (scoring every candidate, its efficacy
target and toxicity markers), the exposure of the best regimens (steady-state AUC24, trough, peak), the
sampling advice, the forecast of the best regimen, and the rest (parsing the case aside, everything else
inside ``recommend_case``). Each part's time excludes the parts nested in it. Prints the median over
``--repeat`` runs after one warm-up run of each part's CPU time (``--wall``: wall time; the CPU may be
shared, and CPU time is the steadier figure on a busy machine), the wall and CPU time of the whole call,
and the load average.

``--dump DIR`` writes each case's result document (JSON) to DIR; ``--compare DIR`` compares the results
with such a dump: every number within ``--rtol`` (default 1e-9, relative) and every text and ranking equal,
so that a change made for speed can be shown not to change the answers. ``--profile`` prints the top lines
of a cProfile of one run per case.

    python benchmarks/bench_update_parts.py [--repeat 5] [--case vancomycin-goti-2018] [--dump DIR]
        [--compare DIR] [--rtol 1e-9] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import os
import pstats
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
CASES = Path(__file__).resolve().parent / "update_cases"
sys.path.insert(0, str(REPO_ROOT))

from mipd_engine import posterior, regimens, reports  # noqa: E402
from mipd_engine.case import parse_case  # noqa: E402

PARTS = ("fit", "draws", "bands", "search", "exposure", "advice", "forecast", "other")


class PartTimer:
    """Exclusive time per part (``clock``: CPU or wall): a part nested in another is not counted twice."""

    def __init__(self, clock: Callable[[], float] = time.process_time) -> None:
        self.clock = clock
        self.totals: dict[str, float] = {}
        self._stack: list[list[float]] = []  # per open part: [start, time spent in nested parts]

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        frame = [self.clock(), 0.0]
        self._stack.append(frame)
        try:
            yield
        finally:
            self._stack.pop()
            elapsed = self.clock() - frame[0]
            self.totals[name] = self.totals.get(name, 0.0) + elapsed - frame[1]
            if self._stack:
                self._stack[-1][1] += elapsed


def _wrap(timer: PartTimer, module: Any, attribute: str, choose: Callable[[], str]) -> None:
    original = getattr(module, attribute)

    def timed(*args: Any, **kwargs: Any) -> Any:
        with timer.part(choose()):
            return original(*args, **kwargs)

    setattr(module, attribute, timed)


def instrument(timer: PartTimer) -> None:
    """Wrap the functions ``recommend_case`` calls (in the modules that call them)."""
    in_forecast = {"open": False}

    def band_part() -> str:
        return "forecast" if in_forecast["open"] else "bands"

    _wrap(timer, reports, "fit_map", lambda: "fit")
    _wrap(timer, reports, "sample_posterior", lambda: "draws")
    _wrap(timer, reports, "credible_band", band_part)
    _wrap(timer, reports, "search_regimens", lambda: "search")
    _wrap(timer, regimens, "_with_exposure", lambda: "exposure")
    _wrap(timer, reports, "_sampling_advice", lambda: "advice")
    original_forecast = reports._forecast

    def forecast(*args: Any, **kwargs: Any) -> Any:
        in_forecast["open"] = True
        try:
            with timer.part("forecast"):
                return original_forecast(*args, **kwargs)
        finally:
            in_forecast["open"] = False

    reports._forecast = forecast
    assert posterior  # the band of the fit is called through reports' name


def run_case(document: dict[str, Any], timer: PartTimer) -> tuple[dict[str, Any], float, float]:
    case = parse_case(document)
    timer.totals.clear()
    wall, cpu = time.perf_counter(), time.process_time()
    with timer.part("other"):
        result = reports.recommend_case(case, forecast=True)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def compare(a: Any, b: Any, rtol: float, path: str = "$") -> list[str]:
    """Differences between two result documents: numbers beyond ``rtol`` (relative), anything else unequal."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}: keys {sorted(set(a) ^ set(b))}"] if set(a) != set(b) else []
        for key in sorted(set(a) & set(b)):
            out += compare(a[key], b[key], rtol, f"{path}.{key}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} != {len(b)}"]
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out += compare(x, y, rtol, f"{path}[{i}]")
        return out
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        if math.isnan(a) and math.isnan(b):
            return []
        if a == b or abs(a - b) <= rtol * max(abs(a), abs(b)) + 1e-300:
            return []
        return [f"{path}: {a!r} != {b!r} (relative {abs(a - b) / max(abs(a), abs(b)):.2e})"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--case", action="append", help="a case name (file stem); default: every case")
    parser.add_argument("--dump", type=Path, help="write each case's result document to this folder")
    parser.add_argument("--compare", type=Path, help="compare each case's result with a --dump folder")
    parser.add_argument("--rtol", type=float, default=1e-9)
    parser.add_argument("--profile", action="store_true", help="top lines of a cProfile of one run per case")
    parser.add_argument(
        "--wall", action="store_true", help="time the parts in wall time (default: CPU time of the process)"
    )
    args = parser.parse_args()
    files = sorted(CASES.glob("*.json"))
    if args.case:
        files = [CASES / f"{name}.json" for name in args.case]
    timer = PartTimer(time.perf_counter if args.wall else time.process_time)
    instrument(timer)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    header = "case".ljust(28) + "".join(f"{p:>9}" for p in PARTS) + f"{'wall':>9}{'cpu':>9}"
    clock = "wall" if args.wall else "CPU"
    print(f"ms, median of {args.repeat} runs (parts: {clock} time, nested parts excluded)")
    print(header)
    failures = 0
    for path in files:
        document = json.loads(path.read_text())
        result, _, _ = run_case(document, timer)  # warm-up: imports, caches
        rows, walls, cpus = [], [], []
        for _ in range(args.repeat):
            result, wall, cpu = run_case(document, timer)
            rows.append([timer.totals.get(p, 0.0) for p in PARTS])
            walls.append(wall)
            cpus.append(cpu)
        median = np.median(np.array(rows), axis=0) * 1000
        line = path.stem.ljust(28) + "".join(f"{v:9.0f}" for v in median)
        print(f"{line}{np.median(walls) * 1000:9.0f}{np.median(cpus) * 1000:9.0f}", flush=True)
        text = json.dumps(result, indent=1, sort_keys=True, default=str)
        if args.dump:
            args.dump.mkdir(parents=True, exist_ok=True)
            (args.dump / path.name).write_text(text)
        if args.compare:
            reference = json.loads((args.compare / path.name).read_text())
            differences = compare(reference, json.loads(text), args.rtol)
            failures += bool(differences)
            status = "same answers" if not differences else f"{len(differences)} differences"
            print(f"  compared with {args.compare / path.name}: {status}")
            for line in differences[:20]:
                print(f"    {line}")
        if args.profile:
            case = parse_case(document)
            profile = cProfile.Profile()
            profile.enable()
            reports.recommend_case(case, forecast=True)
            profile.disable()
            pstats.Stats(profile).sort_stats("cumulative").print_stats(30)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.compare:
        print("every case gives the same answers" if not failures else f"{failures} case(s) differ")


if __name__ == "__main__":
    main()
