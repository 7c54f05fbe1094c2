"""Reference checks: a model reproduces values published for it, or computed independently of the engine.

A reference check states one number for a typical patient (all etas 0): a parameter value (e.g. the typical
clearance printed in the paper's table), a concentration at a time, or an AUC over a window, after the doses
given. :func:`run_reference_checks` computes each with the engine and compares it with the expected value at
the check's relative tolerance. Library model files (``models_catalog/library``) carry their checks as JSON:

.. code-block:: json

    {"description": "typical CL for CrCL 120 mL/min, no dialysis", "source": "Goti 2018 Table 2",
     "covariates": {"WT": 70, "CRCL": 120, "DIAL": 0}, "doses": [],
     "quantity": "parameter", "parameter": "CL", "expected": 4.5, "unit": "L/h", "rel_tol": 0.005}

``quantity`` is ``"parameter"`` (field ``parameter``), ``"concentration"`` (``time_h``; optional ``output``,
default the model's first output) or ``"auc"`` (``window_h`` = [start, end]; optional ``output``). Doses use
the case-file dose objects (model-spec section 2). A check that cannot be computed (unknown covariate, a
parameter that evaluates to an impossible value) is a failed result that says why, never an exception.

Tolerances are relative: ``|observed - expected| <= rel_tol * |expected|``. State the tolerance the source
supports, e.g. 0.005 for a value printed with three significant digits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from .case import parse_dose
from .errors import EngineError, InvalidInputError
from .events import Dose, PatientRecord
from .exposure import Window, auc
from .model import PopulationModel
from .simulation import PatientSimulator
from .targets import _auc_unit, _normalise_unit

QUANTITIES = ("parameter", "concentration", "auc")

_CHECK_FIELDS = frozenset(
    {
        "description",
        "source",
        "covariates",
        "doses",
        "quantity",
        "parameter",
        "output",
        "time_h",
        "window_h",
        "expected",
        "unit",
        "rel_tol",
    }
)
_MAX_REL_TOL = 0.5


def _finite(path: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(path, f"must be a number, got {value!r}")
    return float(value)


def _text(path: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(path, f"must be a non-empty string, got {value!r}")
    return value


@dataclass(frozen=True)
class ReferenceCheck:
    """One reference value for the typical patient (all etas 0).

    Parameters
    ----------
    description : what is checked, in words ("typical CL for CrCL 120 mL/min, no dialysis").
    source : where the expected value comes from ("Goti 2018 Table 2", "closed-form 1-cmt infusion").
    covariates : covariate values of the patient, in the model's units.
    doses : doses given (empty for parameter checks).
    quantity : ``"parameter"``, ``"concentration"`` or ``"auc"``.
    name : parameter name for ``"parameter"``; output name otherwise (None: the model's first output).
    time_h : time of the concentration, h (``"concentration"`` only).
    window_h : (start, end) of the AUC, h (``"auc"`` only).
    expected : the reference value, in ``unit`` (not zero: the tolerance is relative).
    unit : unit of ``expected``; for concentrations and AUCs it must be the model output's unit.
    rel_tol : relative tolerance in (0, 0.5].
    """

    description: str
    source: str
    covariates: Mapping[str, float]
    doses: tuple[Dose, ...]
    quantity: str
    name: str | None
    time_h: float | None
    window_h: tuple[float, float] | None
    expected: float
    unit: str
    rel_tol: float

    def __post_init__(self) -> None:
        _text("description", self.description)
        _text("source", self.source)
        if not isinstance(self.covariates, Mapping):
            raise InvalidInputError("covariates", "must be an object of covariate values")
        values = {}
        for key, value in self.covariates.items():
            values[str(key)] = _finite(f"covariates.{key}", value)
        object.__setattr__(self, "covariates", MappingProxyType(values))
        object.__setattr__(self, "doses", tuple(self.doses))
        if not all(isinstance(dose, Dose) for dose in self.doses):
            raise InvalidInputError("doses", "must be Dose objects")
        if self.quantity not in QUANTITIES:
            raise InvalidInputError(
                "quantity", f"must be one of {', '.join(QUANTITIES)}, got {self.quantity!r}"
            )
        if self.quantity == "parameter":
            _text("parameter", self.name)
        elif self.name is not None:
            _text("output", self.name)
        if self.quantity == "concentration":
            if self.time_h is None:
                raise InvalidInputError("time_h", "a concentration check needs time_h")
            object.__setattr__(self, "time_h", _finite("time_h", self.time_h))
        elif self.time_h is not None:
            raise InvalidInputError("time_h", f"not used by a {self.quantity} check")
        if self.quantity == "auc":
            window = self.window_h
            if not isinstance(window, list | tuple) or len(window) != 2:
                raise InvalidInputError("window_h", "an auc check needs window_h = [start, end]")
            start, end = _finite("window_h[0]", window[0]), _finite("window_h[1]", window[1])
            if not end > start:
                raise InvalidInputError("window_h", f"need start < end, got [{start:g}, {end:g}]")
            object.__setattr__(self, "window_h", (start, end))
        elif self.window_h is not None:
            raise InvalidInputError("window_h", f"not used by a {self.quantity} check")
        if self.quantity != "parameter" and not self.doses:
            raise InvalidInputError("doses", f"a {self.quantity} check needs at least one dose")
        expected = _finite("expected", self.expected)
        if expected == 0:
            raise InvalidInputError("expected", "must not be 0 (the tolerance is relative)")
        object.__setattr__(self, "expected", expected)
        _text("unit", self.unit)
        rel_tol = _finite("rel_tol", self.rel_tol)
        if not 0 < rel_tol <= _MAX_REL_TOL:
            raise InvalidInputError("rel_tol", f"must lie in (0, {_MAX_REL_TOL:g}], got {rel_tol:g}")
        object.__setattr__(self, "rel_tol", rel_tol)

    def label(self, default_output: str = "output") -> str:
        """What the check measures, in words (``conc at 24 h``)."""
        if self.quantity == "parameter":
            return str(self.name)
        output = self.name or default_output
        if self.quantity == "concentration":
            return f"{output} at {self.time_h:g} h"
        assert self.window_h is not None
        return f"AUC of {output} over [{self.window_h[0]:g}, {self.window_h[1]:g}] h"


@dataclass(frozen=True)
class ReferenceCheckResult:
    check: ReferenceCheck
    observed: float | None
    passed: bool
    message: str


@dataclass(frozen=True)
class ReferenceReport:
    """Outcome of a set of reference checks: ``success`` when there is at least one and all pass."""

    success: bool
    message: str
    results: tuple[ReferenceCheckResult, ...] = field(default_factory=tuple)

    @property
    def n_failed(self) -> int:
        return sum(not result.passed for result in self.results)


# -- parsing ---------------------------------------------------------------------------------------------


def _parse_check(document: Any, path: str) -> ReferenceCheck:
    if not isinstance(document, Mapping):
        raise InvalidInputError(path, "expected an object")
    unknown = set(document) - _CHECK_FIELDS
    if unknown:
        raise InvalidInputError(path, f"unknown field(s) {', '.join(sorted(unknown))}")
    for key in ("description", "source", "quantity", "expected", "unit", "rel_tol"):
        if key not in document:
            raise InvalidInputError(f"{path}.{key}", "required field is missing")
    quantity = document["quantity"]
    if quantity == "parameter":
        if "parameter" not in document:
            raise InvalidInputError(f"{path}.parameter", "a parameter check names the parameter")
        if "output" in document:
            raise InvalidInputError(f"{path}.output", "not used by a parameter check")
        name = document["parameter"]
    else:
        if "parameter" in document:
            raise InvalidInputError(f"{path}.parameter", "only parameter checks name a parameter")
        name = document.get("output")
    covariates = document.get("covariates", {})
    if not isinstance(covariates, Mapping):
        raise InvalidInputError(f"{path}.covariates", "must be an object of covariate values")
    doses_doc = document.get("doses", [])
    if not isinstance(doses_doc, list):
        raise InvalidInputError(f"{path}.doses", "must be a list of dose objects")
    doses = tuple(parse_dose(dose, f"{path}.doses[{i}]") for i, dose in enumerate(doses_doc))
    window = document.get("window_h")
    if window is not None and not isinstance(window, list):
        raise InvalidInputError(f"{path}.window_h", "must be a list [start, end]")
    try:
        return ReferenceCheck(
            description=document["description"],
            source=document["source"],
            covariates=covariates,
            doses=doses,
            quantity=quantity,
            name=name,
            time_h=document.get("time_h"),
            window_h=tuple(window) if window is not None else None,
            expected=document["expected"],
            unit=document["unit"],
            rel_tol=document["rel_tol"],
        )
    except InvalidInputError as exc:
        raise InvalidInputError(f"{path}.{exc.path}", exc.message) from None


def parse_reference_checks(document: Any, *, path: str = "reference_checks") -> tuple[ReferenceCheck, ...]:
    """Reference checks from their JSON form (a list of objects; see the module docstring).

    Raises :class:`~mipd_engine.errors.InvalidInputError` naming the field path at fault
    (``reference_checks[2].expected: must be a number, got '4.5'``).
    """
    if not isinstance(document, list):
        raise InvalidInputError(path, "expected a list of reference checks")
    return tuple(_parse_check(item, f"{path}[{i}]") for i, item in enumerate(document))


# -- running ---------------------------------------------------------------------------------------------


def _compute(model: PopulationModel, check: ReferenceCheck) -> tuple[float, str]:
    """The engine's value for ``check`` (typical patient) and its unit; raises on invalid input."""
    for name in check.covariates:
        if name not in model.covariates:
            raise InvalidInputError(f"covariates.{name}", f"the model has no covariate '{name}'")
    if check.quantity == "parameter":
        assert check.name is not None
        if check.name not in model.parameter_names:
            raise InvalidInputError(
                "parameter",
                f"unknown parameter '{check.name}' (model has {', '.join(model.parameter_names)})",
            )
        values = model.evaluate(check.covariates)
        return float(np.ravel(values[check.name])[0]), check.unit
    output = check.name or model.default_output
    if output not in model.outputs:
        raise InvalidInputError("output", f"unknown output '{output}' (model has {', '.join(model.outputs)})")
    output_unit = model.outputs[output].unit
    unit = output_unit if check.quantity == "concentration" else _auc_unit(output_unit)
    if _normalise_unit(check.unit) != _normalise_unit(unit):
        raise InvalidInputError("unit", f"expected value in {check.unit} but the model predicts {unit}")
    missing = [n for n in model.covariates if n in model.block.used_inputs and n not in check.covariates]
    if missing:
        raise InvalidInputError("covariates", f"missing value(s) for {', '.join(missing)}")
    record = PatientRecord(covariates=check.covariates, doses=check.doses)
    simulator = PatientSimulator(model, record)
    if check.quantity == "concentration":
        assert check.time_h is not None
        prediction = simulator.predict([check.time_h], outputs=[output])
        return float(prediction.outputs[output][0, 0]), unit
    assert check.window_h is not None
    return float(auc(simulator, Window(*check.window_h), output=output)[0]), unit


def run_check(model: PopulationModel, check: ReferenceCheck) -> ReferenceCheckResult:
    """Compute one check; an error becomes a failed result whose message says what went wrong."""
    label = check.label(model.default_output)
    try:
        observed, unit = _compute(model, check)
    except (EngineError, ValueError, ArithmeticError) as exc:
        return ReferenceCheckResult(check, None, False, f"{label}: could not be computed: {exc}")
    if not math.isfinite(observed):
        return ReferenceCheckResult(check, None, False, f"{label}: not finite ({observed!r})")
    deviation = abs(observed - check.expected) / abs(check.expected)
    passed = deviation <= check.rel_tol
    message = (
        f"{label} {observed:.5g} {unit}, expected {check.expected:.5g} (±{100 * check.rel_tol:.3g} %)"
        + ("" if passed else f": off by {100 * deviation:.3g} %")
    )
    warnings = model.covariate_warnings(check.covariates)
    if warnings:
        message += f" [{'; '.join(warnings)}]"
    return ReferenceCheckResult(check, observed, passed, message)


def run_reference_checks(model: PopulationModel, checks: Sequence[ReferenceCheck]) -> ReferenceReport:
    """Run every check for the typical patient of ``model``.

    Returns
    -------
    ReferenceReport with one result per check; ``success`` when there is at least one check and all pass.
    """
    results = tuple(run_check(model, check) for check in checks)
    if not results:
        return ReferenceReport(False, f"{model.id}: no reference checks", results)
    failed = [result for result in results if not result.passed]
    if failed:
        details = "; ".join(result.message for result in failed)
        message = f"{model.id}: {len(failed)} of {len(results)} reference checks failed: {details}"
        return ReferenceReport(False, message, results)
    return ReferenceReport(True, f"{model.id}: all {len(results)} reference checks passed", results)
