"""In-silico trial: what a drug level buys, in a virtual population.

Virtual patients are drawn from a model (inter-individual and inter-occasion variability). Every patient
gets a dose every ``interval_h``; each dose opens an occasion. The first two doses are the standard dose;
the third is chosen by one of four strategies, and its exposure (AUC over the third interval, which includes
what remains of the first two doses) is compared with the target:

- ``standard``: the standard dose again;
- ``a_priori``: the dose that brings the typical patient with the same covariates to the target (η = 0);
- ``bayes_1_level``: the dose that brings the MAP estimate after one level (first interval) to the target;
- ``bayes_2_levels``: the same after two levels (first and second interval);
- ``known_individual`` (reference): the dose computed from the patient's true η and the true κ of the first
  two occasions, the third occasion's κ unknown. What remains is the exposure variability implied by IOV
  alone: the floor that Bayesian dosing approaches as levels accumulate.

Levels are simulated with the model's residual error. A dose that hits the target is found exactly: the AUC
of the third interval is affine in the third dose for a linear model (AUC = a + b·dose), so two simulations
give it; for nonlinear models a root finder is used. Doses are rounded to ``dose_step_mg``.

The result shows the central claim of MIPD: a level removes most of the between-patient variability, leaving
the day-to-day (inter-occasion) part, so the exposure CV after Bayesian dosing approaches the CV implied by
IOV alone (:func:`iov_implied_cv`).
"""

from __future__ import annotations

import csv
import itertools
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import brentq

from .errors import EngineError, InvalidInputError
from .estimation import fit_map
from .events import Dose, Observation, PatientRecord
from .model import PopulationModel
from .simulation import PatientSimulator

STRATEGIES = ("standard", "a_priori", "bayes_1_level", "bayes_2_levels", "known_individual")


@dataclass(frozen=True)
class TrialDesign:
    """The virtual trial's regimen, sampling and target (AUC over the third interval, mg·h/L)."""

    standard_dose_mg: float
    interval_h: float
    target_low: float
    target_high: float
    route: str = "iv_infusion"
    duration_h: float | None = 1.0
    sampling_h: tuple[float, ...] = (1.5, 11.0)  # times after each dose at which levels are drawn
    dose_step_mg: float = 250.0
    max_dose_mg: float | None = None
    output: str | None = None

    def __post_init__(self) -> None:
        if not self.standard_dose_mg > 0:
            raise InvalidInputError("standard_dose_mg", "must be positive")
        if not self.interval_h > 0:
            raise InvalidInputError("interval_h", "must be positive")
        if not 0 < self.target_low <= self.target_high:
            raise InvalidInputError(
                "target", f"need 0 < low <= high, got [{self.target_low}, {self.target_high}]"
            )
        if not self.sampling_h or any(not 0 < t <= self.interval_h for t in self.sampling_h):
            raise InvalidInputError("sampling_h", "levels must be drawn within the dosing interval")
        if not self.dose_step_mg > 0:
            raise InvalidInputError("dose_step_mg", "must be positive")
        if self.dose_step_mg > self.standard_dose_mg:
            raise InvalidInputError(
                "dose_step_mg",
                f"the dose step ({self.dose_step_mg:g} mg) is larger than the standard dose "
                f"({self.standard_dose_mg:g} mg): individual doses would round to 0 mg; give a step that "
                "fits the drug (e.g. --step 0.5 for tacrolimus capsules)",
            )

    @property
    def target_mid(self) -> float:
        return 0.5 * (self.target_low + self.target_high)


@dataclass(frozen=True)
class TrialResult:
    """Per-strategy exposures of the evaluated (third) occasion, and their summary."""

    auc: dict[str, np.ndarray]  # strategy -> (n_patients,) mg·h/L; NaN where a fit failed
    doses_mg: dict[str, np.ndarray]
    failed_fits: dict[str, int]
    design: TrialDesign
    summary: dict[str, dict[str, float]] = field(default_factory=dict)

    def write_csv(self, path: str | Path) -> None:
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                ["patient", *(f"{s}_dose_mg" for s in STRATEGIES), *(f"{s}_auc" for s in STRATEGIES)]
            )
            n = len(next(iter(self.auc.values())))
            for i in range(n):
                writer.writerow(
                    [
                        i + 1,
                        *(f"{self.doses_mg[s][i]:.6g}" for s in STRATEGIES),
                        *(f"{self.auc[s][i]:.6g}" for s in STRATEGIES),
                    ]
                )

    def write_plot(self, path: str | Path) -> None:
        """Box plots of the third-occasion AUC per strategy with the target range (PNG)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
        data = [self.auc[s][np.isfinite(self.auc[s])] for s in STRATEGIES]
        axes.boxplot(data, tick_labels=[s.replace("_", " ") for s in STRATEGIES], showfliers=False)
        axes.axhspan(
            self.design.target_low, self.design.target_high, color="tab:green", alpha=0.15, label="target"
        )
        for i, s in enumerate(STRATEGIES, start=1):
            stats = self.summary[s]
            axes.text(
                i,
                axes.get_ylim()[1] * 0.97,
                f"{100 * stats['attainment']:.0f} % in range\nCV {100 * stats['cv']:.0f} %",
                ha="center",
                va="top",
                fontsize=8,
            )
        axes.set_ylabel("AUC over the 3rd interval (mg·h/L)")
        axes.set_title("In-silico trial: exposure at the next occasion by dosing strategy")
        axes.legend(loc="lower right")
        figure.tight_layout()
        figure.savefig(path)
        plt.close(figure)


def iov_implied_cv(model: PopulationModel) -> float | None:
    """CV of exposure implied by inter-occasion variability alone, for IOV on clearance (log-normal kappa).

    AUC = F·dose/CL; with CL ∝ exp(κ), CV(AUC) = sqrt(exp(ω²_iov) − 1). None when the model has no IOV.
    """
    if not model.n_kappa:
        return None
    return float(np.sqrt(np.expm1(model.iov_omega[0, 0])))


def _third_occasion_auc(
    model: PopulationModel, covariates, doses: list[float], design: TrialDesign, eta, kappa
) -> float:
    record = PatientRecord(covariates=covariates, doses=tuple(_doses(doses, design)))
    simulator = PatientSimulator(model, record)
    start = 2 * design.interval_h
    nodes, weights = np.polynomial.legendre.leggauss(16)
    # 4 sub-intervals with the infusion end as an edge: the concentration is smooth within each.
    edges = np.unique(
        [start, start + (design.duration_h or 0.0), *np.linspace(start, start + design.interval_h, 5)]
    )
    times, w = [], []
    for lo, hi in itertools.pairwise(edges):
        times.append(0.5 * (lo + hi) + 0.5 * (hi - lo) * nodes)
        w.append(0.5 * (hi - lo) * weights)
    name = design.output or model.default_output
    values = simulator.predict(
        np.concatenate(times), eta[None, :], kappa[None, :, :] if kappa is not None else None, outputs=[name]
    ).outputs[name][0]
    return float(values @ np.concatenate(w))


def _doses(amounts: list[float], design: TrialDesign) -> list[Dose]:
    return [
        Dose(
            time_h=k * design.interval_h,
            amount_mg=a,
            route=design.route,
            duration_h=design.duration_h if design.route == "iv_infusion" else None,
        )
        for k, a in enumerate(amounts)
        if a > 0
    ]


def _dose_for_target(
    model: PopulationModel, covariates, first_doses: list[float], design: TrialDesign, eta, kappa
) -> float:
    """The third dose that brings the third-interval AUC to the middle of the target, rounded."""

    def auc_of(dose: float) -> float:
        return _third_occasion_auc(model, covariates, [*first_doses, dose], design, eta, kappa)

    if model.is_linear:
        base = auc_of(0.0)
        slope = auc_of(design.standard_dose_mg) - base
        exact = (design.target_mid - base) / slope * design.standard_dose_mg
    else:
        high = design.max_dose_mg or 20 * design.standard_dose_mg
        if auc_of(high) < design.target_mid:
            exact = high
        else:
            exact = brentq(lambda d: auc_of(d) - design.target_mid, 0.0, high, xtol=1e-6)
    # Never 0 mg: a patient who needs less than one step gets the smallest dose that can be given (the
    # design refuses a step larger than the standard dose, where every dose would round to 0).
    rounded = max(round(max(exact, 0.0) / design.dose_step_mg), 1) * design.dose_step_mg
    if design.max_dose_mg is not None:
        rounded = min(rounded, design.max_dose_mg)
    return float(rounded)


def _levels(model, covariates, doses: list[float], design: TrialDesign, eta, kappa, n_occasions: int, rng):
    """Levels drawn in the first ``n_occasions`` intervals, with residual error (never negative)."""
    name = design.output or model.default_output
    times = [k * design.interval_h + t for k in range(n_occasions) for t in design.sampling_h]
    record = PatientRecord(covariates=covariates, doses=tuple(_doses(doses, design)))
    truth = (
        PatientSimulator(model, record)
        .predict(times, eta[None, :], kappa[None, :, :] if kappa is not None else None, outputs=[name])
        .outputs[name][0]
    )
    error = model.outputs[name].error
    if error.model == "exponential":
        observed = truth * np.exp(rng.normal(0.0, error.additive, size=truth.shape))
    else:
        observed = truth + rng.normal(size=truth.shape) * np.sqrt(error.variance(truth))
    # A measured level cannot be negative; a value at or below 1 % of the truth is reported as that floor.
    observed = np.maximum(observed, 0.01 * truth)
    return tuple(
        Observation(time_h=t, value=float(v), output=name) for t, v in zip(times, observed, strict=True)
    )


def run_trial(
    model: PopulationModel,
    design: TrialDesign,
    *,
    n_patients: int,
    rng: np.random.Generator,
    covariates: Mapping[str, float] | None = None,
    covariate_sampler: Callable[[np.random.Generator], Mapping[str, float]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TrialResult:
    """Simulate ``n_patients`` virtual patients and the four dosing strategies (see the module docstring)."""
    if n_patients < 2:
        raise InvalidInputError("n_patients", "a trial needs at least 2 patients")
    auc = {s: np.full(n_patients, np.nan) for s in STRATEGIES}
    doses = {s: np.full(n_patients, np.nan) for s in STRATEGIES}
    failed = dict.fromkeys(STRATEGIES, 0)
    standard = design.standard_dose_mg
    for i in range(n_patients):
        patient_covariates = dict(covariates or {})
        if covariate_sampler is not None:
            patient_covariates.update(covariate_sampler(rng))
        eta = rng.multivariate_normal(np.zeros(model.n_eta), model.omega, method="cholesky")
        kappa = None
        if model.n_kappa:
            kappa = rng.multivariate_normal(
                np.zeros(model.n_kappa), model.iov_omega, size=3, method="cholesky"
            )
        typical_eta = np.zeros(model.n_eta)
        zero_kappa = None if kappa is None else np.zeros_like(kappa)
        chosen = {
            "standard": standard,
            "a_priori": _dose_for_target(
                model, patient_covariates, [standard, standard], design, typical_eta, zero_kappa
            ),
        }
        for strategy, n_levels in (("bayes_1_level", 1), ("bayes_2_levels", 2)):
            observations = _levels(
                model, patient_covariates, [standard, standard], design, eta, kappa, n_levels, rng
            )
            record = PatientRecord(
                covariates=patient_covariates,
                doses=tuple(_doses([standard, standard], design)),
                observations=observations,
            )
            try:
                fit = fit_map(model, record)
            except EngineError:
                fit = None
            if fit is None or not fit.success:
                failed[strategy] += 1
                continue
            # Estimated kappas for observed occasions; the third occasion's is unknown (0, its prior mean).
            map_kappa = None
            if model.n_kappa:
                map_kappa = np.zeros((3, model.n_kappa))
                map_kappa[: fit.kappa.shape[0]] = fit.kappa
            chosen[strategy] = _dose_for_target(
                model, patient_covariates, [standard, standard], design, fit.eta, map_kappa
            )
        known_kappa = None
        if kappa is not None:
            known_kappa = kappa.copy()
            known_kappa[2] = 0.0
        chosen["known_individual"] = _dose_for_target(
            model, patient_covariates, [standard, standard], design, eta, known_kappa
        )
        for strategy, dose in chosen.items():
            doses[strategy][i] = dose
            auc[strategy][i] = _third_occasion_auc(
                model, patient_covariates, [standard, standard, dose], design, eta, kappa
            )
        if progress is not None:
            progress(i + 1, n_patients)
    result = TrialResult(auc, doses, failed, design)
    result.summary.update(summarise(result))
    return result


def summarise(result: TrialResult) -> dict[str, dict[str, float]]:
    """Target attainment, median and CV of the third-occasion AUC per strategy."""
    summary = {}
    for strategy, values in result.auc.items():
        finite = values[np.isfinite(values)]
        attained = (finite >= result.design.target_low) & (finite <= result.design.target_high)
        summary[strategy] = {
            "n": float(finite.size),
            "attainment": float(attained.mean()) if finite.size else float("nan"),
            "median_auc": float(np.median(finite)) if finite.size else float("nan"),
            "cv": float(np.std(finite, ddof=1) / np.mean(finite)) if finite.size > 1 else float("nan"),
            "failed_fits": float(result.failed_fits[strategy]),
        }
    return summary


def terminal_progress(done: int, total: int) -> None:
    """A progress line on standard error, rewritten in place."""
    step = max(1, total // 100)
    if done % step == 0 or done == total:
        sys.stderr.write(f"\rvirtual patients: {done}/{total} ({100 * done / total:.0f} %)")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()
