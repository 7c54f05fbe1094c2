"""Maximum a posteriori (MAP) estimation of a patient's random effects.

The objective (:mod:`mipd_engine.objective`) is minimised by BFGS with central finite-difference gradients
computed in one vectorised batch per iteration, from the population values (η = 0) and from the best of 63
quasi-random screening points (two modes occur with lag times and parallel absorption). When BFGS stalls or
stops at a point that is not a minimum (gradient not small, Hessian not positive definite), the fit restarts
from further points (a Nelder-Mead polish of the best point, then starts one prior standard deviation away
along each axis) and keeps the lowest objective. A fit that still does not converge says so
(``success=False``) with the reason.

``eta_covariance`` is the inverse Hessian of ofv/2 at the mode (finite differences in one batch).

Prior weight λ (mapbayr's ``lambda``): λ < 1 multiplies the prior term and flattens the prior, letting the
levels dominate for a patient far from the model's population. It also lets a few noisy levels produce
extreme estimates; use it only with several reliable levels and review the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import ndtri

from .deadline import check_deadline
from .errors import ParameterValueError
from .events import PatientRecord
from .model import PopulationModel
from .objective import Objective
from .sobol_points import sobol_points

_GRADIENT_STEP = 1e-6
_HESSIAN_STEP = 1e-3
_GRADIENT_TOLERANCE = 1e-5


@dataclass(frozen=True)
class MapResult:
    """Result of a MAP fit; mirrors scipy's result objects (``success``, ``message``, counters)."""

    success: bool
    message: str
    theta: np.ndarray  # [η, κ...] at the mode
    eta: np.ndarray  # (n_eta,)
    kappa: np.ndarray  # (n_occasions_estimated, n_kappa)
    ofv: float
    covariance: np.ndarray  # inverse Hessian of ofv/2 over θ
    eta_covariance: np.ndarray  # (n_eta, n_eta) block of ``covariance``
    n_iterations: int
    n_evaluations: int
    n_starts: int
    gradient_norm: float
    prior_only: bool = False
    warnings: tuple[str, ...] = field(default_factory=tuple)


def _safe(objective: Objective, theta: np.ndarray) -> np.ndarray:
    """Objective over a batch; parameter sets with impossible parameter values score +inf."""
    check_deadline()  # each optimiser iteration and each posterior proposal batch comes through here
    theta = np.atleast_2d(theta)
    try:
        return objective(theta)
    except ParameterValueError:
        if theta.shape[0] == 1:
            return np.array([np.inf])
        return np.concatenate([_safe(objective, row[None, :]) for row in theta])


def _value_and_gradient(objective: Objective, theta: np.ndarray, step: float = _GRADIENT_STEP):
    points, h = _gradient_points(theta, step)
    return _gradient_from_values(_safe(objective, points), h)


def _gradient_points(theta: np.ndarray, step: float = _GRADIENT_STEP) -> tuple[np.ndarray, np.ndarray]:
    """θ and the central-difference points around it (2·dim + 1 rows), and the steps per axis."""
    dim = theta.size
    h = step * np.maximum(1.0, np.abs(theta))
    batch = np.repeat(theta[None, :], 2 * dim + 1, axis=0)
    idx = np.arange(dim)
    batch[1 + idx, idx] += h
    batch[1 + dim + idx, idx] -= h
    return batch, h


def _gradient_from_values(values: np.ndarray, h: np.ndarray) -> tuple[float, np.ndarray]:
    dim = h.size
    f0 = values[0]
    with np.errstate(invalid="ignore"):  # inf - inf where both sides are infeasible
        grad = (values[1 : 1 + dim] - values[1 + dim :]) / (2 * h)
        if not np.all(np.isfinite(grad)):
            # One-sided differences where a side is infeasible.
            forward = (values[1 : 1 + dim] - f0) / h
            backward = (f0 - values[1 + dim :]) / h
            grad = np.where(np.isfinite(forward), forward, backward)
    return f0, grad


def _screening_candidates(objective: Objective) -> np.ndarray:
    """A deterministic quasi-random batch over the prior (63 Sobol points, within ±2.5 prior SD).

    The best of them is a second start far from zero: it catches posteriors with two modes, where a single
    local search from the population values can stop in the worse one (seen with lag times and parallel
    absorption).
    """
    dim = objective.dimension
    points = sobol_points(dim)  # the first Sobol point, 0, is left out
    normal = np.clip(ndtri(points), -2.5, 2.5)
    chol = np.linalg.cholesky(objective.prior_covariance() / objective.prior_weight)
    return normal @ chol.T


def hessian(objective: Objective, theta: np.ndarray, step: float = _HESSIAN_STEP) -> np.ndarray:
    """Hessian of the objective by central differences, all points in one batch."""
    points, h = _hessian_points(theta, step)
    return _hessian_from_values(_safe(objective, points), h)


def _hessian_points(theta: np.ndarray, step: float = _HESSIAN_STEP) -> tuple[np.ndarray, np.ndarray]:
    """The central-difference points of :func:`hessian` (θ first), and the steps per axis."""
    dim = theta.size
    h = step * np.maximum(1.0, np.abs(theta))
    points = [theta.copy()]
    for i in range(dim):
        for sign in (1, -1):
            p = theta.copy()
            p[i] += sign * h[i]
            points.append(p)
    for i, j in _pairs(dim):
        for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
            p = theta.copy()
            p[i] += si * h[i]
            p[j] += sj * h[j]
            points.append(p)
    return np.array(points), h


def _pairs(dim: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(dim) for j in range(i + 1, dim)]


def _hessian_from_values(values: np.ndarray, h: np.ndarray) -> np.ndarray:
    dim = h.size
    f0 = values[0]
    result = np.empty((dim, dim))
    for i in range(dim):
        result[i, i] = (values[1 + 2 * i] - 2 * f0 + values[2 + 2 * i]) / h[i] ** 2
    base = 1 + 2 * dim
    for k, (i, j) in enumerate(_pairs(dim)):
        fpp, fpm, fmp, fmm = values[base + 4 * k : base + 4 * k + 4]
        result[i, j] = result[j, i] = (fpp - fpm - fmp + fmm) / (4 * h[i] * h[j])
    return result


def _minimise_from(objective: Objective, start: np.ndarray, start_hessian: np.ndarray | None = None):
    """BFGS from ``start``; ``start_hessian`` is the objective's Hessian there when already computed."""
    cache: dict[bytes, tuple[float, np.ndarray]] = {}

    def fun(theta: np.ndarray):
        key = theta.tobytes()
        if key not in cache:
            cache.clear()
            cache[key] = _value_and_gradient(objective, theta)
        value, grad = cache[key]
        if not np.isfinite(value):
            return 1e300, np.zeros_like(theta)
        return value, grad

    # Start from the curvature at the start point, so that the first steps are Newton steps towards the
    # nearest minimum instead of long gradient steps that may jump into another basin.
    if start_hessian is None:
        start_hessian = hessian(objective, start)
    options: dict = {"gtol": _GRADIENT_TOLERANCE, "maxiter": 500}
    options["hess_inv0"] = _initial_inverse_hessian(objective, start_hessian)
    return minimize(fun, start, jac=True, method="BFGS", options=options)


def _initial_inverse_hessian(objective: Objective, h0: np.ndarray) -> np.ndarray:
    """Inverse of the Hessian h0 at the start when it is positive definite; else the prior's."""
    if np.all(np.isfinite(h0)):
        values, vectors = np.linalg.eigh(0.5 * (h0 + h0.T))
        if values.min() > 1e-8 * values.max() > 0:
            inverse = (vectors / values) @ vectors.T
            return 0.5 * (inverse + inverse.T)
    inverse = np.linalg.inv(2.0 * objective.prior_weight * objective.prior_precision)
    return 0.5 * (inverse + inverse.T)


def fit_map(
    model: PopulationModel,
    record: PatientRecord,
    *,
    prior_weight: float = 1.0,
    objective: Objective | None = None,
) -> MapResult:
    """MAP estimate of η (and κ for occasions with data) for one patient.

    With no observation the result is the prior mode (η = 0) and its covariance, and says so.
    """
    objective = objective or Objective(model, record, prior_weight=prior_weight)
    dim = objective.dimension
    warnings: list[str] = []
    if objective.n_obs == 0:
        covariance = objective.prior_covariance() / objective.prior_weight
        theta = np.zeros(dim)
        ofv = float(_safe(objective, theta)[0])
        return _result(
            objective,
            True,
            "no observations: the posterior is the prior",
            theta,
            ofv,
            covariance,
            0,
            1,
            0.0,
            prior_only=True,
            warnings=("no drug levels: estimates are the population prior",),
        )
    if dim == 0:
        ofv = float(_safe(objective, np.zeros(0))[0])
        return _result(
            objective, True, "model has no random effects", np.zeros(0), ofv, np.zeros((0, 0)), 0, 1, 0.0
        )

    # Two local searches always: from the population values (NONMEM's start) and from the best screening
    # point. The screening batch shares one call with the Hessian at zero that starts the first search.
    # (Skipping the second search when the objective falls all the way from the screening point to the first
    # estimate was tried: with parallel absorption it missed a slightly lower nearby mode in ~0.5 % of
    # subjects.)
    zero = np.zeros(dim)
    candidates = _screening_candidates(objective)
    zero_points, zero_steps = _hessian_points(zero)
    values = _safe(objective, np.concatenate((candidates, zero_points)))
    best = _minimise_from(objective, zero, _hessian_from_values(values[len(candidates) :], zero_steps))
    result = _minimise_from(objective, candidates[int(np.argmin(values[: len(candidates)]))])
    n_iterations = int(best.nit) + int(result.nit)
    n_starts = 2
    if result.fun < best.fun:
        best = result
    check = _check_mode(objective, best.x)
    if not check.ok:
        # Not a proper minimum: a Nelder-Mead polish, then starts one prior SD along each axis.
        polished = minimize(
            lambda t: float(_safe(objective, t)[0]),
            best.x,
            method="Nelder-Mead",
            options={"xatol": 1e-7, "fatol": 1e-9, "maxiter": 4000 * dim, "adaptive": True},
        )
        n_iterations += int(polished.nit)
        prior_sd = np.sqrt(np.diag(objective.prior_covariance()))
        starts = [polished.x]
        for i in range(dim):
            for sign in (1.0, -1.0):
                axis_start = np.zeros(dim)
                axis_start[i] = sign * prior_sd[i]
                starts.append(axis_start)
        for start in starts:
            n_starts += 1
            result = _minimise_from(objective, start)
            n_iterations += int(result.nit)
            if result.fun < best.fun:
                best = result
        check = _check_mode(objective, best.x)
    theta = np.asarray(best.x, dtype=float)
    converged, reason = check.ok, check.reason
    ofv = check.value
    covariance = np.full((dim, dim), np.nan)
    if converged:
        covariance = np.linalg.inv(0.5 * (0.5 * (check.hessian + check.hessian.T)))
    if check.on_kink and converged:
        warnings.append(
            "the estimate lies on a kink of the objective (a lag time or the end of an input coinciding "
            "with a sampling time); it is a minimum, but its covariance is approximate"
        )
    grad_norm = float(np.max(np.abs(check.gradient)))
    ipred = objective.predictions(theta)[0]
    for j, obs in enumerate(record.observations):
        if obs.value is not None and obs.value > 0 and ipred[j] == 0.0:
            warnings.append(
                f"level at {obs.time_h:g} h: the model predicts no drug at that time (before the dose "
                "reached "
                "the sampled compartment); it is kept with NONMEM's convention (W = 1) but check the times"
            )
    if not np.isfinite(ofv):
        converged, reason = False, "the objective is not finite at the estimate"
    return _result(
        objective,
        converged,
        "" if converged else reason,
        theta,
        ofv,
        covariance,
        n_iterations,
        n_starts,
        grad_norm,
        warnings=tuple(warnings),
    )


@dataclass(frozen=True)
class _ModeCheck:
    ok: bool
    reason: str
    on_kink: bool
    hessian: np.ndarray
    value: float  # objective at θ
    gradient: np.ndarray


def _check_mode(objective: Objective, theta: np.ndarray) -> _ModeCheck:
    """Is θ a proper local minimum? Smooth: small gradient, positive definite Hessian. On a kink (a lag time
    or an infusion end equal to a sampling time makes the objective non-differentiable there): no direction
    of descent along ± each axis and against the gradient, and a positive definite Hessian."""
    # Gradient and Hessian points in one batch.
    gradient_points, gradient_steps = _gradient_points(theta)
    hessian_points, hessian_steps = _hessian_points(theta)
    values = _safe(objective, np.concatenate((gradient_points, hessian_points)))
    value, grad = _gradient_from_values(values[: len(gradient_points)], gradient_steps)
    value = float(value)
    if not np.isfinite(value):
        return _ModeCheck(
            False, "the objective is not finite at the estimate", False, np.full((1, 1), np.nan), value, grad
        )
    h = _hessian_from_values(values[len(gradient_points) :], hessian_steps)
    try:
        np.linalg.cholesky(0.5 * (h + h.T))
        positive_definite = bool(np.all(np.isfinite(h)))
    except np.linalg.LinAlgError:
        positive_definite = False
    scale = max(1.0, abs(value))
    gradient_small = np.max(np.abs(grad)) <= 1e-3 * scale
    on_kink = not gradient_small and _no_descent(objective, theta, value, grad)
    if not gradient_small and not on_kink:
        return _ModeCheck(
            False,
            f"optimisation stalled: gradient {np.max(np.abs(grad)):.2g} at the estimate",
            False,
            h,
            value,
            grad,
        )
    if not positive_definite:
        return _ModeCheck(
            False, "the estimate is a saddle point or a flat region, not a minimum", on_kink, h, value, grad
        )
    return _ModeCheck(True, "", on_kink, h, value, grad)


def _no_descent(objective: Objective, theta: np.ndarray, value: float, grad: np.ndarray) -> bool:
    """No small step along ± each axis or against the gradient lowers the objective."""
    dim = theta.size
    directions = np.concatenate((np.eye(dim), -np.eye(dim), -(grad / np.linalg.norm(grad))[None, :]))
    sd = np.sqrt(np.diag(objective.prior_covariance()))
    steps = np.concatenate([theta + step * directions * sd for step in (1e-3, 1e-5)])
    return bool(np.min(_safe(objective, steps)) >= value - 1e-9 * max(1.0, abs(value)))


def _result(
    objective,
    success,
    message,
    theta,
    ofv,
    covariance,
    n_iterations,
    n_starts,
    grad_norm,
    *,
    prior_only=False,
    warnings=(),
) -> MapResult:
    n_eta = objective.n_eta
    kappa = (
        theta[n_eta:].reshape(objective.n_occasions_estimated, objective.n_kappa)
        if objective.n_kappa
        else (np.zeros((0, 0)))
    )
    return MapResult(
        success=bool(success),
        message=message,
        theta=theta,
        eta=theta[:n_eta],
        kappa=kappa,
        ofv=ofv,
        covariance=covariance,
        eta_covariance=covariance[:n_eta, :n_eta],
        n_iterations=n_iterations,
        n_evaluations=objective.n_evaluations,
        n_starts=n_starts,
        gradient_norm=grad_norm,
        prior_only=prior_only,
        warnings=tuple(warnings),
    )
