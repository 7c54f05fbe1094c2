"""The facts a model's domain is checked against, read from the record: postmenstrual age among them.

Expected values are worked by hand: PMA = gestational age at birth [weeks] + postnatal age [days] / 7.
"""

from __future__ import annotations

import pytest

from dosing.eligibility import domain_facts
from mipd_engine.covariate_sources import PatientFacts
from mipd_engine.domain import check_domain, parse_domain


def neonate(**measurements: list[tuple[float, float]]) -> PatientFacts:
    return PatientFacts(
        age_years_at_origin=14 / 365.25, sex="male", measurements={"weight": [(0.0, 1.2)], **measurements}
    )


def test_the_postmenstrual_age_comes_from_the_gestational_age_and_the_days_since_birth() -> None:
    facts = domain_facts(neonate(gestational_age_at_birth=[(-300.0, 30.0)]), None, now_h=48.0)
    (pma,) = facts.values["postmenstrual_age_weeks"]
    assert pma == pytest.approx(30.0 + 16.0 / 7.0, rel=1e-12)  # 14 days at the first dose, 2 days later


def test_without_a_gestational_age_a_pma_bound_cannot_be_checked_and_stops() -> None:
    facts = domain_facts(neonate(), None, now_h=0.0)
    with_ga = domain_facts(neonate(gestational_age_at_birth=[(-300.0, 30.0)]), None, now_h=0.0)
    assert "postmenstrual_age_weeks" not in facts.values
    domain = parse_domain(
        {"source": "test fixture: a neonatal model", "hard": {"postmenstrual_age_weeks": [23, 65]}},
        covariates={},
    )
    check = check_domain(domain, facts)
    assert not check.eligible
    assert any(finding.missing for finding in check.hard)
    assert check_domain(domain, with_ga).eligible  # 32 weeks
