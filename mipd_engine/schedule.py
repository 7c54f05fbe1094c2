"""From a patient record to what the solvers integrate: parameter segments and input pieces.

Time is cut into *segments* in which every parameter is constant: a new segment starts at each covariate
change, each new occasion (inter-occasion variability), each steady-state dose and each reset. Segment ``j``
covers ``(b_j, b_{j+1}]`` (``b_0 = -inf``): a change at time b applies strictly after b, so a level drawn at
the change time still sees the earlier parameters, as NONMEM does.

Each administration becomes one *input piece* per compartment it enters: start (administration time plus
lag), amount (dose times bioavailability) and duration (0 for a bolus). Lag, bioavailability and modeled
durations may depend on the random effects, so pieces are arrays over the batch of parameter sets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .errors import InvalidInputError, ParameterValueError
from .events import Dose, PatientRecord
from .model import PopulationModel

MAX_ADMINISTRATIONS = 20_000
# Steady state: inputs (lag plus duration) may last at most this many dosing intervals. Beyond it the
# parameter set is impossible (its objective is +inf): an extreme eta of a line search once gave a lag of
# millions of intervals, one input piece each, and the batch grew to 24 GB.
MAX_STEADY_STATE_INTERVALS = 1000


@dataclass(frozen=True)
class Administration:
    """One expanded administration of a dose record into one compartment."""

    time_h: float
    amount_mg: float
    compartment: int
    duration_h: float  # from the record; 0 for bolus
    rate_mg_per_h: float | None  # from the record (NONMEM RATE > 0)
    modeled_duration: bool
    record: int  # index of the dose record
    steady_state_interval_h: float | None  # set on the first administration of an SS=1 record


@dataclass(frozen=True)
class Segment:
    start_h: float  # -inf for the first
    covariates: Mapping[str, float]
    occasion: int
    reset: bool  # the state is emptied (and replaced by steady-state amounts when ss doses start here)


@dataclass
class Schedule:
    """Segments and administrations of one patient record; independent of the random effects."""

    boundaries_h: np.ndarray  # (m,) finite segment starts b_1..b_m
    segments: list[Segment]  # m + 1 segments
    administrations: list[Administration]
    n_occasions: int
    table: AdministrationTable

    def segment_of_time(self, times_h: np.ndarray) -> np.ndarray:
        """Segment index of evaluation times t (segment j covers (b_j, b_{j+1}])."""
        return np.searchsorted(self.boundaries_h, times_h, side="left")

    def segment_of_start(self, times_h: np.ndarray) -> np.ndarray:
        """Segment index in which an input starting at t begins (b_j <= t < b_{j+1})."""
        return np.searchsorted(self.boundaries_h, times_h, side="right")


def _dose_targets(model: PopulationModel, dose: Dose, index: int) -> tuple[int, ...]:
    path = f"doses[{index}]"
    if dose.compartment is not None:
        return (model.compartment_index(dose.compartment, path=f"{path}.compartment"),)
    targets = model.routes.get(dose.route or "")
    if targets is None:
        raise InvalidInputError(
            f"{path}.route", f"unknown route '{dose.route}' (model has {', '.join(model.routes)})"
        )
    return targets


def build_schedule(model: PopulationModel, record: PatientRecord) -> Schedule:
    """Expand dose records and cut time into segments of constant parameters."""
    administrations: list[Administration] = []
    ss_times: set[float] = set()
    for index, dose in enumerate(record.doses):
        targets = _dose_targets(model, dose, index)
        is_infusion_route = dose.route == "iv_infusion"
        for compartment in targets:
            has_modeled = compartment in model.inputs and model.inputs[compartment].duration_h is not None
            modeled = dose.modeled_duration or (
                has_modeled and not dose.infusion_duration_h and not dose.rate_mg_per_h
            )
            if modeled and not has_modeled:
                raise InvalidInputError(
                    f"doses[{index}]", "a modeled duration needs inputs.<compartment>.duration_h in the model"
                )
            if is_infusion_route and not modeled and dose.infusion_duration_h <= 0:
                raise InvalidInputError(
                    f"doses[{index}].duration_h", "an infusion needs a positive duration_h (or a rate)"
                )
        times = dose.administration_times_h()
        if len(administrations) + len(times) * len(targets) > MAX_ADMINISTRATIONS:
            raise InvalidInputError(f"doses[{index}]", f"more than {MAX_ADMINISTRATIONS} administrations")
        if dose.steady_state:
            ss_times.add(dose.time_h)
        for k, time_h in enumerate(times):
            for compartment in targets:
                has_modeled = compartment in model.inputs and model.inputs[compartment].duration_h is not None
                modeled = dose.modeled_duration or (
                    has_modeled and not dose.infusion_duration_h and not dose.rate_mg_per_h
                )
                administrations.append(
                    Administration(
                        time_h=time_h,
                        amount_mg=dose.amount_mg,
                        compartment=compartment,
                        duration_h=0.0 if modeled else float(dose.duration_h or 0.0),
                        rate_mg_per_h=None if modeled else dose.rate_mg_per_h,
                        modeled_duration=modeled,
                        record=index,
                        steady_state_interval_h=dose.interval_h if (dose.steady_state and k == 0) else None,
                    )
                )
    administrations.sort(key=lambda a: a.time_h)

    schedule_points = record.covariate_schedule()
    reset_times = set(record.resets_h) | ss_times
    occasion_starts: list[float] = []
    if model.n_kappa:
        occasion_starts = sorted({d.time_h for d in record.doses})
    boundaries = sorted({t for t, _ in schedule_points[1:]} | reset_times | set(occasion_starts))
    segments: list[Segment] = []
    covariate_index = 0
    for j, start in enumerate([-np.inf, *boundaries]):
        while covariate_index + 1 < len(schedule_points) and schedule_points[covariate_index + 1][0] <= start:
            covariate_index += 1
        occasion = (
            max(0, int(np.searchsorted(occasion_starts, start, side="right")) - 1) if occasion_starts else 0
        )
        segments.append(
            Segment(
                start_h=start,
                covariates=schedule_points[covariate_index][1],
                occasion=occasion,
                reset=j > 0 and start in reset_times,
            )
        )
    boundaries_array = np.array(boundaries, dtype=float)
    return Schedule(
        boundaries_h=boundaries_array,
        segments=segments,
        administrations=administrations,
        n_occasions=max(1, len(occasion_starts)),
        table=_administration_table(administrations, boundaries_array),
    )


@dataclass
class Pieces:
    """Input pieces for a batch of N parameter sets (P pieces)."""

    compartment: np.ndarray  # (P,) int
    administered_h: np.ndarray  # (P,) administration time (before lag)
    start_h: np.ndarray  # (N, P)
    amount_mg: np.ndarray  # (N, P) after bioavailability
    duration_h: np.ndarray  # (N, P) 0 for bolus
    steady_state_interval_h: np.ndarray  # (P,) nan unless first administration of an SS=1 record

    def administered_before(self, time_h: float) -> Pieces:
        """The pieces administered at or before ``time_h``: later ones cannot affect earlier times."""
        keep = self.administered_h <= time_h
        if keep.all():
            return self
        return Pieces(
            self.compartment[keep],
            self.administered_h[keep],
            self.start_h[:, keep],
            self.amount_mg[:, keep],
            self.duration_h[:, keep],
            self.steady_state_interval_h[keep],
        )


def build_pieces(
    model: PopulationModel,
    schedule: Schedule,
    segment_values: list[dict[str, np.ndarray]],
    n_batch: int,
) -> Pieces:
    """Turn administrations into input pieces using the parameters in force at each administration."""
    table = schedule.table
    n = table.time_h.size
    start = np.broadcast_to(table.time_h, (n_batch, n)).copy()
    amount = np.broadcast_to(table.amount_mg, (n_batch, n)).copy()
    duration = np.broadcast_to(table.duration_h, (n_batch, n)).copy()
    # Administrations sharing a segment and a compartment share F, lag and modeled duration.
    for (segment, compartment), columns in table.groups.items():
        spec = model.inputs.get(compartment)
        if spec is None:
            continue
        values = segment_values[segment]
        if spec.bioavailability:
            amount[:, columns] *= values[spec.bioavailability][:, None]
        if spec.lag_h:
            start[:, columns] += values[spec.lag_h][:, None]
        if spec.duration_h is not None:
            modeled = columns[table.modeled[columns]]
            if modeled.size:
                duration[:, modeled] = values[spec.duration_h][:, None]
    if np.any(table.has_rate):
        # NONMEM: bioavailability changes the duration of an infusion given by its rate.
        rate_columns = np.nonzero(table.has_rate)[0]
        duration[:, rate_columns] = amount[:, rate_columns] / table.rate_mg_per_h[rate_columns]
    pieces = Pieces(table.compartment, table.time_h, start, amount, duration, table.steady_state_interval_h)
    return _with_steady_state_carryover(pieces)


def _with_steady_state_carryover(pieces: Pieces) -> Pieces:
    """Add the inputs of the doses implied before a steady-state dose that are still entering after it.

    At steady state, doses were given every tau before the SS dose. Their amounts already delivered are in
    the steady-state amounts; when an infusion lasts longer than tau, or a lag exceeds tau, part of their
    input is still to come after the SS dose. Those parts become pieces belonging to the SS dose (same
    administration time, so a reset at that time keeps them).
    """
    ss_columns = np.nonzero(~np.isnan(pieces.steady_state_interval_h))[0]
    extra: list[tuple[int, int]] = []  # (column, k): the dose given k intervals before
    for column in ss_columns:
        tau = pieces.steady_state_interval_h[column]
        reach = float(
            np.max(pieces.start_h[:, column] - pieces.administered_h[column] + pieces.duration_h[:, column])
        )
        n_intervals = (
            int(np.ceil(reach / tau - 1e-12)) if np.isfinite(reach) else MAX_STEADY_STATE_INTERVALS + 1
        )
        if n_intervals > MAX_STEADY_STATE_INTERVALS:
            raise ParameterValueError(
                f"steady state: inputs last more than {MAX_STEADY_STATE_INTERVALS} dosing intervals"
            )
        extra += [(int(column), k) for k in range(1, n_intervals + 1)]
    if not extra:
        return pieces
    columns = np.array([c for c, _ in extra])
    shift = np.array([k * pieces.steady_state_interval_h[c] for c, k in extra])
    ss_time = pieces.administered_h[columns][None, :]
    start = pieces.start_h[:, columns] - shift[None, :]
    duration = pieces.duration_h[:, columns]
    amount = pieces.amount_mg[:, columns]
    # Only what enters after the SS dose time: the rest is already in the steady-state amounts.
    is_infusion = duration > 0
    end = start + duration
    remaining = np.where(is_infusion, np.clip(end - np.maximum(start, ss_time), 0.0, None), 0.0)
    rate = np.where(is_infusion, amount / np.where(is_infusion, duration, 1.0), 0.0)
    new_amount = np.where(is_infusion, rate * remaining, np.where(start >= ss_time, amount, 0.0))
    new_start = np.maximum(start, ss_time)
    return Pieces(
        np.concatenate((pieces.compartment, pieces.compartment[columns])),
        np.concatenate((pieces.administered_h, pieces.administered_h[columns])),
        np.concatenate((pieces.start_h, new_start), axis=1),
        np.concatenate((pieces.amount_mg, new_amount), axis=1),
        np.concatenate((pieces.duration_h, remaining), axis=1),
        np.concatenate((pieces.steady_state_interval_h, np.full(columns.size, np.nan))),
    )


@dataclass(frozen=True)
class AdministrationTable:
    """The administrations as arrays, grouped by (segment, compartment) for vectorised parameter lookup."""

    time_h: np.ndarray
    amount_mg: np.ndarray
    compartment: np.ndarray
    duration_h: np.ndarray
    rate_mg_per_h: np.ndarray
    has_rate: np.ndarray
    modeled: np.ndarray
    steady_state_interval_h: np.ndarray
    groups: dict[tuple[int, int], np.ndarray]


def _administration_table(
    administrations: list[Administration], boundaries_h: np.ndarray
) -> AdministrationTable:
    time_h = np.array([a.time_h for a in administrations], dtype=float)
    compartment = np.array([a.compartment for a in administrations], dtype=int)
    segment = np.searchsorted(boundaries_h, time_h, side="right")
    groups: dict[tuple[int, int], list[int]] = {}
    for p, key in enumerate(zip(segment.tolist(), compartment.tolist(), strict=True)):
        groups.setdefault(key, []).append(p)
    rate = np.array([a.rate_mg_per_h or np.nan for a in administrations], dtype=float)
    return AdministrationTable(
        time_h=time_h,
        amount_mg=np.array([a.amount_mg for a in administrations], dtype=float),
        compartment=compartment,
        duration_h=np.array([a.duration_h for a in administrations], dtype=float),
        rate_mg_per_h=rate,
        has_rate=~np.isnan(rate),
        modeled=np.array([a.modeled_duration for a in administrations], dtype=bool),
        steady_state_interval_h=np.array(
            [
                np.nan if a.steady_state_interval_h is None else a.steady_state_interval_h
                for a in administrations
            ],
            dtype=float,
        ),
        groups={key: np.array(columns, dtype=int) for key, columns in groups.items()},
    )


def evaluate_segments(
    model: PopulationModel,
    schedule: Schedule,
    eta: np.ndarray,
    kappa: np.ndarray | None,
) -> list[dict[str, np.ndarray]]:
    """Evaluate the model's block for each segment; values broadcast to shape (N,).

    ``eta`` is (N, n_eta); ``kappa`` is (N, n_occasions, n_kappa) or None (zeros). Segments with the same
    covariates and occasion share one dict.
    """
    n_batch = eta.shape[0]
    keys = [(tuple(sorted(segment.covariates.items())), segment.occasion) for segment in schedule.segments]
    first_of: dict[tuple, int] = {}
    for j, key in enumerate(keys):
        first_of.setdefault(key, j)
    distinct = [schedule.segments[j] for j in first_of.values()]

    def kappa_of(segment: Segment) -> np.ndarray | None:
        if not model.n_kappa:
            return None
        if kappa is None:
            return np.zeros((n_batch, model.n_kappa))
        return kappa[:, min(segment.occasion, kappa.shape[1] - 1), :]

    names = {frozenset(segment.covariates) for segment in distinct}
    if len(distinct) > 1 and len(names) == 1:
        # Covariates that change over time: one evaluation of the block for all segments at once (covariates
        # as (S, 1) columns against etas (1, N)) instead of one per segment.
        covariates = {
            name: np.array([segment.covariates[name] for segment in distinct], dtype=float)[:, None]
            for name in next(iter(names))
        }
        k = None
        if model.n_kappa:
            k = np.stack([kappa_of(segment) for segment in distinct])
        raw = model.evaluate(covariates, eta[None, :, :], k)
        stacked = {name: np.broadcast_to(v, (len(distinct), n_batch)) for name, v in raw.items()}
        per_key = {key: {name: v[u] for name, v in stacked.items()} for u, key in enumerate(first_of)}
    else:
        per_key = {}
        for key, segment in zip(first_of, distinct, strict=True):
            raw = model.evaluate(segment.covariates, eta, kappa_of(segment))
            per_key[key] = {
                name: v if np.shape(v) == (n_batch,) else np.broadcast_to(v, (n_batch,))
                for name, v in raw.items()
            }
    return [per_key[key] for key in keys]
