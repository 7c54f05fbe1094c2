"""Memory of a batch does not grow with the dataset, nor with an extreme random effect.

The batch command once grew to 24 GB on a parent-metabolite model with steady-state dosing and a lagged
zero-order input: a line search tried a lag of millions of dosing intervals, and the steady state added one
input piece per interval. Such a parameter set is impossible (objective +inf), found without allocating.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from mipd_engine.errors import InvalidInputError, ParameterValueError
from mipd_engine.estimation import fit_map
from mipd_engine.events import Dose, Observation, PatientRecord
from mipd_engine.model import load_model
from mipd_engine.nonmem import iter_nonmem, read_nonmem
from mipd_engine.objective import Objective

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "nonmem-validation"
MODEL = FIXTURES / "parent_metabolite_5cmt_12eta_ss.json"


def steady_state_record() -> PatientRecord:
    """Parallel first-order and lagged zero-order input at steady state (12 h), then a dose at 12 h."""
    doses = []
    for time_h, ss in ((0.0, True), (12.0, False)):
        for compartment, modeled in (("depot", False), ("central", True)):
            doses.append(
                Dose(
                    time_h,
                    400.0,
                    compartment=compartment,
                    modeled_duration=modeled,
                    interval_h=12.0 if ss else None,
                    steady_state=ss,
                )
            )
    levels = (
        Observation(1.0, 3.0, output="parent"),
        Observation(6.0, 2.5, output="metabolite"),
        Observation(13.0, 2.0, output="parent"),
        Observation(20.0, 3.0, output="metabolite"),
    )
    return PatientRecord(doses=tuple(doses), observations=levels)


def test_a_lag_of_millions_of_intervals_is_impossible_without_allocating_them() -> None:
    model = load_model(MODEL)
    objective = Objective(model, steady_state_record())
    theta = np.zeros(objective.dimension)
    theta[model.eta_names.index("ETA_ALAG")] = 17.0  # lag 0.5·e^17 h ≈ 1.2 million intervals of 12 h
    tracemalloc.start()
    try:
        with pytest.raises(ParameterValueError, match="more than 1000 dosing intervals"):
            objective(theta)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20e6, f"{peak / 1e6:.0f} MB allocated"  # one piece per interval took ~300 MB here


def test_the_fixture_model_fits_a_steady_state_record() -> None:
    model = load_model(MODEL)
    assert (model.n_compartments, model.n_eta, model.n_kappa) == (5, 10, 2)
    fit = fit_map(model, steady_state_record())
    assert fit.success, fit.message
    # The fit lowers the objective from the population values.
    objective = Objective(model, steady_state_record())
    assert fit.ofv < float(objective(np.zeros(objective.dimension))[0])


@pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"reference data not found at {REFERENCE}")
def test_streamed_records_are_the_records_read_at_once() -> None:
    model = load_model(REFERENCE / "run401" / "model.json")
    path = REFERENCE / "run401" / "data.csv"
    assert list(iter_nonmem(path, model)) == read_nonmem(path, model)


def _dataset(tmp_path: Path, n_subjects: int, *, split_id: bool = False) -> Path:
    rows = (REFERENCE / "run001" / "data.csv").read_text().splitlines()
    subject_one = [r for r in rows[1:] if r.split(",")[0] == "1"]
    lines = [rows[0]]
    for i in range(1, n_subjects + 1):
        lines += [f"{i}," + r.split(",", 1)[1] for r in subject_one]
    if split_id:  # ID 1 again at the end, later times: read_nonmem makes it one record
        lines.append("1,100,0,0,2,0,0,0,5.0,1")
    path = tmp_path / "data.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"reference data not found at {REFERENCE}")
def test_streaming_holds_one_subject_at_a_time(tmp_path: Path) -> None:
    model = load_model(REFERENCE / "run001" / "model.json")
    path = _dataset(tmp_path, 3000)
    peaks = []
    for read in (lambda: sum(1 for _ in iter_nonmem(path, model)), lambda: len(read_nonmem(path, model))):
        tracemalloc.start()
        try:
            assert read() == 3000
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert peaks[0] < peaks[1] / 20, f"streamed {peaks[0] / 1e6:.1f} MB, at once {peaks[1] / 1e6:.1f} MB"


@pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"reference data not found at {REFERENCE}")
def test_an_id_in_two_places_is_read_as_read_nonmem_reads_it(tmp_path: Path) -> None:
    model = load_model(REFERENCE / "run001" / "model.json")
    path = _dataset(tmp_path, 3, split_id=True)
    records = list(iter_nonmem(path, model))
    assert records == read_nonmem(path, model)
    assert [r.id for r in records] == ["1", "2", "3"]
    assert len(records[0].observations) == 5  # its four levels and the one at the end of the file


@pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"reference data not found at {REFERENCE}")
def test_an_invalid_row_late_in_the_file_stops_before_any_record(tmp_path: Path) -> None:
    model = load_model(REFERENCE / "run001" / "model.json")
    path = _dataset(tmp_path, 50)
    text = path.read_text()
    path.write_text(text + "51,0,1,abc,1,0,0,1,.,1\n")
    with pytest.raises(InvalidInputError, match=f"line {text.count(chr(10)) + 1}, column AMT"):
        iter_nonmem(path, model)
