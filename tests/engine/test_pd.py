"""Emax models: closed forms, the inverse, and PD-derived individual targets from a model's pd block."""

from __future__ import annotations

import numpy as np
import pytest

from mipd_engine.errors import InvalidInputError
from mipd_engine.model import parse_model
from mipd_engine.pd import (
    concentration_for_effect,
    concentration_for_fraction_of_max,
    emax_effect,
    individual_target_concentration,
    pd_parameters,
)

from .conftest import make_model


def _pd_model(pd):
    return parse_model(
        make_model(
            covariates={
                "WT": {"unit": "kg", "min": 30, "max": 180, "reference": 70},
                "RES": {"type": "boolean"},
            },
            thetas={"TVCL": 4.0, "TVV": 50.0, "TVEC50": 10.0},
            pd=pd,
        )
    )


SIGMOID = {"model": "sigmoid_emax", "E0": "5", "EMAX": "100", "EC50": "TVEC50 * (1 + RES)", "HILL": "2"}


def test_effect_at_ec50_is_half_the_maximum():
    assert emax_effect(10.0, 5.0, 100.0, 10.0, 3.0) == pytest.approx(55.0, rel=1e-15)
    assert emax_effect(0.0, 5.0, 100.0, 10.0, 3.0) == pytest.approx(5.0, rel=1e-15)
    # Plain Emax (H = 1) at C = 3·EC50: 3/4 of the maximal effect.
    assert emax_effect(30.0, 0.0, 80.0, 10.0) == pytest.approx(60.0, rel=1e-15)


def test_effect_matches_the_sigmoid_formula_over_a_grid():
    c = np.linspace(0.0, 200.0, 41)
    e0, emax, ec50, hill = 2.0, 50.0, 17.0, 1.7
    expected = e0 + emax * c**hill / (ec50**hill + c**hill)
    np.testing.assert_allclose(emax_effect(c, e0, emax, ec50, hill), expected, rtol=1e-13)


@pytest.mark.parametrize(("emax", "hill"), [(100.0, 1.0), (100.0, 2.5), (-40.0, 1.0), (-40.0, 0.7)])
def test_inverse_round_trips(emax, hill):
    # Concentration → effect → concentration over five decades (the far tail loses digits to 1 − f: 1e-9).
    concentrations = np.geomspace(0.01, 1000.0, 25)
    effects = emax_effect(concentrations, 10.0, emax, 8.0, hill)
    back = concentration_for_effect(effects, 10.0, emax, 8.0, hill)
    np.testing.assert_allclose(back, concentrations, rtol=1e-9)
    # Effect → concentration → effect.
    effect = 30.0 if emax > 0 else -10.0
    concentration = concentration_for_effect(effect, 10.0, emax, 8.0, hill)
    assert float(emax_effect(concentration, 10.0, emax, 8.0, hill)) == pytest.approx(effect, rel=1e-12)


@pytest.mark.parametrize("effect", [5.0, 105.0, 150.0, 0.0])
def test_unreachable_effects_are_refused(effect):
    # E0 = 5 needs no drug; E0 + EMAX = 105 is only approached as C grows without bound.
    with pytest.raises(InvalidInputError) as error:
        concentration_for_effect(effect, 5.0, 100.0, 10.0, 2.0)
    assert error.value.path == "effect"
    assert "unreachable" in error.value.message


def test_inhibitory_effects_are_reachable_between_e0_and_e0_plus_emax():
    assert concentration_for_effect(60.0, 100.0, -80.0, 5.0) == pytest.approx(5.0 * 40.0 / 40.0, rel=1e-12)
    with pytest.raises(InvalidInputError):
        concentration_for_effect(10.0, 100.0, -80.0, 5.0)  # below E0 + EMAX = 20


def test_fraction_of_maximum_gives_ec_f():
    # EC80 with H = 1 is 4·EC50; with H = 2 it is 2·EC50.
    assert concentration_for_fraction_of_max(0.8, 10.0) == pytest.approx(40.0, rel=1e-12)
    assert concentration_for_fraction_of_max(0.8, 10.0, 2.0) == pytest.approx(20.0, rel=1e-12)
    with pytest.raises(InvalidInputError) as error:
        concentration_for_fraction_of_max(1.0, 10.0)
    assert error.value.path == "fraction"


@pytest.mark.parametrize(
    ("args", "path"),
    [
        ((50.0, 0.0, 100.0, 0.0, 1.0), "EC50"),
        ((50.0, 0.0, 100.0, 10.0, 0.0), "HILL"),
        ((50.0, 0.0, 0.0, 10.0), "EMAX"),
    ],
)
def test_invalid_pd_parameters_are_refused(args, path):
    with pytest.raises(InvalidInputError) as error:
        concentration_for_effect(*args)
    assert error.value.path == path


def test_a_less_sensitive_subgroup_needs_a_higher_target_concentration():
    model = _pd_model(SIGMOID)
    # Effect 85 = E0 + 0.8·EMAX; with H = 2, C = EC50·(0.8/0.2)^(1/2) = 2·EC50.
    sensitive = individual_target_concentration(model, {"WT": 70, "RES": 0}, effect=85.0)
    resistant = individual_target_concentration(model, {"WT": 70, "RES": 1}, effect=85.0)
    assert float(sensitive) == pytest.approx(20.0, rel=1e-12)
    assert float(resistant) == pytest.approx(40.0, rel=1e-12)
    assert float(resistant) > float(sensitive)
    ec90 = individual_target_concentration(model, {"WT": 70, "RES": 1}, fraction_of_max=0.9)
    assert float(ec90) == pytest.approx(20.0 * 3.0, rel=1e-12)


def test_pd_defaults_are_no_baseline_and_a_hill_coefficient_of_one():
    model = _pd_model({"model": "emax", "EMAX": "100", "EC50": "TVEC50"})
    parameters = pd_parameters(model, {"WT": 70, "RES": 0})
    assert (float(parameters.e0), float(parameters.hill)) == (0.0, 1.0)
    assert float(parameters.effect(10.0)) == pytest.approx(50.0, rel=1e-15)


def test_pd_parameters_vary_with_the_etas_they_use():
    model = parse_model(
        make_model(
            pd={"model": "emax", "EMAX": "100", "EC50": "10 * exp(ETA_V)"},
        )
    )
    parameters = pd_parameters(model, {"WT": 70}, np.array([[0.0, 0.0], [0.0, 0.5]]))
    np.testing.assert_allclose(parameters.ec50, [10.0, 10.0 * np.exp(0.5)], rtol=1e-14)


def test_a_model_without_a_pd_block_is_refused():
    with pytest.raises(InvalidInputError) as error:
        individual_target_concentration(parse_model(make_model()), {"WT": 70}, effect=50.0)
    assert error.value.path == "pd"


def test_an_effect_unreachable_for_this_patient_is_refused():
    model = _pd_model(SIGMOID)
    with pytest.raises(InvalidInputError) as error:
        individual_target_concentration(model, {"WT": 70, "RES": 1}, effect=120.0)
    assert error.value.path == "effect"
