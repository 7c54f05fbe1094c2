"""Simulation speed and accuracy: the exact (linear) path against the ODE path, and one patient's call cost.

(a) Virtual population: N patients (default 10,000) of a two-compartment model (CL, V1, Q, V2; IIV on CL,
    V1, V2 drawn with a seeded generator), 1-hour infusions every 12 h for 7 days, a prediction every 0.5 h.
    Wall time of the exact path for the whole population; the ODE path (``ode_solver.simulate_ode`` on the
    same schedule and input pieces) on a subset, extrapolated per patient; their ratio and the largest
    relative difference between the two paths on the subset.
(b) One patient, 30 doses, 100 prediction times: microseconds per ``simulate`` call and per
    ``PatientSimulator.predict`` call (record prepared once), best and median of several timeit repeats.

    python benchmarks/bench_simulation.py [--patients 10000] [--ode-subset 200] [--seed 20240501]
"""

from __future__ import annotations

import argparse
import time
import timeit

import numpy as np

from mipd_engine.events import Dose, PatientRecord
from mipd_engine.model import parse_model
from mipd_engine.ode_solver import simulate_ode
from mipd_engine.schedule import build_pieces, evaluate_segments
from mipd_engine.simulation import PatientSimulator, simulate

MODEL = {
    "format": "mipd-model/1",
    "id": "bench-2cmt-infusion",
    "drug": "benchmark drug",
    "title": "Two compartments, IV infusion (benchmark)",
    "structure": {"preset": "2cmt"},
    "thetas": {"TVCL": 4.0, "TVV1": 30.0, "TVQ": 5.0, "TVV2": 40.0},
    "parameters": {
        "CL": "TVCL * exp(ETA_CL)",
        "V1": "TVV1 * exp(ETA_V1)",
        "Q": "TVQ",
        "V2": "TVV2 * exp(ETA_V2)",
    },
    "omega": {
        "etas": ["ETA_CL", "ETA_V1", "ETA_V2"],
        "type": "variance",
        "matrix": [[0.1, 0.02, 0.0], [0.02, 0.2, 0.0], [0.0, 0.0, 0.3]],
    },
    "outputs": {
        "conc": {
            "compartment": "central",
            "volume": "V1",
            "unit": "mg/L",
            "error": {"model": "proportional", "proportional": 0.15},
        }
    },
}


def population(args: argparse.Namespace) -> list[tuple[str, str]]:
    model = parse_model(MODEL)
    rng = np.random.default_rng(args.seed)
    eta = rng.multivariate_normal(np.zeros(model.n_eta), model.omega, size=args.patients)
    record = PatientRecord(
        doses=(Dose(0.0, 1000.0, route="iv_infusion", duration_h=1.0, interval_h=12.0, additional=13),)
    )
    times = np.arange(0.0, 7 * 24 + 0.25, 0.5)
    simulator = PatientSimulator(model, record)

    started = time.perf_counter()
    exact = simulator.predict(times, eta=eta).outputs["conc"]
    exact_s = time.perf_counter() - started

    subset = eta[: args.ode_subset]
    central = np.array([model.compartment_index("central")])
    started = time.perf_counter()
    values = evaluate_segments(model, simulator.schedule, subset, None)
    pieces = build_pieces(model, simulator.schedule, values, subset.shape[0])
    amounts = simulate_ode(model, simulator.schedule, values, pieces, times, central)
    ode_s = time.perf_counter() - started
    volume = values[0]["V1"][:, None]  # no covariates: one segment
    ode = amounts[:, :, 0] / volume

    reference = exact[: args.ode_subset]
    peak = reference.max(axis=1, keepdims=True)
    relevant = (
        reference > 1e-9 * peak
    )  # relative differences of values ~0 (before the first dose) say nothing
    relative = np.abs(ode - reference)[relevant] / reference[relevant]
    exact_per_patient_ms = 1e3 * exact_s / args.patients
    ode_per_patient_ms = 1e3 * ode_s / subset.shape[0]
    return [
        (
            f"(a) exact path, {args.patients} patients x {times.size} times, 14 infusions",
            f"{exact_s:.2f} s  ({exact_per_patient_ms:.3f} ms/patient)",
        ),
        (
            f"(a) ODE path, {subset.shape[0]} patients (LSODA, rtol 1e-10)",
            f"{ode_s:.2f} s  ({ode_per_patient_ms:.2f} ms/patient)",
        ),
        (
            f"(a) ODE path extrapolated to {args.patients} patients",
            f"{ode_per_patient_ms * args.patients / 1e3:.1f} s",
        ),
        ("(a) ODE / exact time per patient", f"{ode_per_patient_ms / exact_per_patient_ms:.0f}x"),
        ("(a) max relative difference ODE vs exact", f"{relative.max():.2e}"),
        ("(a) median relative difference ODE vs exact", f"{np.median(relative):.2e}"),
    ]


def one_patient(args: argparse.Namespace) -> list[tuple[str, str]]:
    model = parse_model(MODEL)
    record = PatientRecord(
        doses=(Dose(0.0, 1000.0, route="iv_infusion", duration_h=1.0, interval_h=12.0, additional=29),)
    )
    times = np.linspace(0.0, 30 * 12.0, 100)
    eta = np.array([0.1, -0.2, 0.05])
    simulator = PatientSimulator(model, record)
    rows = []
    for label, call in (
        ("(b) simulate(), 1 patient, 30 doses, 100 times", lambda: simulate(model, record, times, eta=eta)),
        ("(b) PatientSimulator.predict(), record prepared once", lambda: simulator.predict(times, eta=eta)),
    ):
        call()  # warm-up
        timer = timeit.Timer(call)
        number, _ = timer.autorange()
        per_call_us = np.array(timer.repeat(repeat=args.repeats, number=number)) / number * 1e6
        rows.append((label, f"best {per_call_us.min():.0f} us, median {np.median(per_call_us):.0f} us"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--ode-subset", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=20240501)
    args = parser.parse_args()
    rows = population(args) + one_patient(args)
    width = max(len(label) for label, _ in rows)
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 36}")
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


if __name__ == "__main__":
    main()
