"""Command line of the engine (model-spec section 2).

    python -m mipd_engine validate-model MODEL.json
    python -m mipd_engine simulate CASE.json
    python -m mipd_engine fit CASE.json
    python -m mipd_engine fit --model MODEL.json --nonmem DATA.csv [--output OUT.csv]
    python -m mipd_engine recommend CASE.json
    python -m mipd_engine trial --model MODEL.json --dose 1000 --interval 12 --target 200 300 [--plot P.png]

Exit status: 0 success, 2 invalid input (the message names the field), 3 estimation did not converge.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any

from . import ENGINE_VERSION
from .errors import EngineError, InvalidInputError
from .model import load_model

# Each command imports what it needs when it runs: process start is part of every batch's time, and the
# case, report and trial modules pull in scipy.stats, which `fit --nonmem` never uses.

EXIT_OK, EXIT_INVALID, EXIT_NOT_CONVERGED = 0, 2, 3


def _print(document: dict[str, Any]) -> None:
    json.dump(document, sys.stdout, indent=1, allow_nan=False, default=_nan_to_none)
    sys.stdout.write("\n")


def _nan_to_none(value: Any) -> Any:
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _clean(value: Any) -> Any:
    """Replace NaN/inf (not valid JSON) by null."""
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _validate(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    _print(
        {
            "valid": True,
            "model_id": model.id,
            "etas": list(model.eta_names),
            "compartments": list(model.compartments),
            "outputs": list(model.outputs),
            "engine_version": ENGINE_VERSION,
        }
    )
    return EXIT_OK


def _simulate(args: argparse.Namespace) -> int:
    from .case import load_case
    from .reports import simulate_case

    _print(_clean(simulate_case(load_case(args.case))))
    return EXIT_OK


def _fit(args: argparse.Namespace) -> int:
    if args.nonmem:
        if not args.model:
            raise InvalidInputError("--model", "--nonmem needs --model")
        return _fit_nonmem(args)
    if not args.case:
        raise InvalidInputError("case", "give a case file, or --model and --nonmem")
    from .case import load_case
    from .reports import fit_case

    document = _clean(fit_case(load_case(args.case)))
    _print(document)
    return EXIT_OK if document["success"] else EXIT_NOT_CONVERGED


def _fit_nonmem(args: argparse.Namespace) -> int:
    from .estimation import fit_map
    from .nonmem import iter_nonmem

    model = load_model(args.model)
    records = iter_nonmem(args.nonmem, model)  # one subject at a time: memory does not grow with the file
    handle = open(args.output, "w", newline="", encoding="utf-8") if args.output else sys.stdout
    all_ok = True
    try:
        writer = csv.writer(handle)
        writer.writerow(["ID", *model.eta_names, "ofv", "success", "message"])
        for record in records:
            try:
                fit = fit_map(model, record)
                row = [
                    record.id,
                    *(f"{v:.10g}" for v in fit.eta),
                    f"{fit.ofv:.10g}",
                    int(fit.success),
                    fit.message,
                ]
            except EngineError as exc:
                fit = None
                row = [record.id, *([""] * model.n_eta), "", 0, str(exc)]
            all_ok &= bool(fit and fit.success)
            writer.writerow(row)
    finally:
        if args.output:
            handle.close()
    return EXIT_OK if all_ok else EXIT_NOT_CONVERGED


def _recommend(args: argparse.Namespace) -> int:
    from .case import load_case
    from .reports import recommend_case

    document = _clean(recommend_case(load_case(args.case)))
    _print(document)
    return EXIT_OK if document["success"] else EXIT_NOT_CONVERGED


def _trial(args: argparse.Namespace) -> int:
    import numpy as np

    from .trial import TrialDesign, iov_implied_cv, run_trial, terminal_progress

    model = load_model(args.model)
    covariates = {}
    for item in args.covariate or []:
        name, _, value = item.partition("=")
        if name not in model.covariates:
            raise InvalidInputError("--covariate", f"the model has no covariate '{name}'")
        try:
            covariates[name] = float(value)
        except ValueError:
            raise InvalidInputError("--covariate", f"{name}: not a number: {value!r}") from None
    design = TrialDesign(
        standard_dose_mg=args.dose,
        interval_h=args.interval,
        target_low=args.target[0],
        target_high=args.target[1],
        route=args.route,
        duration_h=args.duration if args.route == "iv_infusion" else None,
        sampling_h=tuple(args.sampling),
        dose_step_mg=args.step,
        max_dose_mg=args.max_dose,
    )
    result = run_trial(
        model,
        design,
        n_patients=args.patients,
        rng=np.random.default_rng(args.seed),
        covariates=covariates,
        progress=None if args.quiet else terminal_progress,
    )
    if args.csv:
        result.write_csv(args.csv)
    if args.plot:
        result.write_plot(args.plot)
    _print(
        _clean(
            {
                "success": True,
                "engine_version": ENGINE_VERSION,
                "model_id": model.id,
                "patients": args.patients,
                "metric": "AUC over the third dosing interval (mg·h/L)",
                "target": [design.target_low, design.target_high],
                "strategies": result.summary,
                "iov_implied_cv_of_clearance": iov_implied_cv(model),
            }
        )
    )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mipd_engine", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"mipd_engine {ENGINE_VERSION}")
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate-model", help="check a model file")
    validate.add_argument("model")
    validate.set_defaults(run=_validate)
    simulate = commands.add_parser("simulate", help="typical prediction and prior quantiles for a case")
    simulate.add_argument("case")
    simulate.set_defaults(run=_simulate)
    fit = commands.add_parser(
        "fit", help="MAP fit, posterior and credible bands for a case, or a NONMEM dataset"
    )
    fit.add_argument("case", nargs="?")
    fit.add_argument("--model", help="model file (with --nonmem)")
    fit.add_argument("--nonmem", help="NONMEM dataset: one CSV row per ID")
    fit.add_argument("--output", help="write the CSV here instead of stdout")
    fit.set_defaults(run=_fit)
    recommend = commands.add_parser(
        "recommend", help="fit, then ranked regimens for the case's target (or the exact dose for a value)"
    )
    recommend.add_argument("case")
    recommend.set_defaults(run=_recommend)
    trial = commands.add_parser(
        "trial", help="in-silico trial: standard, a-priori and Bayesian dosing in a virtual population"
    )
    trial.add_argument("--model", required=True)
    trial.add_argument("--patients", type=int, default=1000)
    trial.add_argument("--dose", type=float, required=True, help="standard dose, mg")
    trial.add_argument("--interval", type=float, required=True, help="dosing interval, h")
    trial.add_argument(
        "--target",
        type=float,
        nargs=2,
        required=True,
        metavar=("LOW", "HIGH"),
        help="AUC over one interval, mg·h/L",
    )
    trial.add_argument("--route", default="iv_infusion")
    trial.add_argument("--duration", type=float, default=1.0, help="infusion duration, h")
    trial.add_argument("--sampling", type=float, nargs="+", default=[1.5, 11.0], help="h after each dose")
    trial.add_argument("--step", type=float, default=250.0, help="dose rounding step, mg")
    trial.add_argument("--max-dose", type=float, default=None)
    trial.add_argument("--covariate", action="append", metavar="NAME=VALUE")
    trial.add_argument("--seed", type=int, default=1)
    trial.add_argument("--csv", help="write per-patient doses and exposures here")
    trial.add_argument("--plot", help="write a PNG box plot here")
    trial.add_argument("--quiet", action="store_true", help="no progress line")
    trial.set_defaults(run=_trial)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except InvalidInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main())
