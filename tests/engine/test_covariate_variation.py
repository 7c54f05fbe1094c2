"""Covariate semantics: how each covariate may vary within a course (``variation`` in the model file), the
dialysis flag read from recorded sessions, and the case and regimen rules that go with them (a baseline
covariate never changes mid-course; a bolus has no infusion duration).

Expected values are worked by hand: Cockcroft-Gault (140 − age) · weight / (72 · creatinine), linear
interpolation between the measured points, the session times plus DIALYSIS_STATUS_H.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mipd_engine.case import parse_case
from mipd_engine.covariate_sources import (
    DIALYSIS_STATUS_H,
    INTERPOLATION_STEP_H,
    BaselineConflict,
    PatientFacts,
    ResolvedCovariates,
    parse_covariate_sources,
    resolve_covariates,
)
from mipd_engine.errors import InvalidInputError, ModelError
from mipd_engine.model import PopulationModel, parse_model
from mipd_engine.regimens import RegimenConstraints

from .conftest import make_model

SOURCES = {
    "WT": {"from": "weight"},
    "CRCL": {"from": "cockcroft_gault", "weight_basis": "total", "cap_ml_per_min": 150},
    "ALB": {"from": "albumin"},
    "DIAL": {"from": "dialysis"},
}
HD = "intermittent_haemodialysis"


def model_document(**variations: str) -> dict[str, Any]:
    covariates: dict[str, dict[str, Any]] = {
        "WT": {"unit": "kg", "min": 30, "max": 180, "reference": 70},
        "CRCL": {"unit": "mL/min", "min": 4, "max": 150, "reference": 100},
        "ALB": {"unit": "g/L", "min": 10, "max": 60, "reference": 35},
        "DIAL": {"type": "boolean", "min": 0, "max": 1},
    }
    for name, variation in variations.items():
        covariates[name]["variation"] = variation
    return make_model(
        covariates=covariates,
        parameters={
            "CL": "TVCL * (WT/70)**0.75 * (CRCL/100)**0.5 * (ALB/35)**0.3 * 0.7**DIAL * exp(ETA_CL)",
            "V": "TVV * WT/70 * exp(ETA_V)",
        },
    )


def resolve(model: PopulationModel, **facts: Any) -> ResolvedCovariates:
    measurements = {"weight": [(0.0, 70.0)], "serum_creatinine": [(0.0, 1.0)], "albumin": [(0.0, 35.0)]}
    measurements.update(facts.pop("measurements", {}))
    patient = PatientFacts(age_years_at_origin=60.0, sex="male", measurements=measurements, **facts)
    return resolve_covariates(parse_covariate_sources(SOURCES, model), model, patient)


def changes_of(result: ResolvedCovariates, name: str) -> list[tuple[float, float]]:
    return [(time_h, values[name]) for time_h, values in result.changes if name in values]


def cockcroft_gault(weight_kg: float, scr: float, age: float = 60.0) -> float:
    return (140.0 - age) * weight_kg / (72.0 * scr)


# -- carried forward (the default) ------------------------------------------------------------------------


def test_carried_forward_is_the_default_and_holds_each_value_until_the_next() -> None:
    model = parse_model(model_document())
    assert {spec.variation for spec in model.covariates.values()} == {"carried_forward"}
    assert model.baseline_covariates == ()

    result = resolve(model, measurements={"weight": [(0.0, 70.0), (24.0, 75.0), (48.0, 75.0), (72.0, 72.0)]})

    assert result.success and result.baseline_conflicts == ()
    assert result.initial["WT"] == 70.0
    assert changes_of(result, "WT") == [(24.0, 75.0), (72.0, 72.0)]  # an unchanged value is no change
    # The derived clearance is recomputed at every time an input changes (the age too moves on by then).
    assert result.initial["CRCL"] == pytest.approx(cockcroft_gault(70.0, 1.0), rel=1e-12)
    crcl = changes_of(result, "CRCL")
    assert [t for t, _ in crcl] == [24.0, 48.0, 72.0]
    expected = [
        cockcroft_gault(w, 1.0, age=60.0 + t / (24 * 365.25)) for t, w in ((24, 75), (48, 75), (72, 72))
    ]
    np.testing.assert_allclose([v for _, v in crcl], expected, rtol=1e-12)


def test_carried_forward_uses_the_first_value_before_it_was_measured_and_says_so() -> None:
    model = parse_model(model_document())

    result = resolve(model, measurements={"weight": [(10.0, 82.0)]})

    assert result.initial["WT"] == 82.0
    assert changes_of(result, "WT") == []
    assert any("weight: the first value, recorded 10.0 h after the first dose" in n for n in result.notes)


# -- baseline ---------------------------------------------------------------------------------------------


def test_a_baseline_covariate_never_changes_and_its_first_later_value_is_a_conflict() -> None:
    model = parse_model(model_document(DIAL="baseline"))
    assert model.baseline_covariates == ("DIAL",)

    # Haemodialysis from 48 h: the derived flag turns 1 at 48 h, and back to 0 seven days after the end.
    result = resolve(model, sessions=[(HD, 48.0, 52.0)])

    assert result.initial["DIAL"] == 0.0
    assert changes_of(result, "DIAL") == []
    assert len(result.baseline_conflicts) == 1
    conflict = result.baseline_conflicts[0]
    assert isinstance(conflict, BaselineConflict)
    assert (conflict.name, conflict.time_h, conflict.initial, conflict.later) == ("DIAL", 48.0, 0.0, 1.0)
    assert "haemodialysis" in conflict.formula
    (shown,) = [d for d in result.derivations if d.name == "DIAL"]
    assert shown.value == 0.0  # what the course uses, not the later value


def test_a_baseline_covariate_measured_several_times_gives_one_conflict_at_the_first_change() -> None:
    model = parse_model(model_document(WT="baseline"))

    result = resolve(model, measurements={"weight": [(0.0, 70.0), (30.0, 74.0), (60.0, 78.0)]})

    assert result.initial["WT"] == 70.0
    assert changes_of(result, "WT") == []
    assert [(c.name, c.time_h, c.initial, c.later) for c in result.baseline_conflicts] == [
        ("WT", 30.0, 70.0, 74.0)
    ]
    # Other covariates derived from the weight still follow it (their own variation applies).
    assert [t for t, _ in changes_of(result, "CRCL")] == [30.0, 60.0]


def test_a_baseline_covariate_that_stays_the_same_has_no_conflict() -> None:
    model = parse_model(model_document(WT="baseline"))

    result = resolve(model, measurements={"weight": [(0.0, 70.0), (30.0, 70.0)]})

    assert result.baseline_conflicts == ()
    assert changes_of(result, "WT") == []


# -- interpolated ------------------------------------------------------------------------------------------


def step_function(result: ResolvedCovariates, name: str) -> list[tuple[float, float | None, float]]:
    """(start_h, end_h or None for the last, value) of each constant piece."""
    starts = [(0.0, result.initial[name]), *changes_of(result, name)]
    return [
        (start, starts[i + 1][0] if i + 1 < len(starts) else None, value)
        for i, (start, value) in enumerate(starts)
    ]


def assert_follows_linear_interpolation(result: ResolvedCovariates, measured: list[tuple[float, float]]):
    """Each step holds the linear interpolant at its midpoint, and is at most INTERPOLATION_STEP_H wide.

    The interpolant v_a + (v_b − v_a)(t − t_a)/(t_b − t_a) is taken between the measured points around t,
    flat before the first and after the last (np.interp).
    """
    times = [t for t, _ in measured]
    values = [v for _, v in measured]
    pieces = step_function(result, "ALB")
    for start, end, value in pieces[:-1]:
        assert end is not None
        flat = np.interp(start, times, values) == np.interp(end, times, values) == value
        # Equal neighbouring steps are one step: only a sloping piece must be at most one step wide.
        assert flat or end - start <= INTERPOLATION_STEP_H + 1e-9, (start, end)
        middle = 0.5 * (start + end)
        expected = float(np.interp(middle, times, values))
        assert value == pytest.approx(expected, rel=1e-12), (start, end, value, expected)
    last_start, _, last_value = pieces[-1]
    assert last_start == pytest.approx(times[-1], abs=1e-9)
    assert last_value == values[-1]


def test_an_interpolated_covariate_follows_linear_interpolation_in_steps() -> None:
    model = parse_model(model_document(ALB="interpolated"))
    measured = [(0.0, 30.0), (20.0, 40.0), (26.0, 34.0)]

    result = resolve(model, measurements={"albumin": measured})

    assert result.success
    assert_follows_linear_interpolation(result, measured)
    # Worked by hand: 0-20 h in 4 steps of 5 h (mid 2.5 h: 30 + 10 · 2.5/20 = 31.25), 20-26 h in one step.
    assert result.initial["ALB"] == pytest.approx(31.25, rel=1e-12)
    assert [t for t, _ in changes_of(result, "ALB")] == pytest.approx([5.0, 10.0, 15.0, 20.0, 26.0])
    np.testing.assert_allclose([v for _, v in changes_of(result, "ALB")], [33.75, 36.25, 38.75, 37.0, 34.0])


def test_interpolation_keeps_a_measured_point_equal_to_the_one_before() -> None:
    """30 g/L at 0 h and at 10 h, then 40 g/L at 20 h: flat for 10 h, then rising."""
    model = parse_model(model_document(ALB="interpolated"))
    measured = [(0.0, 30.0), (10.0, 30.0), (20.0, 40.0)]

    result = resolve(model, measurements={"albumin": measured})

    assert_follows_linear_interpolation(result, measured)


def test_interpolation_is_flat_before_the_first_measurement() -> None:
    """First albumin at 6 h: its value holds before it (as the note says), then linear to the next."""
    model = parse_model(model_document(ALB="interpolated"))
    measured = [(6.0, 30.0), (18.0, 42.0)]

    result = resolve(model, measurements={"albumin": measured})

    assert any("albumin: the first value" in note for note in result.notes)
    assert_follows_linear_interpolation(result, measured)


# -- the serum creatinine form ----------------------------------------------------------------------------


def test_the_serum_creatinine_form_gives_each_measured_value_in_mg_per_dl() -> None:
    model = parse_model(
        make_model(
            covariates={"SCR": {"unit": "mg/dL", "min": 0.1, "max": 2, "reference": 0.6}},
            parameters={"CL": "TVCL * (0.6/SCR)**0.5 * exp(ETA_CL)", "V": "TVV * exp(ETA_V)"},
        )
    )
    sources = parse_covariate_sources({"SCR": {"from": "serum_creatinine"}}, model)
    facts = PatientFacts(
        age_years_at_origin=0.05, sex="female", measurements={"serum_creatinine": [(0.0, 0.7), (30.0, 0.5)]}
    )
    result = resolve_covariates(sources, model, facts)
    assert result.initial == {"SCR": 0.7}
    assert changes_of(result, "SCR") == [(30.0, 0.5)]
    (derivation,) = result.derivations
    assert derivation.unit == "mg/dL"


# -- the dialysis form -----------------------------------------------------------------------------------


def test_without_a_session_the_dialysis_flag_is_0() -> None:
    result = resolve(parse_model(model_document()))

    assert result.initial["DIAL"] == 0.0
    assert changes_of(result, "DIAL") == []
    (derivation,) = [d for d in result.derivations if d.name == "DIAL"]
    assert derivation.formula == "not on intermittent haemodialysis (no session recorded)"


def test_the_dialysis_flag_is_1_from_a_session_until_seven_days_after_its_end() -> None:
    assert DIALYSIS_STATUS_H == 7 * 24.0
    result = resolve(parse_model(model_document()), sessions=[(HD, 24.0, 28.0)])

    assert result.initial["DIAL"] == 0.0
    (on, off) = changes_of(result, "DIAL")
    assert on == (24.0, 1.0)
    assert off[1] == 0.0 and off[0] == pytest.approx(28.0 + DIALYSIS_STATUS_H, abs=1e-5)
    assert off[0] > 28.0 + DIALYSIS_STATUS_H  # still 1 at exactly 7 days after the end


@pytest.mark.parametrize(
    ("time_h", "on"),
    [(23.9, False), (24.0, True), (26.0, True), (28.0, True), (196.0, True), (196.01, False), (400.0, False)],
)
def test_on_haemodialysis_at_each_time(time_h: float, on: bool) -> None:
    facts = PatientFacts(age_years_at_origin=60.0, sex="male", sessions=[(HD, 24.0, 28.0)])

    assert facts.on_haemodialysis(time_h) is on


def test_sessions_three_days_apart_keep_the_flag_on_between_them() -> None:
    result = resolve(parse_model(model_document()), sessions=[(HD, 24.0, 28.0), (HD, 96.0, 100.0)])

    (on, off) = changes_of(result, "DIAL")
    assert on == (24.0, 1.0)
    assert off[1] == 0.0 and off[0] == pytest.approx(100.0 + DIALYSIS_STATUS_H, abs=1e-5)


def test_an_ongoing_session_keeps_the_flag_on() -> None:
    result = resolve(parse_model(model_document()), sessions=[(HD, 10.0, None)])

    assert changes_of(result, "DIAL") == [(10.0, 1.0)]


def test_a_session_from_time_0_sets_the_initial_flag() -> None:
    result = resolve(parse_model(model_document()), sessions=[(HD, 0.0, 4.0)])

    assert result.initial["DIAL"] == 1.0


@pytest.mark.parametrize("modality", ["crrt", "peritoneal_dialysis", "ecmo"])
def test_other_sessions_do_not_set_the_intermittent_haemodialysis_flag(modality: str) -> None:
    result = resolve(parse_model(model_document()), sessions=[(modality, 0.0, None)])

    assert result.initial["DIAL"] == 0.0
    assert changes_of(result, "DIAL") == []


# -- the model file ----------------------------------------------------------------------------------------


def test_an_unknown_variation_is_a_model_error_naming_the_field() -> None:
    with pytest.raises(ModelError) as error:
        parse_model(model_document(WT="daily"))

    assert error.value.path == "covariates.WT.variation"
    assert "unknown variation 'daily'" in error.value.message
    assert "baseline, carried_forward, interpolated" in error.value.message


# -- the case file ----------------------------------------------------------------------------------------


def case_document(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "model": model_document(DIAL="baseline"),
        "covariates": {"WT": 70, "CRCL": 90, "ALB": 35, "DIAL": 0},
        "doses": [{"time_h": 0, "amount_mg": 1000, "route": "iv_infusion", "duration_h": 1}],
    }
    document.update(overrides)
    return document


def test_a_case_refuses_a_change_of_a_baseline_covariate() -> None:
    document = case_document(covariate_changes=[{"time_h": 48, "DIAL": 1}])

    with pytest.raises(InvalidInputError) as error:
        parse_case(document)

    assert error.value.path == "covariate_changes[0].DIAL"
    assert "baseline covariate" in error.value.message and "from 0 to 1" in error.value.message


def test_a_case_accepts_a_baseline_covariate_restated_with_the_same_value() -> None:
    document = case_document(covariate_changes=[{"time_h": 48, "DIAL": 0, "WT": 74}])

    case = parse_case(document)

    (change,) = case.record.covariate_changes
    assert change.time_h == 48.0 and dict(change.values) == {"DIAL": 0.0, "WT": 74.0}


def test_a_case_accepts_a_change_of_a_time_varying_covariate() -> None:
    case = parse_case(case_document(covariate_changes=[{"time_h": 12, "CRCL": 60}]))

    assert dict(case.record.covariate_changes[0].values) == {"CRCL": 60.0}


def test_a_case_refuses_a_bolus_with_an_infusion_duration() -> None:
    document = case_document(doses=[{"time_h": 0, "amount_mg": 1000, "route": "iv_bolus", "duration_h": 2}])

    with pytest.raises(InvalidInputError) as error:
        parse_case(document)

    assert error.value.path == "doses[0].duration_h"
    assert "use route iv_infusion" in error.value.message


def test_a_case_refuses_a_bolus_with_an_infusion_rate_naming_the_rate() -> None:
    document = case_document(
        doses=[{"time_h": 0, "amount_mg": 1000, "route": "iv_bolus", "rate_mg_per_h": 500}]
    )

    with pytest.raises(InvalidInputError) as error:
        parse_case(document)

    assert error.value.path == "doses[0].rate_mg_per_h"


def test_a_case_accepts_a_bolus_without_a_duration() -> None:
    case = parse_case(case_document(doses=[{"time_h": 0, "amount_mg": 500, "route": "iv_bolus"}]))

    (dose,) = case.record.doses
    assert dose.route == "iv_bolus" and dose.infusion_duration_h == 0.0


# -- regimen constraints -----------------------------------------------------------------------------------

CONSTRAINTS = {"interval_options_h": (12.0, 24.0), "dose_step_mg": 250.0, "max_dose_mg": 2000.0}


def test_regimen_constraints_refuse_a_bolus_with_an_infusion_duration() -> None:
    with pytest.raises(InvalidInputError) as error:
        RegimenConstraints(route="iv_bolus", infusion_duration_h=1, **CONSTRAINTS)

    assert error.value.path == "constraints.infusion_duration_h"
    assert "route iv_bolus is not an infusion" in error.value.message


def test_regimen_constraints_refuse_an_oral_route_with_an_infusion_rate_naming_the_rate() -> None:
    with pytest.raises(InvalidInputError) as error:
        RegimenConstraints(route="oral", max_infusion_rate_mg_per_h=1000, **CONSTRAINTS)

    assert error.value.path == "constraints.max_infusion_rate_mg_per_h"


def test_regimen_constraints_accept_a_bolus_without_a_duration_and_an_infusion_with_one() -> None:
    bolus = RegimenConstraints(route="iv_bolus", **CONSTRAINTS)
    infusion = RegimenConstraints(route="iv_infusion", infusion_duration_h=1.0, **CONSTRAINTS)

    assert not bolus.is_infusion
    assert infusion.is_infusion and infusion.infusion_duration_h == 1.0
