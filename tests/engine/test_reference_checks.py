"""Reference checks: parsing with field paths, pass/fail against independently computed values, errors.

The expected values are written out here from textbook formulas for the one-compartment test model of
conftest (CL = 4 L/h × (WT/70)^0.75, V = 50 L × WT/70), never taken from the engine's output.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from mipd_engine.errors import InvalidInputError
from mipd_engine.model import parse_model
from mipd_engine.reference_checks import (
    ReferenceCheck,
    parse_reference_checks,
    run_reference_checks,
)

from .conftest import make_model

MODEL = parse_model(make_model())
CL_70, V_70 = 4.0, 50.0


def check_doc(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "description": "concentration 5 h after a 100 mg bolus",
        "source": "closed-form 1-cmt bolus solution",
        "covariates": {"WT": 70},
        "doses": [{"time_h": 0, "amount_mg": 100, "route": "iv_bolus"}],
        "quantity": "concentration",
        "time_h": 5,
        "expected": 100 / V_70 * math.exp(-CL_70 / V_70 * 5),
        "unit": "mg/L",
        "rel_tol": 1e-6,
    }
    for key, value in overrides.items():
        if value is None:
            document.pop(key, None)
        else:
            document[key] = value
    return document


def parse_error(document: Any) -> str:
    with pytest.raises(InvalidInputError) as error:
        parse_reference_checks(document)
    return str(error.value)


def test_it_passes_a_concentration_computed_in_closed_form() -> None:
    report = run_reference_checks(MODEL, parse_reference_checks([check_doc()]))
    assert report.success, report.message
    assert report.results[0].observed == pytest.approx(2 * math.exp(-0.4), rel=1e-9)
    assert report.results[0].message.startswith("conc at 5 h 1.3406 mg/L, expected 1.3406 (±0.0001 %)")


def test_it_passes_a_parameter_and_an_auc_of_a_heavier_patient() -> None:
    wt = 100.0
    cl = CL_70 * (wt / 70) ** 0.75
    k = cl / (V_70 * wt / 70)
    dose, tinf = 1000.0, 1.0
    # AUC over [0, 12] of a 1 h infusion, integrated in closed form.
    rate = dose / tinf
    auc_during = rate / cl * (tinf - (1 - math.exp(-k * tinf)) / k)
    c_end = rate / cl * (1 - math.exp(-k * tinf))
    auc_after = c_end / k * (1 - math.exp(-k * (12 - tinf)))
    documents = [
        {
            "description": "CL at 100 kg",
            "source": "allometric formula",
            "covariates": {"WT": wt},
            "quantity": "parameter",
            "parameter": "CL",
            "expected": cl,
            "unit": "L/h",
            "rel_tol": 1e-9,
        },
        check_doc(
            quantity="auc",
            time_h=None,
            window_h=[0, 12],
            covariates={"WT": wt},
            doses=[{"time_h": 0, "amount_mg": dose, "route": "iv_infusion", "duration_h": tinf}],
            expected=auc_during + auc_after,
            unit="mg·h/L",
            rel_tol=1e-8,
        ),
    ]
    report = run_reference_checks(MODEL, parse_reference_checks(documents))
    assert report.success, report.message
    assert "all 2 reference checks passed" in report.message


def test_a_wrong_expected_value_fails() -> None:
    wrong = check_doc(expected=2 * math.exp(-0.4) * 1.02, rel_tol=0.01)
    report = run_reference_checks(MODEL, parse_reference_checks([check_doc(), wrong]))
    assert not report.success
    assert [r.passed for r in report.results] == [True, False]
    assert "off by" in report.results[1].message
    assert "1 of 2 reference checks failed" in report.message


def test_a_value_just_inside_the_tolerance_passes() -> None:
    report = run_reference_checks(
        MODEL, parse_reference_checks([check_doc(expected=2 * math.exp(-0.4) * 1.009, rel_tol=0.01)])
    )
    assert report.success, report.message


def test_no_checks_is_not_a_success() -> None:
    report = run_reference_checks(MODEL, ())
    assert not report.success
    assert "no reference checks" in report.message


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"checks": []}, "reference_checks: expected a list"),
        ([check_doc(), check_doc(expected="2.0")], "reference_checks[1].expected: must be a number"),
        ([check_doc(expected=None)], "reference_checks[0].expected: required field is missing"),
        ([check_doc(quantity="cmax")], "reference_checks[0].quantity: must be one of"),
        ([check_doc(time_h=None)], "reference_checks[0].time_h: a concentration check needs time_h"),
        ([check_doc(rel_tol=0)], "reference_checks[0].rel_tol: must lie in (0, 0.5]"),
        ([check_doc(expected=0)], "reference_checks[0].expected: must not be 0"),
        ([check_doc(covariates={"WT": "heavy"})], "reference_checks[0].covariates.WT: must be a number"),
        ([check_doc(doses=[{"time_h": 0, "amount_mg": -5, "route": "iv_bolus"}])], "doses[0].amount_mg"),
        ([check_doc(doses=[{"time_h": 0, "amount_mg": 5, "route": "iv_bolus", "rate": 1}])], "unknown field"),
        ([check_doc(doses=[])], "reference_checks[0].doses: a concentration check needs at least one dose"),
        ([check_doc(quantity="auc", time_h=None)], "reference_checks[0].window_h: an auc check needs"),
        ([check_doc(quantity="auc", time_h=None, window_h=[12, 0])], "reference_checks[0].window_h: need"),
        ([check_doc(quantity="parameter")], "reference_checks[0].parameter: a parameter check names"),
        ([check_doc(colour="blue")], "reference_checks[0]: unknown field(s) colour"),
        ([check_doc(source="")], "reference_checks[0].source: must be a non-empty string"),
    ],
)
def test_it_rejects_malformed_checks_naming_the_field(document: Any, message: str) -> None:
    assert message in parse_error(document)


def test_a_check_that_raises_is_a_failed_result_not_an_exception() -> None:
    checks = parse_reference_checks(
        [
            check_doc(covariates={"CRCL": 80}),  # the model has no CRCL (and WT is missing)
            check_doc(covariates={"WT": -70}),  # CL = 4 × (-1)**0.75 is not a number
            check_doc(output="unbound"),
            check_doc(unit="ug/L"),  # unit of the expected value differs from the model's
            check_doc(doses=[{"time_h": 0, "amount_mg": 100, "route": "oral"}]),  # no such route
        ]
    )
    report = run_reference_checks(MODEL, checks)
    assert not report.success
    assert [r.passed for r in report.results] == [False] * 5
    assert all(r.observed is None for r in report.results)
    messages = [r.message for r in report.results]
    assert "no covariate 'CRCL'" in messages[0]
    assert "parameters.CL is not finite" in messages[1]
    assert "unknown output 'unbound'" in messages[2]
    assert "model predicts mg/L" in messages[3]
    assert "could not be computed" in messages[4]


def test_an_unknown_parameter_fails_with_the_model_parameters() -> None:
    check = ReferenceCheck(
        description="Q",
        source="none",
        covariates={"WT": 70},
        doses=(),
        quantity="parameter",
        name="Q",
        time_h=None,
        window_h=None,
        expected=1.0,
        unit="L/h",
        rel_tol=0.01,
    )
    report = run_reference_checks(MODEL, [check])
    assert not report.success
    assert "unknown parameter 'Q' (model has CL, V)" in report.results[0].message


def test_a_covariate_outside_the_model_range_is_reported_with_the_result() -> None:
    wt = 200.0
    cl = CL_70 * (wt / 70) ** 0.75
    document = {
        "description": "CL at 200 kg",
        "source": "allometric formula",
        "covariates": {"WT": wt},
        "quantity": "parameter",
        "parameter": "CL",
        "expected": cl,
        "unit": "L/h",
        "rel_tol": 1e-9,
    }
    report = run_reference_checks(MODEL, parse_reference_checks([document]))
    assert report.success
    assert "outside the model's range" in report.results[0].message
