"""Concentration-effect (Emax) models and PD-derived individual target concentrations.

Sigmoid Emax: E(C) = E0 + EMAX · C^H / (EC50^H + C^H) (H = 1: the plain Emax model). EMAX may be negative
(an inhibitory effect); E then runs from E0 (C = 0) towards E0 + EMAX (C → ∞) without reaching it, so an
effect is reachable only strictly between the two, and the inverse is

    C = EC50 · (f / (1 − f))^(1/H),   f = (E − E0) / EMAX ∈ (0, 1).

A model file's optional ``pd`` block gives E0, EMAX, EC50 and HILL as expressions of thetas, covariates and
etas (``model.pd.expressions`` maps each name to the block output ``__pd_<NAME>``); E0 defaults to 0 and HILL
to 1. :func:`individual_target_concentration` evaluates them for a patient, so that a covariate that raises
EC50 (a less sensitive subgroup) raises the concentration that patient needs for the same effect.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InvalidInputError
from .model import PopulationModel


def _array(path: str, value: Any) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InvalidInputError(path, f"expected a number or an array of numbers, got {value!r}") from None
    if not np.all(np.isfinite(array)):
        raise InvalidInputError(path, "must be finite")
    return array


def _check_parameters(emax: np.ndarray, ec50: np.ndarray, hill: np.ndarray) -> None:
    if np.any(emax == 0):
        raise InvalidInputError("EMAX", "must not be 0 (no effect)")
    if np.any(ec50 <= 0):
        raise InvalidInputError("EC50", f"must be positive, got {float(np.min(ec50)):g}")
    if np.any(hill <= 0):
        raise InvalidInputError("HILL", f"must be positive, got {float(np.min(hill)):g}")


def emax_effect(
    concentration: float | np.ndarray,
    e0: float | np.ndarray,
    emax: float | np.ndarray,
    ec50: float | np.ndarray,
    hill: float | np.ndarray = 1.0,
) -> np.ndarray:
    """E = E0 + EMAX · C^H / (EC50^H + C^H); arrays broadcast. Concentrations must be >= 0."""
    c = _array("concentration", concentration)
    e0_, emax_, ec50_, hill_ = (
        _array(n, v) for n, v in (("E0", e0), ("EMAX", emax), ("EC50", ec50), ("HILL", hill))
    )
    _check_parameters(emax_, ec50_, hill_)
    if np.any(c < 0):
        raise InvalidInputError("concentration", "must not be negative")
    # C^H/(EC50^H + C^H) = 1/(1 + (EC50/C)^H), written to stay finite for C = 0 and large H.
    with np.errstate(divide="ignore"):
        ratio = np.where(c > 0, (ec50_ / np.where(c > 0, c, 1.0)) ** hill_, np.inf)
    return e0_ + emax_ / (1.0 + ratio)


def concentration_for_effect(
    effect: float | np.ndarray,
    e0: float | np.ndarray,
    emax: float | np.ndarray,
    ec50: float | np.ndarray,
    hill: float | np.ndarray = 1.0,
) -> np.ndarray:
    """The concentration at which the effect equals ``effect`` (the inverse of :func:`emax_effect`).

    Raises :class:`InvalidInputError` (path ``effect``) when the effect lies outside the open range between
    E0 and E0 + EMAX: E0 itself needs no drug, E0 + EMAX is approached only as C → ∞.
    """
    e = _array("effect", effect)
    e0_, emax_, ec50_, hill_ = (
        _array(n, v) for n, v in (("E0", e0), ("EMAX", emax), ("EC50", ec50), ("HILL", hill))
    )
    _check_parameters(emax_, ec50_, hill_)
    fraction = (e - e0_) / emax_
    unreachable = (fraction <= 0) | (fraction >= 1)
    if np.any(unreachable):
        low, high = np.minimum(e0_, e0_ + emax_), np.maximum(e0_, e0_ + emax_)
        bad, lo, hi = (np.broadcast_to(x, fraction.shape)[unreachable][0] for x in (e, low, high))
        raise InvalidInputError(
            "effect", f"effect {bad:g} is unreachable: it must lie strictly between {lo:g} and {hi:g}"
        )
    return ec50_ * (fraction / (1.0 - fraction)) ** (1.0 / hill_)


def concentration_for_fraction_of_max(
    fraction: float | np.ndarray, ec50: float | np.ndarray, hill: float | np.ndarray = 1.0
) -> np.ndarray:
    """EC_f: the concentration giving the fraction ``fraction`` ∈ (0, 1) of the maximal effect (EC80...)."""
    f = _array("fraction", fraction)
    if np.any(f <= 0) or np.any(f >= 1):
        raise InvalidInputError("fraction", "must lie strictly between 0 and 1")
    return concentration_for_effect(f, 0.0, 1.0, ec50, hill)


@dataclass(frozen=True)
class PDParameters:
    """A patient's PD parameters (arrays over the batch of etas given)."""

    model: str
    e0: np.ndarray
    emax: np.ndarray
    ec50: np.ndarray
    hill: np.ndarray

    def effect(self, concentration: float | np.ndarray) -> np.ndarray:
        return emax_effect(concentration, self.e0, self.emax, self.ec50, self.hill)

    def concentration_for(self, effect: float | np.ndarray) -> np.ndarray:
        return concentration_for_effect(effect, self.e0, self.emax, self.ec50, self.hill)


def pd_parameters(
    model: PopulationModel, covariates: Mapping[str, Any], eta: np.ndarray | None = None
) -> PDParameters:
    """Evaluate the model's ``pd`` block for a patient (``eta`` (n_eta,) or (N, n_eta); None: typical)."""
    if model.pd is None:
        raise InvalidInputError("pd", f"model '{model.id}' has no pd block")
    values = model.evaluate(covariates, eta)
    keys = model.pd.expressions

    def get(name: str, default: float) -> np.ndarray:
        if name in keys:
            return np.asarray(values[keys[name]], dtype=float)
        return np.asarray(default, dtype=float)

    parameters = PDParameters(
        model.pd.model, get("E0", 0.0), get("EMAX", math.nan), get("EC50", math.nan), get("HILL", 1.0)
    )
    for name, value in (("EMAX", parameters.emax), ("EC50", parameters.ec50), ("HILL", parameters.hill)):
        if not np.all(np.isfinite(value)):
            raise InvalidInputError(f"pd.{name}", "is not finite for this patient")
    try:
        _check_parameters(parameters.emax, parameters.ec50, parameters.hill)
    except InvalidInputError as exc:
        raise InvalidInputError(f"pd.{exc.path}", f"{exc.message} for this patient") from None
    return parameters


def individual_target_concentration(
    model: PopulationModel,
    covariates: Mapping[str, Any],
    *,
    effect: float | None = None,
    fraction_of_max: float | None = None,
    eta: np.ndarray | None = None,
) -> np.ndarray:
    """The concentration this patient needs for ``effect`` (or ``fraction_of_max`` of the maximal effect),
    from the model's ``pd`` block evaluated at the patient's covariates (and etas, if the PD has IIV).

    Returns an array (a scalar array for one parameter set); raises when the effect is unreachable.
    """
    if (effect is None) == (fraction_of_max is None):
        raise InvalidInputError("effect", "give either effect or fraction_of_max")
    parameters = pd_parameters(model, covariates, eta)
    if effect is not None:
        return parameters.concentration_for(effect)
    return concentration_for_fraction_of_max(fraction_of_max, parameters.ec50, parameters.hill)
