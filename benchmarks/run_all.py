"""Run every ``bench_*.py`` script in this folder, one after the other, and summarise their exit status.

Each script runs in its own process (so that one failure or memory peak does not affect the next) with the
repository on ``PYTHONPATH``; its output is shown as it comes.

    python benchmarks/run_all.py [--only simulation,posterior] [--timeout 3600]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="comma-separated names (bench_<name>.py) to run")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per script")
    args = parser.parse_args()
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        wanted = {name.strip().removeprefix("bench_").removesuffix(".py") for name in args.only.split(",")}
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in wanted]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    summary = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        started = time.perf_counter()
        try:
            status = subprocess.run(
                [sys.executable, str(script)], cwd=REPO_ROOT, env=env, timeout=args.timeout
            ).returncode
        except subprocess.TimeoutExpired:
            status = "timeout"
        summary.append((script.name, status, time.perf_counter() - started))
    print("\n=== summary ===")
    for name, status, seconds in summary:
        print(f"{name:32} {'ok' if status == 0 else f'FAILED ({status})':>14} {seconds:9.1f} s")
    return 0 if all(status == 0 for _, status, _ in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
