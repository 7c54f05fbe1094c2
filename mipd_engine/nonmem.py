"""Reader for NONMEM-format datasets (model-spec section 3), with NONMEM's semantics.

Columns (case-insensitive): ID, TIME, EVID, AMT, CMT, RATE, II, ADDL, SS, MDV, DV, optionally LLOQ and BLQ,
and any column named like a covariate of the model. ``.`` is a missing value.

- EVID 0 observation (skipped when MDV=1), 1 dose, 2 other (covariates only), 3 reset, 4 reset and dose.
  Without EVID, a row with AMT > 0 is a dose and a row with MDV = 0 an observation.
- CMT n is the n-th compartment of the model (presets: depot first when present, then central,
  peripheral, peripheral2). An observation's CMT selects the output observing that compartment.
- RATE 0 bolus, > 0 rate in mg/h (bioavailability changes the duration, as in NONMEM), -2 modeled duration.
- SS=1 doses are at steady state on their II (earlier amounts are discarded).
- Covariates: a record's values apply over the interval that ends at that record (NONMEM's default), so the
  values of record i take effect just after the time of record i-1.
- BLQ=1 with an LLOQ column gives an observation below the limit of quantification (M3).

:func:`iter_nonmem` gives the same records one at a time, for batches whose memory must not grow with the
dataset.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import InvalidInputError
from .events import CovariateChange, Dose, Observation, PatientRecord
from .model import PopulationModel


def _number(row: dict[str, str], key: str, line: int, default: float | None = 0.0) -> float | None:
    text = row.get(key)
    if text is None:
        return default
    text = text.strip()
    if text in ("", "."):
        return default
    try:
        value = float(text)
    except ValueError:
        raise InvalidInputError(f"line {line}, column {key.upper()}", f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise InvalidInputError(f"line {line}, column {key.upper()}", f"not a finite number: {text!r}")
    return value


def read_nonmem(path: str | Path, model: PopulationModel) -> list[PatientRecord]:
    """Read a NONMEM dataset (CSV) into one :class:`PatientRecord` per ID, in file order."""
    with open(path, newline="", encoding="utf-8") as handle:
        return parse_nonmem_rows(csv.reader(handle), model)


def iter_nonmem(path: str | Path, model: PopulationModel) -> Iterator[PatientRecord]:
    """The records of :func:`read_nonmem`, in the same order, holding one subject's rows at a time.

    The whole file is read once here, keeping nothing, so that an invalid row raises before any record is
    given (as :func:`read_nonmem` does). An ID whose rows are not all together is read as
    :func:`read_nonmem` reads it (all its rows, as one record): that one case holds the whole file.
    """
    try:
        for _ in _iter_contiguous(path, model):
            pass
    except _IdNotContiguous:
        return iter(read_nonmem(path, model))
    return _iter_contiguous(path, model)


class _IdNotContiguous(Exception):
    pass


def _iter_contiguous(path: str | Path, model: PopulationModel) -> Iterator[PatientRecord]:
    with open(path, newline="", encoding="utf-8") as handle:
        _, rows = _data_rows(csv.reader(handle))
        covariate_columns = {c.lower(): c for c in model.covariates}
        done: set[str] = set()
        for subject_id, block in itertools.groupby(rows, key=lambda item: item[1]["id"].strip()):
            if subject_id in done:
                raise _IdNotContiguous(subject_id)
            done.add(subject_id)
            yield _subject(subject_id, list(block), model, covariate_columns)


def parse_nonmem_rows(rows: Iterable[list[str]], model: PopulationModel) -> list[PatientRecord]:
    _, data = _data_rows(rows)
    covariate_columns = {c.lower(): c for c in model.covariates}
    subjects: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for line, row in data:
        subjects.setdefault(row["id"].strip(), []).append((line, row))
    return [_subject(subject_id, rows_, model, covariate_columns) for subject_id, rows_ in subjects.items()]


def _data_rows(rows: Iterable[list[str]]) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The header (lower case) and the data rows as (line number, row by column), comments skipped."""
    iterator = iter(rows)
    try:
        header = [h.strip().lower() for h in next(iterator)]
    except StopIteration:
        raise InvalidInputError("dataset", "empty file") from None
    for required in ("id", "time"):
        if required not in header:
            raise InvalidInputError("dataset", f"missing column {required.upper()}")

    def data() -> Iterator[tuple[int, dict[str, str]]]:
        for line, values in enumerate(iterator, start=2):
            if not values or all(not v.strip() for v in values):
                continue
            if values[0].lstrip().startswith(("#", "@")):
                continue
            if len(values) != len(header):
                raise InvalidInputError(f"line {line}", f"expected {len(header)} columns, got {len(values)}")
            yield line, dict(zip(header, values, strict=True))

    return header, data()


def _subject(subject_id, rows, model: PopulationModel, covariate_columns) -> PatientRecord:
    doses: list[Dose] = []
    observations: list[Observation] = []
    resets: list[float] = []
    records_covariates: list[tuple[float, dict[str, float]]] = []
    current: dict[str, float] = {}
    previous_time = -math.inf
    outputs_by_compartment = {spec.compartment: name for name, spec in model.outputs.items()}
    for line, row in rows:
        time = _number(row, "time", line, None)
        if time is None:
            raise InvalidInputError(f"line {line}, column TIME", "missing time")
        if time < previous_time:
            raise InvalidInputError(
                f"line {line}, column TIME", f"time goes backwards within ID {subject_id}"
            )
        previous_time = time
        for column, name in covariate_columns.items():
            value = _number(row, column, line, None)
            if value is not None:
                current[name] = value
        records_covariates.append((time, dict(current)))
        amount = _number(row, "amt", line) or 0.0
        mdv = _number(row, "mdv", line, None)
        evid = _number(row, "evid", line, None)
        if evid is None:
            evid = 1.0 if amount > 0 else (0.0 if mdv in (None, 0.0) else 2.0)
        cmt = int(_number(row, "cmt", line) or 0)
        where = f"ID {subject_id}, line {line}"
        if evid in (3.0, 4.0):
            resets.append(time)
        if evid in (1.0, 4.0):
            doses.append(_dose(row, line, where, time, amount, cmt, model))
        elif evid == 0.0:
            if mdv == 1.0:
                continue
            observations.append(_observation(row, line, where, time, cmt, model, outputs_by_compartment))
        elif evid not in (2.0, 3.0):
            raise InvalidInputError(f"{where}, column EVID", f"unsupported EVID {evid:g}")
    baseline, changes = _covariate_changes(records_covariates)
    return PatientRecord(
        id=str(subject_id),
        covariates=baseline,
        doses=tuple(doses),
        observations=tuple(observations),
        covariate_changes=tuple(changes),
        resets_h=tuple(resets),
    )


def _dose(row, line, where, time, amount, cmt, model: PopulationModel) -> Dose:
    if amount <= 0:
        raise InvalidInputError(f"{where}, column AMT", f"a dose needs AMT > 0, got {amount:g}")
    if not 1 <= cmt <= model.n_compartments:
        raise InvalidInputError(
            f"{where}, column CMT", f"compartment {cmt} does not exist (model has {model.n_compartments})"
        )
    rate = _number(row, "rate", line) or 0.0
    interval = _number(row, "ii", line) or 0.0
    additional = int(_number(row, "addl", line) or 0)
    ss = int(_number(row, "ss", line) or 0)
    if ss not in (0, 1):
        raise InvalidInputError(f"{where}, column SS", f"SS={ss} is not supported (only 0 and 1)")
    if rate == -1.0:
        raise InvalidInputError(f"{where}, column RATE", "RATE=-1 (modeled rate) is not supported")
    if rate < 0 and rate != -2.0:
        raise InvalidInputError(f"{where}, column RATE", f"invalid RATE {rate:g}")
    return Dose(
        time_h=time,
        amount_mg=amount,
        compartment=model.compartments[cmt - 1],
        rate_mg_per_h=rate if rate > 0 else None,
        modeled_duration=rate == -2.0,
        interval_h=interval if interval > 0 else None,
        additional=additional if interval > 0 else 0,
        steady_state=ss == 1,
    )


def _observation(row, line, where, time, cmt, model, outputs_by_compartment) -> Observation:
    if cmt == 0:
        output = model.default_output
    else:
        if not 1 <= cmt <= model.n_compartments:
            raise InvalidInputError(f"{where}, column CMT", f"compartment {cmt} does not exist")
        output = outputs_by_compartment.get(cmt - 1)
        if output is None:
            raise InvalidInputError(
                f"{where}, column CMT", f"no output observes compartment '{model.compartments[cmt - 1]}'"
            )
    blq = _number(row, "blq", line) or 0.0
    lloq = _number(row, "lloq", line, None)
    if blq == 1.0:
        if lloq is None:
            raise InvalidInputError(f"{where}, column LLOQ", "BLQ=1 needs an LLOQ value")
        return Observation(time_h=time, value=None, output=output, lloq=lloq)
    value = _number(row, "dv", line, None)
    if value is None:
        raise InvalidInputError(f"{where}, column DV", "an observation needs a DV")
    return Observation(time_h=time, value=value, output=output, lloq=lloq)


def _covariate_changes(records: list[tuple[float, dict[str, float]]]):
    """NONMEM: values on record i apply over (t_{i-1}, t_i]; as changes that apply after t_{i-1}."""
    if not records:
        return {}, []
    baseline = records[0][1]
    changes: list[CovariateChange] = []
    in_effect = baseline
    for (previous_time, _), (_, values) in itertools.pairwise(records):
        if values != in_effect:
            changes.append(CovariateChange(time_h=previous_time, values=values))
            in_effect = values
    return baseline, changes
