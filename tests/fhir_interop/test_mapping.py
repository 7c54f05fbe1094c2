"""Every row of every mapping table, read through the import's pure mapping (no database)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

import mipd_units
from fhir_interop import mapping, plans

WHEN = "2026-11-30T08:00:00+00:00"


def observation(code: str, value: float, unit: str, **extra) -> dict:
    return {
        "resourceType": "Observation",
        "id": "o",
        "status": "final",
        "effectiveDateTime": WHEN,
        "code": {"coding": [{"system": mapping.LOINC, "code": code}]},
        "valueQuantity": {"value": value, "system": mapping.UCUM, "code": unit, **extra},
    }


@pytest.mark.parametrize(
    ("code", "unit", "value", "kind", "expected_unit"),
    [
        ("29463-7", "kg", 70, "weight", "kg"),
        ("29463-7", "g", 3500, "weight", "g"),
        ("29463-7", "[lb_av]", 154, "weight", "lb"),
        ("3141-9", "kg", 70, "weight", "kg"),
        ("8302-2", "cm", 170, "height", "cm"),
        ("8302-2", "m", 1.7, "height", "m"),
        ("8302-2", "[in_i]", 67, "height", "in"),
        ("2160-0", "mg/dL", 1.1, "serum_creatinine", "mg/dL"),
        ("14682-9", "umol/L", 97, "serum_creatinine", "umol/L"),
        ("1751-7", "g/dL", 3.5, "albumin", "g/dL"),
        ("1751-7", "g/L", 35, "albumin", "g/L"),
    ],
)
def test_every_covariate_code_and_unit(code, unit, value, kind, expected_unit) -> None:
    plan = plans.observation_plan(observation(code, value, unit))
    assert plan == plans.MeasurementPlan(kind, float(value), expected_unit, dt.datetime.fromisoformat(WHEN))


def test_the_covariate_table_is_covered() -> None:
    assert set(mapping.COVARIATES) == {"29463-7", "3141-9", "8302-2", "2160-0", "14682-9", "1751-7"}
    for code, covariate in mapping.COVARIATES.items():
        for unit in covariate.units:
            assert mipd_units.is_known_unit(mapping.UCUM_UNITS[unit]), (code, unit)


@pytest.mark.parametrize(
    ("code", "drug", "timing"),
    [
        ("4092-3", "vancomycin", "trough"),
        ("4090-7", "vancomycin", "peak"),
        ("20578-1", "vancomycin", "random"),
        ("11253-2", "tacrolimus", "random"),
    ],
)
@pytest.mark.parametrize("unit", ["mg/L", "ug/mL", "ng/mL", "umol/L", "nmol/L"])
def test_every_level_code(code, drug, timing, unit) -> None:
    plan = plans.observation_plan(observation(code, 12.5, unit))
    assert (plan.drug, plan.value, plan.unit, plan.below_lloq) == (
        drug,
        12.5,
        mapping.UCUM_UNITS[unit],
        False,
    )
    assert plan.assay == f"LOINC {code} ({timing})"
    below = plans.observation_plan(observation(code, 2.0, unit, comparator="<"))
    assert (below.value, below.lloq, below.below_lloq) == (None, 2.0, True)


def test_every_ucum_code_is_a_known_unit() -> None:
    for code, spelling in mapping.UCUM_UNITS.items():
        assert mipd_units.is_known_unit(spelling), code


@pytest.mark.parametrize(
    ("code", "unit", "reason"),
    [
        ("29463-7", "kg/m2", "the UCUM unit 'kg/m2' is not one the import maps"),
        ("4092-3", "mg", "'mg' is not a concentration"),
        ("718-7", "g/dL", "Observation code 718-7 is not one the import maps"),
    ],
)
def test_unknown_codes_and_units_are_reported(code, unit, reason) -> None:
    with pytest.raises(plans.Unmappable, match=re.escape(reason)):
        plans.observation_plan(observation(code, 1.0, unit))


@pytest.mark.parametrize(("hgnc", "gene"), sorted(mapping.GENES.items()))
def test_every_gene(hgnc, gene) -> None:
    raw = {
        "resourceType": "Observation",
        "id": "g",
        "status": "final",
        "issued": "2026-01-15T09:00:00Z",
        "code": {"coding": [{"system": mapping.LOINC, "code": mapping.GENOTYPE_CODE}]},
        "valueCodeableConcept": {"coding": [{"display": f"{gene}*1/*2"}]},
        "component": [
            {
                "code": {"coding": [{"system": mapping.LOINC, "code": mapping.GENE_STUDIED_CODE}]},
                "valueCodeableConcept": {"coding": [{"system": mapping.HGNC, "code": hgnc}]},
            }
        ],
    }
    plan = plans.observation_plan(raw)
    assert (plan.gene, plan.diplotype, plan.reported_on) == (gene, "*1/*2", dt.date(2026, 1, 15))


def administration(system: str, code: str, route: str, **dosage) -> dict:
    return {
        "resourceType": "MedicationAdministration",
        "id": "a",
        "status": "completed",
        "medicationCodeableConcept": {"coding": [{"system": system, "code": code}]},
        "effectivePeriod": {"start": "2026-11-30T08:00:00Z", "end": "2026-11-30T09:30:00Z"},
        "dosage": {
            "route": {"coding": [{"system": mapping.SNOMED, "code": route}]},
            "dose": {"value": 1.5, "system": mapping.UCUM, "code": "g"},
            **dosage,
        },
    }


@pytest.mark.parametrize(
    ("system", "table"), [(mapping.RXNORM, mapping.RXNORM_DRUGS), (mapping.ATC, mapping.ATC_DRUGS)]
)
def test_every_medication_code(system, table) -> None:
    for code, drug in table.items():
        plan = plans.administration_plan(administration(system, code, "47625008"))
        assert (plan.drug, plan.amount_mg, plan.route) == (drug, 1500.0, "iv_infusion")
        assert plan.infusion_duration_h == pytest.approx(1.5)


@pytest.mark.parametrize(("snomed", "route"), sorted(mapping.ROUTES.items()))
def test_every_route(snomed, route) -> None:
    assert plans.administration_plan(administration(mapping.RXNORM, "11124", snomed)).route == route


def test_a_volume_rate_without_an_end_is_reported() -> None:
    raw = administration(
        mapping.RXNORM,
        "11124",
        "47625008",
        rateQuantity={"value": 250, "system": mapping.UCUM, "code": "mL/h"},
    )
    del raw["effectivePeriod"]
    raw["effectiveDateTime"] = WHEN
    with pytest.raises(plans.Unmappable, match="needs the bag's concentration"):
        plans.administration_plan(raw)
    raw["dosage"]["rateQuantity"] = {"value": 1000, "system": mapping.UCUM, "code": "mg/h"}
    assert plans.administration_plan(raw).infusion_duration_h == pytest.approx(1.5)


def test_an_unknown_medication_and_route_are_reported() -> None:
    with pytest.raises(plans.Unmappable, match="not a drug the application doses"):
        plans.administration_plan(administration(mapping.RXNORM, "161", "47625008"))
    with pytest.raises(plans.Unmappable, match="route 12345 is not one the import maps"):
        plans.administration_plan(administration(mapping.RXNORM, "11124", "12345"))
