"""Command line of the engine (model-spec section 2).

    python -m mipd_engine validate-model MODEL.json
    python -m mipd_engine simulate CASE.json
    python -m mipd_engine fit CASE.json
    python -m mipd_engine fit --model MODEL.json --nonmem DATA.csv [--output OUT.csv]

Exit status: 0 success, 2 invalid input (the message names the field), 3 estimation did not converge.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any

from . import ENGINE_VERSION
from .case import load_case
from .errors import EngineError, InvalidInputError
from .estimation import fit_map
from .model import load_model
from .nonmem import read_nonmem
from .reports import fit_case, simulate_case

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
    _print(_clean(simulate_case(load_case(args.case))))
    return EXIT_OK


def _fit(args: argparse.Namespace) -> int:
    if args.nonmem:
        if not args.model:
            raise InvalidInputError("--model", "--nonmem needs --model")
        return _fit_nonmem(args)
    if not args.case:
        raise InvalidInputError("case", "give a case file, or --model and --nonmem")
    document = _clean(fit_case(load_case(args.case)))
    _print(document)
    return EXIT_OK if document["success"] else EXIT_NOT_CONVERGED


def _fit_nonmem(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    records = read_nonmem(args.nonmem, model)
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
