"""The NONMEM batch command as a whole process: ms per subject and peak memory, process start included.

Runs ``python -m mipd_engine fit --model M --nonmem D --output F`` on the first ``--subjects`` subjects
(default 200) of reference models of ``../shared/reference/nonmem-validation/`` (default run001, one
compartment oral; run102, two compartments infusion; run201, Michaelis-Menten, the ODE path), ``--repeat``
times each (default 3), and prints per model the median wall time per subject and the largest peak resident
memory of the child process (``os.wait4``'s rusage). ``--start`` adds the cost of the process start alone
(``import mipd_engine.__main__``). ``--baseline DIR`` runs the same command with ``PYTHONPATH=DIR`` (another
copy of the engine, e.g. ``git archive main mipd_engine``) alternately with this one, A B A B, and prints
both and their ratio pair by pair, so that a comparison holds on a loaded machine. ``--profile`` prints the
top lines of a cProfile of one run per model instead. ``--fixture`` adds subjects simulated (seeded) from the
5-compartment, 12-eta steady-state model of ``tests/engine/fixtures/``.

    python benchmarks/bench_nonmem_batch.py [--subjects 200] [--repeat 3] [--runs run001,run102,run201]
        [--dataset NAME=MODEL.json,DATA.csv] [--fixture] [--baseline DIR] [--start] [--profile]
"""

from __future__ import annotations

import argparse
import csv
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO.parent / "shared" / "reference" / "nonmem-validation"
DEFAULT_RUNS = "run001,run102,run201"
FIXTURE_MODEL = REPO / "tests" / "engine" / "fixtures" / "parent_metabolite_5cmt_12eta_ss.json"
FIXTURE_LEVELS_H = (1.0, 4.0, 11.5, 13.0, 18.0, 25.0, 30.0)


def fixture_dataset(n: int, target: Path, seed: int = 20261203) -> None:
    """``n`` simulated subjects of the 5-compartment, 10-eta + 2-kappa fixture model: parallel first-order
    and lagged zero-order input (RATE=-2) at steady state every 12 h, two more doses, parent and metabolite
    levels over three occasions (16 random effects to estimate per subject)."""
    from mipd_engine.model import load_model
    from mipd_engine.nonmem import read_nonmem
    from mipd_engine.simulation import simulate

    model = load_model(FIXTURE_MODEL)
    header = ["ID", "TIME", "EVID", "AMT", "CMT", "RATE", "II", "SS", "MDV", "DV"]
    rows: list[list] = []
    for i in range(1, n + 1):
        subject: list[list] = []
        for time_h in (0.0, 12.0, 24.0):
            steady = ["12", "1"] if time_h == 0 else ["0", "0"]
            subject.append([i, time_h, 1, 400, 1, 0, *steady, 1, "."])
            subject.append([i, time_h, 1, 400, 2, -2, *steady, 1, "."])
        for time_h in FIXTURE_LEVELS_H:
            subject += [[i, time_h, 0, 0, cmt, 0, 0, 0, 0, 1.0] for cmt in (2, 4)]
        rows += sorted(subject, key=lambda row: row[1])
    with open(target, "w", newline="") as out:
        csv.writer(out).writerows([header, *rows])
    rng = np.random.default_rng(seed)
    values = []
    for record in read_nonmem(target, model):
        eta = rng.multivariate_normal(np.zeros(model.n_eta), model.omega)
        kappa = rng.multivariate_normal(np.zeros(model.n_kappa), model.iov_omega, size=3)
        times = [o.time_h for o in record.observations]
        predicted = simulate(model, record, times, eta=eta, kappa=kappa).outputs
        for j, obs in enumerate(record.observations):
            f = predicted[obs.output][0, j]
            error = model.outputs[obs.output].error
            sd = np.sqrt(error.additive**2 + (error.proportional * f) ** 2)
            values.append(max(f + sd * rng.standard_normal(), 1e-3))
    observed = iter(values)
    for row in rows:
        if row[2] == 0:
            row[9] = f"{next(observed):.6g}"
    with open(target, "w", newline="") as out:
        csv.writer(out).writerows([header, *rows])


def first_subjects(source: Path, n: int, target: Path) -> int:
    """Copy the rows of the first ``n`` IDs (file order) of a NONMEM dataset; returns the number copied."""
    seen: list[str] = []
    with open(source, newline="", encoding="utf-8") as inp, open(target, "w", newline="") as out:
        reader, writer = csv.reader(inp), csv.writer(out)
        writer.writerow(next(reader))
        for row in reader:
            if not row:
                continue
            if not seen or row[0] != seen[-1]:
                if len(seen) == n:
                    break
                seen.append(row[0])
            writer.writerow(row)
    return len(seen)


def run_once(command: list[str], pythonpath: str) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MB) and exit status of one run of ``command`` as a child process."""
    env = {**os.environ, "PYTHONPATH": pythonpath, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    started = time.perf_counter()
    # From a folder with no engine in it: `python -m` looks in the working directory before PYTHONPATH, and
    # the baseline would silently be this copy.
    process = subprocess.Popen(
        command, env=env, cwd=tempfile.gettempdir(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode not in (0, 3):  # 3: some subject did not converge, still a finished batch
        sys.exit(f"command failed ({process.returncode}): {' '.join(command)}\n{stderr}")
    return wall, usage.ru_maxrss / 1024, process.returncode


def fit_command(model: Path, data: Path, output: Path, profile: Path | None = None) -> list[str]:
    prefix = [sys.executable]
    if profile:
        prefix += ["-m", "cProfile", "-o", str(profile)]
    return [
        *prefix,
        "-m",
        "mipd_engine",
        "fit",
        "--model",
        str(model),
        "--nonmem",
        str(data),
        "--output",
        str(output),
    ]


def datasets(args: argparse.Namespace) -> list[tuple[str, Path, Path | None]]:
    found = []
    for run in filter(None, args.runs.split(",")):
        folder = REFERENCE / run
        if not folder.is_dir():
            sys.exit(f"reference data not found at {folder}")
        found.append((run, folder / "model.json", folder / "data.csv"))
    for item in args.dataset or []:
        name, _, paths = item.partition("=")
        model, _, data = paths.partition(",")
        found.append((name, Path(model), Path(data)))
    if args.fixture:
        found.append(("5cmt-12eta-ss", FIXTURE_MODEL, None))  # data simulated from the model
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=200, help="first N subjects of each dataset")
    parser.add_argument("--repeat", type=int, default=3, help="runs per model (median quoted)")
    parser.add_argument("--runs", default=DEFAULT_RUNS, help=f"reference folders (default {DEFAULT_RUNS})")
    parser.add_argument("--dataset", action="append", help="NAME=MODEL.json,DATA.csv: another dataset")
    parser.add_argument(
        "--fixture", action="store_true", help="also the 5-compartment 12-eta steady-state fixture model"
    )
    parser.add_argument("--baseline", help="another engine copy (PYTHONPATH) run alternately with this one")
    parser.add_argument("--start", action="store_true", help="also time the process start alone")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one run per model")
    args = parser.parse_args()
    current = str(REPO)
    with tempfile.TemporaryDirectory() as scratch:
        scratch_dir = Path(scratch)
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {args.repeat} runs each")
        if args.start:
            report_start(args, current)
        header = f"{'model':14} {'n':>5} {'ms/subject':>11} {'min':>7} {'max':>7} {'peak MB':>8}"
        print(header + ("   baseline ms/subject  peak MB  ratio (median of pairs)" if args.baseline else ""))
        for name, model, data in datasets(args):
            subset = scratch_dir / f"{name}.csv"
            if data is None:
                fixture_dataset(args.subjects, subset)
                n = args.subjects
            else:
                n = first_subjects(data, args.subjects, subset)
            output = scratch_dir / f"{name}.out.csv"
            if args.profile:
                report_profile(name, n, fit_command(model, subset, output, scratch_dir / "prof"), current)
                continue
            command = fit_command(model, subset, output)
            ours, base = [], []
            for _ in range(args.repeat):
                ours.append(run_once(command, current))
                if args.baseline:
                    base.append(run_once(command, args.baseline))
            line = _figures(name, n, ours)
            if args.baseline:
                ratio = np.median([a[0] / b[0] for a, b in zip(ours, base, strict=True)])
                base_ms = np.median([b[0] for b in base]) * 1000 / n
                line += f"   {base_ms:19.1f}  {max(b[1] for b in base):7.0f}  {ratio:6.3f}"
            print(line, flush=True)


def _figures(name: str, n: int, runs: list[tuple[float, float, int]]) -> str:
    per_subject = np.array([r[0] for r in runs]) * 1000 / n
    peak = max(r[1] for r in runs)
    return (
        f"{name:14} {n:5d} {np.median(per_subject):11.1f} {per_subject.min():7.1f} "
        f"{per_subject.max():7.1f} {peak:8.0f}"
    )


def report_start(args: argparse.Namespace, current: str) -> None:
    command = [sys.executable, "-c", "import mipd_engine.__main__"]
    ours = [run_once(command, current)[0] * 1000 for _ in range(args.repeat)]
    line = f"process start (import mipd_engine.__main__): {np.median(ours):.0f} ms"
    if args.baseline:
        base = [run_once(command, args.baseline)[0] * 1000 for _ in range(args.repeat)]
        line += f"; baseline {np.median(base):.0f} ms"
    print(line)


def report_profile(name: str, n: int, command: list[str], current: str, top: int = 25) -> None:
    wall, peak, _ = run_once(command, current)
    print(f"\n=== {name}: {n} subjects, {wall:.2f} s under the profiler, peak {peak:.0f} MB ===")
    stats = pstats.Stats(command[command.index("-o") + 1])
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


if __name__ == "__main__":
    main()
