"""The model files' expression language: arithmetic, logic and functions, element-wise over arrays."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from mipd_engine.errors import ModelError
from mipd_engine.events import Dose, PatientRecord
from mipd_engine.expressions import check_expression, compile_block
from mipd_engine.model import parse_model
from mipd_engine.simulation import simulate

from .conftest import make_model

X = np.array([-1.0, 0.5, 2.0, 3.0, 10.0])


def evaluate(expression, **inputs):
    """Value of one expression given named inputs (scalars or arrays)."""
    block = compile_block({"OUT": expression}, inputs=tuple(inputs), paths={"OUT": "parameters.OUT"})
    return block(inputs)["OUT"]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("2 + 3 * 4", 14.0),
        ("(2 + 3) * 4", 20.0),
        ("10 - 4 - 3", 3.0),
        ("2 * 3 / 4", 1.5),
        ("7 / 2", 3.5),
        ("2 ** 3 ** 2", 512.0),  # right-associative
        ("-2 ** 2", -4.0),  # unary minus binds looser than **
        ("(-2) ** 2", 4.0),
        ("2 ** -1", 0.5),
        ("+3 - -2", 5.0),
        ("1e-3 * 2.5e3", 2.5),
        ("16 ** 0.5 / 2 * 3", 6.0),  # ** before / and *, then left to right
    ],
)
def test_it_follows_the_usual_precedence_and_associativity(expression: str, expected: float) -> None:
    np.testing.assert_allclose(evaluate(expression), expected, rtol=1e-15)


def test_it_computes_element_wise_over_arrays() -> None:
    result = evaluate("X ** 2 + 2 * X - Y / 4", X=X, Y=8.0)

    np.testing.assert_allclose(result, X**2 + 2 * X - 2.0, rtol=1e-15)
    assert result.shape == X.shape
    assert result.dtype == np.float64


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("X > 2", X > 2),
        ("X >= 2", X >= 2),
        ("X < 2", X < 2),
        ("X <= 2", X <= 2),
        ("X == 2", X == 2),
        ("X != 2", X != 2),
        ("0 < X <= 3", (X > 0) & (X <= 3)),  # chained
        ("-2 < X < 1 < 2", (X > -2) & (X < 1)),
        ("X > 0 and X < 3", (X > 0) & (X < 3)),
        ("X < 0 or X > 5", (X < 0) | (X > 5)),
        ("not X > 2", ~(X > 2)),
        ("X > -5 and X < 5 and X != 0.5", (X > -5) & (X < 5) & (X != 0.5)),
        ("not (X < 0 or X > 5)", ~((X < 0) | (X > 5))),
        ("X > 2 or X < 0 and X > -0.5", (X > 2) | ((X < 0) & (X > -0.5))),  # and binds tighter than or
    ],
)
def test_it_evaluates_comparisons_and_logic_element_wise_as_zero_or_one(expression: str, expected) -> None:
    result = evaluate(expression, X=X)

    np.testing.assert_array_equal(result, expected.astype(float))
    assert result.dtype == np.float64


def test_it_selects_element_wise_with_a_conditional_expression() -> None:
    result = evaluate("2 * X if X > 2 else -X", X=X)

    np.testing.assert_allclose(result, np.where(X > 2, 2 * X, -X), rtol=0, atol=0)


def test_it_nests_conditional_expressions() -> None:
    result = evaluate("1 if X < 0 else (2 if X < 2.5 else 3)", X=X)

    np.testing.assert_array_equal(result, [1.0, 2.0, 2.0, 3.0, 3.0])


def test_it_takes_a_scalar_condition_with_array_branches() -> None:
    result = evaluate("X * 0.5 if DIAL else X", X=X, DIAL=1.0)

    np.testing.assert_allclose(result, X * 0.5, rtol=0, atol=0)


def test_it_keeps_the_untaken_branch_from_raising_or_warning() -> None:
    """Both branches are computed element-wise; the invalid ones (log of a negative) must stay silent."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = evaluate("log(X) if X > 0 else 0", X=X)
        inverse = evaluate("1 / X", X=np.array([0.0, 2.0]))

    np.testing.assert_allclose(result, np.where(X > 0, np.log(np.abs(X)), 0.0), rtol=1e-15)
    np.testing.assert_array_equal(inverse, [np.inf, 0.5])


@pytest.mark.parametrize(
    ("expression", "function"),
    [
        ("exp(X)", np.exp),
        ("log(abs(X))", lambda x: np.log(np.abs(x))),
        ("sqrt(abs(X))", lambda x: np.sqrt(np.abs(x))),
        ("abs(X)", np.abs),
        ("min(X, 2)", lambda x: np.minimum(x, 2)),
        ("max(X, 2)", lambda x: np.maximum(x, 2)),
        (
            "min(X, 3, 2 * X, 1.5)",
            lambda x: np.minimum.reduce([x, np.full_like(x, 3), 2 * x, np.full_like(x, 1.5)]),
        ),
        ("max(X, -X, 0.75)", lambda x: np.maximum(np.maximum(x, -x), 0.75)),
        ("max(min(X, 3), 0)", lambda x: np.clip(x, 0, 3)),
    ],
)
def test_it_provides_the_language_functions_element_wise(expression: str, function) -> None:
    np.testing.assert_allclose(evaluate(expression, X=X), function(X), rtol=1e-15)


def test_it_returns_nan_for_invalid_arguments_rather_than_raising() -> None:
    result = evaluate("sqrt(X)", X=np.array([-4.0, 4.0]))

    assert math.isnan(result[0])
    np.testing.assert_allclose(result[1], 2.0, rtol=1e-15)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("True", 1.0),
        ("False", 0.0),
        ("True + True", 2.0),
        ("0.75 ** DIAL", 0.75),
        ("3 if DIAL == 1 else 4", 3.0),
    ],
)
def test_it_treats_booleans_as_zero_and_one(expression: str, expected: float) -> None:
    np.testing.assert_allclose(evaluate(expression, DIAL=1.0), expected, rtol=1e-15)


def test_it_lets_later_names_use_earlier_ones_in_order() -> None:
    block = compile_block(
        {"A": "X * 2", "B": "A + 1", "C": "B * A if A > 0 else B", "D": 5},
        inputs=("X",),
        paths={},
    )

    values = block({"X": X})

    a = X * 2
    np.testing.assert_allclose(values["B"], a + 1, rtol=1e-15)
    np.testing.assert_allclose(values["C"], np.where(a > 0, (a + 1) * a, a + 1), rtol=1e-15)
    np.testing.assert_allclose(values["D"], 5.0, rtol=0)
    assert block.outputs == ("A", "B", "C", "D")
    assert block.used_inputs == frozenset({"X"})


def test_it_refuses_a_name_defined_later_in_the_block() -> None:
    with pytest.raises(ModelError) as error:
        compile_block({"A": "B + 1", "B": "X"}, inputs=("X",), paths={"A": "parameters.A"})

    assert str(error.value) == "parameters.A: unknown name 'B'"


def test_it_reports_only_the_inputs_an_expression_uses() -> None:
    block = compile_block({"CL": "TVCL * (CRCL / 100)"}, inputs=("TVCL", "CRCL", "WT"), paths={})

    assert block.used_inputs == frozenset({"TVCL", "CRCL"})


def test_it_accepts_json_numbers_as_constant_expressions() -> None:
    _, used, constants = check_expression(4.5, path="parameters.Q", known=())

    assert used == frozenset()
    assert constants == [4.5]
    np.testing.assert_allclose(evaluate(4.5), 4.5, rtol=0)
    np.testing.assert_allclose(evaluate(3), 3.0, rtol=0)


@pytest.mark.parametrize("value", [True, None, [1, 2], {"a": 1}])
def test_it_refuses_json_values_that_are_not_expressions(value) -> None:
    with pytest.raises(ModelError, match=r"^parameters\.Q: expected an expression \(text or number\)"):
        check_expression(value, path="parameters.Q", known=())


def test_it_broadcasts_scalar_thetas_against_a_batch_of_etas() -> None:
    block = compile_block(
        {"CL": "TVCL * (WT / 70) ** 0.75 * exp(ETA_CL)", "K": "CL / TVV"},
        inputs=("TVCL", "TVV", "WT", "ETA_CL"),
        paths={},
    )
    eta = np.array([-0.2, 0.0, 0.3])

    values = block({"TVCL": 4.0, "TVV": 50.0, "WT": np.asarray(90.0), "ETA_CL": eta})

    expected = 4.0 * (90 / 70) ** 0.75 * np.exp(eta)
    np.testing.assert_allclose(values["CL"], expected, rtol=1e-15)
    np.testing.assert_allclose(values["K"], expected / 50.0, rtol=1e-15)


def test_it_applies_conditional_covariate_effects_per_patient_in_a_simulation() -> None:
    """End to end: a conditional parameter, a batch of etas, and the predicted concentrations."""
    document = make_model(
        covariates={"WT": {"unit": "kg", "min": 30, "max": 180}, "DIAL": {"type": "boolean"}},
        parameters={
            "CL": "TVCL * (0.5 if DIAL else 1) * exp(ETA_CL)",
            "V": "TVV * max(WT, 50) / 70 * exp(ETA_V)",
        },
    )
    model = parse_model(document)
    eta = np.array([[0.0, 0.0], [0.2, -0.1]])
    times = np.array([2.0, 12.0])
    record = PatientRecord(covariates={"WT": 40, "DIAL": 1}, doses=(Dose(0.0, 100.0, route="iv_bolus"),))

    conc = simulate(model, record, times, eta=eta).outputs["conc"]

    for row, (eta_cl, eta_v) in enumerate(eta):
        cl = 4.0 * 0.5 * math.exp(eta_cl)
        v = 50.0 * 50 / 70 * math.exp(eta_v)
        np.testing.assert_allclose(conc[row], 100 / v * np.exp(-cl / v * times), rtol=1e-12)
