"""Postmenstrual age (PMA), the maturation clock of neonatal clearance models: the equation and the
``postmenstrual_age`` covariate source, which reads the gestational age at birth from the record and adds the
time since birth, advancing with the clock during a course.

Expected values are worked by hand: PMA = gestational age [weeks] + postnatal age [days] / 7 (AAP 2004).
"""

from __future__ import annotations

from typing import Any

import pytest

from mipd_engine.clinical_equations import postmenstrual_age_weeks
from mipd_engine.covariate_sources import (
    AGE_STEP_H,
    DAYS_PER_YEAR,
    PatientFacts,
    ResolvedCovariates,
    parse_covariate_sources,
    required_kinds,
    resolve_covariates,
)
from mipd_engine.errors import InvalidInputError
from mipd_engine.model import parse_model

from .conftest import make_model

SOURCES = {"WT": {"from": "weight"}, "PMA": {"from": "postmenstrual_age"}}
MODEL = parse_model(
    make_model(
        covariates={
            "WT": {"unit": "kg", "min": 0.4, "max": 6, "reference": 1},
            "PMA": {"unit": "weeks", "min": 23, "max": 65, "reference": 32},
        },
        parameters={"CL": "TVCL * WT**0.75 * PMA**3.5 / (PMA**3.5 + 46**3.5) * exp(ETA_CL)", "V": "TVV * WT"},
    )
)


def resolve(*, ga_weeks: float | None, age_days: float | None, now_h: float | None) -> ResolvedCovariates:
    measurements: dict[str, Any] = {"weight": [(0.0, 1.2)]}
    if ga_weeks is not None:
        measurements["gestational_age_at_birth"] = [(-200.0, ga_weeks)]
    age_years = None if age_days is None else age_days / DAYS_PER_YEAR
    facts = PatientFacts(age_years_at_origin=age_years, sex="female", measurements=measurements, now_h=now_h)
    return resolve_covariates(parse_covariate_sources(SOURCES, MODEL), MODEL, facts)


def test_pma_is_gestational_age_plus_postnatal_days_over_seven() -> None:
    result = postmenstrual_age_weeks(gestational_age_at_birth_weeks=28.0, postnatal_age_days=17.5)
    assert result.value == pytest.approx(30.5, rel=1e-12)
    assert result.unit == "weeks"
    assert "Pediatrics 2004;114:1362" in result.source


@pytest.mark.parametrize(
    ("ga_weeks", "days", "path"),
    [
        (19.5, 3.0, "gestational_age_at_birth_weeks"),
        (46.0, 3.0, "gestational_age_at_birth_weeks"),
        (30.0, -1.0, "postnatal_age_days"),
    ],
)
def test_an_impossible_gestational_or_postnatal_age_is_refused(
    ga_weeks: float, days: float, path: str
) -> None:
    with pytest.raises(InvalidInputError) as error:
        postmenstrual_age_weeks(gestational_age_at_birth_weeks=ga_weeks, postnatal_age_days=days)
    assert error.value.path == path


def test_the_source_adds_the_age_since_birth_and_advances_every_day_until_now() -> None:
    result = resolve(ga_weeks=27.0, age_days=10.0, now_h=60.0)
    assert result.success, result.message
    assert result.initial["PMA"] == pytest.approx(27.0 + 10.0 / 7.0, rel=1e-12)
    steps = [(time_h, values["PMA"]) for time_h, values in result.changes if "PMA" in values]
    assert [time_h for time_h, _ in steps] == [AGE_STEP_H, 2 * AGE_STEP_H]  # 24 h and 48 h, not past 60 h
    for time_h, value in steps:
        assert value == pytest.approx(27.0 + (10.0 + time_h / 24.0) / 7.0, rel=1e-12)
    (derivation,) = [d for d in result.derivations if d.name == "PMA"]
    assert derivation.unit == "weeks" and "gestational age at birth" in derivation.formula


def test_without_a_time_limit_the_pma_holds_its_value_at_the_first_dose() -> None:
    result = resolve(ga_weeks=33.0, age_days=2.0, now_h=None)
    assert result.success
    assert [values for _, values in result.changes if "PMA" in values] == []


def test_a_missing_gestational_age_or_birth_date_is_asked_for() -> None:
    no_ga = resolve(ga_weeks=None, age_days=5.0, now_h=24.0)
    assert not no_ga.success
    assert "PMA needs a gestational age at birth measurement (in weeks)" in no_ga.missing
    no_birth_date = resolve(ga_weeks=30.0, age_days=None, now_h=24.0)
    assert "PMA needs the birth date" in no_birth_date.missing


def test_the_entry_form_asks_for_the_gestational_age_in_weeks() -> None:
    assert required_kinds(parse_covariate_sources(SOURCES, MODEL)) == {
        "weight": "kg",
        "gestational_age_at_birth": "weeks",
    }
