"""One what-if forecast of an 8-weekly infliximab maintenance regimen: the engine work of a long interval.

Issue 14: the sampling advice's candidate times and the exposure grids grew with the dosing interval, so a
what-if every 8 weeks (1344 h) took ~96 s. This script runs ``evaluate_case`` (the engine call of a what-if:
fit, posterior draws, figures of the regimen, sampling advice and forecast) on an infliximab course (the
library model of Fasanmade 2009, induction at weeks 0, 2 and 6, a trough level before week 14) with the
8-weekly regimen, and prints the wall and CPU time, the number of candidate sampling times and the AUC24 of
the regimen.

    python benchmarks/bench_long_interval.py [--interval-h 1344] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from mipd_engine.case import parse_case  # noqa: E402
from mipd_engine.regimens import Regimen  # noqa: E402
from mipd_engine.reports import evaluate_case  # noqa: E402

MODEL = REPO_ROOT / "models_catalog" / "library" / "models" / "infliximab-fasanmade-2009.json"


def infliximab_case(interval_h: float) -> dict[str, Any]:
    """A course after induction (5 mg/kg, 80 kg, weeks 0, 2 and 6) with a trough at week 14."""
    model = json.loads(MODEL.read_text(encoding="utf-8"))["model"]
    dose = {"amount_mg": 400.0, "route": "iv_infusion", "duration_h": 2.0}
    doses = [dose | {"time_h": t} for t in (0.0, 336.0, 1008.0)]
    start_h = 1008.0 + interval_h
    return {
        "model": model,
        "covariates": {"WT": 80.0, "ALB": 38.0, "ATI": 0.0, "SEXF": 1.0},
        "doses": doses,
        "observations": [{"time_h": 1007.0, "value": 4.1}],
        "predict": {"from_h": 0.0, "to_h": start_h + 3 * interval_h, "step_h": max(0.5, interval_h / 200)},
        "posterior": {"samples": 2000, "seed": 20261203, "quantiles": [0.05, 0.5, 0.95]},
        "target": {
            "route": "iv_infusion",
            "interval_options_h": [interval_h],
            "metric": "trough",
            "low": 3,
            "high": 7,
            "unit": "ug/mL",
            "start_h": start_h,
            "last_dose_h": 1008.0,
        },
        "sampling": {"working_hours": [8.0, 18.0], "clock_offset_h": 9.0},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval-h", type=float, default=1344.0)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    document = infliximab_case(args.interval_h)
    start_h = document["target"]["start_h"]
    regimen = Regimen(
        dose_mg=400.0, interval_h=args.interval_h, duration_h=2.0, start_h=start_h, route="iv_infusion"
    )
    for _ in range(args.repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = evaluate_case(parse_case(document), [regimen])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        advice = result.get("sampling_advice", {})
        row = result["regimens"][0]
        figures = {"trough_median": row["metric_median"], "pta": row["pta"], "exposure": row["exposure"]}
        print(
            f"interval {args.interval_h:g} h: wall {wall:.2f} s, CPU {cpu:.2f} s; "
            f"{len(advice.get('options', []))} sampling options; {json.dumps(figures)[:400]}"
        )


if __name__ == "__main__":
    main()
