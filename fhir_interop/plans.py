"""From one validated FHIR resource to what the application would record: pure functions, no database.

Each returns a plan (the arguments of a service call) or raises :class:`Unmappable` with the reason, so that
every resource that is not imported is reported with why.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import mipd_units
from fhir_interop import mapping


class Unmappable(ValueError):
    pass


@dataclass(frozen=True)
class MeasurementPlan:
    kind: str
    value: float
    unit: str
    measured_at: dt.datetime


@dataclass(frozen=True)
class LevelPlan:
    drug: str
    sampled_at: dt.datetime
    unit: str
    value: float | None
    lloq: float | None
    below_lloq: bool
    assay: str


@dataclass(frozen=True)
class GenotypePlan:
    gene: str
    diplotype: str
    lab: str
    reported_on: dt.date


@dataclass(frozen=True)
class DosePlan:
    drug: str
    given_at: dt.datetime
    amount_mg: float
    route: str
    infusion_duration_h: float | None


@dataclass(frozen=True)
class OrderPlan:
    drug: str
    status: str
    intent: str
    authored_on: dt.datetime | None
    text: str


Plan = MeasurementPlan | LevelPlan | GenotypePlan | DosePlan | OrderPlan


def parse_instant(value: Any, what: str) -> dt.datetime:
    """A FHIR dateTime with a time and an offset; a date alone is not precise enough for a dose or a level."""
    if not isinstance(value, str):
        raise Unmappable(f"{what} is missing")
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Unmappable(f"{what} '{value}' is not a date and time") from None
    if "T" not in value or moment.tzinfo is None:
        raise Unmappable(f"{what} '{value}' has no time or no time zone")
    return moment


def _codings(concept: Any) -> list[dict[str, Any]]:
    return [c for c in (concept or {}).get("coding", []) if isinstance(c, dict)]


def _code(concept: Any, system: str) -> list[str]:
    return [str(c.get("code")) for c in _codings(concept) if c.get("system") == system and c.get("code")]


def unit_of(quantity: dict[str, Any], what: str) -> str:
    """The mipd_units spelling of a Quantity's UCUM code; anything but a mapped UCUM code is refused."""
    code, system = quantity.get("code"), quantity.get("system")
    if system != mapping.UCUM or not code:
        raise Unmappable(
            f"{what} has no UCUM unit code (unit '{quantity.get('unit', '')}', system '{system}')"
        )
    if code not in mapping.UCUM_UNITS:
        raise Unmappable(f"{what}: the UCUM unit '{code}' is not one the import maps")
    return mapping.UCUM_UNITS[code]


def _number(quantity: Any, what: str) -> float:
    if not isinstance(quantity, dict) or not isinstance(quantity.get("value"), (int, float)):
        raise Unmappable(f"{what} has no numeric value")
    return float(quantity["value"])


_FINAL = {"final", "amended", "corrected"}


def observation_plan(raw: dict[str, Any]) -> Plan:
    status = raw.get("status")
    if status not in _FINAL:
        raise Unmappable(f"status '{status}': only final, amended or corrected results are imported")
    loinc = _code(raw.get("code"), mapping.LOINC)
    if mapping.GENOTYPE_CODE in loinc:
        return _genotype_plan(raw)
    when = parse_instant(raw.get("effectiveDateTime"), "effectiveDateTime")
    if "dataAbsentReason" in raw:
        reason = raw["dataAbsentReason"].get("text") or ",".join(
            c.get("code", "") for c in _codings(raw["dataAbsentReason"])
        )
        raise Unmappable(f"no value (dataAbsentReason: {reason})")
    for code in loinc:
        if code in mapping.COVARIATES:
            covariate = mapping.COVARIATES[code]
            quantity = raw.get("valueQuantity") or {}
            value = _number(quantity, f"LOINC {code}")
            if quantity.get("comparator"):
                raise Unmappable(
                    f"LOINC {code}: a value with comparator '{quantity['comparator']}' is not a number"
                )
            unit = unit_of(quantity, f"LOINC {code}")
            if quantity.get("code") not in covariate.units:
                raise Unmappable(
                    f"LOINC {code} ({covariate.kind}) is reported in {', '.join(covariate.units)}, "
                    f"not '{quantity.get('code')}': check the code and the unit in the source"
                )
            return MeasurementPlan(covariate.kind, value, unit, when)
        if code in mapping.LEVELS:
            level = mapping.LEVELS[code]
            quantity = raw.get("valueQuantity") or {}
            value = _number(quantity, f"LOINC {code}")
            unit = unit_of(quantity, f"LOINC {code}")
            if mipd_units.kind_of(unit) not in ("mass_concentration", "molar_concentration"):
                raise Unmappable(f"LOINC {code}: '{unit}' is not a concentration")
            comparator = quantity.get("comparator")
            assay = f"LOINC {code} ({level.timing})"
            if comparator in ("<", "<="):  # below the limit of quantification: the limit is the number given
                return LevelPlan(level.drug, when, unit, None, value, True, assay)
            if comparator:
                raise Unmappable(f"LOINC {code}: a result '{comparator} {value:g}' is not a number")
            return LevelPlan(level.drug, when, unit, value, None, False, assay)
    shown = ", ".join(loinc) or "no LOINC code"
    raise Unmappable(f"Observation code {shown} is not one the import maps (see docs/fhir.md)")


def _genotype_plan(raw: dict[str, Any]) -> GenotypePlan:
    gene = ""
    for component in raw.get("component", []):
        if mapping.GENE_STUDIED_CODE in _code(component.get("code"), mapping.LOINC):
            for hgnc in _code(component.get("valueCodeableConcept"), mapping.HGNC):
                gene = mapping.GENES.get(hgnc, "")
                if not gene:
                    raise Unmappable(f"gene {hgnc} has no guideline table in the application")
    if not gene:
        raise Unmappable("genotype observation without a gene-studied component (LOINC 48018-6, HGNC code)")
    value = raw.get("valueCodeableConcept") or {}
    text = next((c.get("display") for c in _codings(value) if c.get("display")), None) or value.get("text")
    if not text:
        raise Unmappable("genotype observation without the diplotype in valueCodeableConcept")
    diplotype = str(text).strip()
    if diplotype.upper().startswith(gene):
        diplotype = diplotype[len(gene) :].strip()
    issued = raw.get("issued") or raw.get("effectiveDateTime")
    if not isinstance(issued, str):
        raise Unmappable("genotype observation without issued or effectiveDateTime")
    try:
        reported_on = dt.date.fromisoformat(issued[:10])
    except ValueError:
        raise Unmappable(f"'{issued}' is not a date") from None
    performer = next((p.get("display") for p in raw.get("performer", []) if p.get("display")), "")
    return GenotypePlan(gene, diplotype, performer or "laboratory named in the FHIR source", reported_on)


def drug_of(raw: dict[str, Any]) -> str:
    concept = raw.get("medicationCodeableConcept")
    if not concept:
        raise Unmappable("the medication is a reference, not a code: give medicationCodeableConcept")
    for code in _code(concept, mapping.RXNORM):
        if code in mapping.RXNORM_DRUGS:
            return mapping.RXNORM_DRUGS[code]
    for code in _code(concept, mapping.ATC):
        if code in mapping.ATC_DRUGS:
            return mapping.ATC_DRUGS[code]
    shown = ", ".join(f"{c.get('system')}|{c.get('code')}" for c in _codings(concept)) or concept.get(
        "text", ""
    )
    raise Unmappable(f"medication {shown} is not a drug the application doses")


def administration_plan(raw: dict[str, Any]) -> DosePlan:
    status = raw.get("status")
    if status != "completed":
        raise Unmappable(f"status '{status}': only completed administrations are doses given")
    drug = drug_of(raw)
    dosage = raw.get("dosage") or {}
    dose = dosage.get("dose")
    amount = _number(dose, "dosage.dose")
    unit = unit_of(dose, "dosage.dose")
    if mipd_units.kind_of(unit) != "mass":
        raise Unmappable(f"dosage.dose in '{unit}': give the dose as a mass (mg)")
    amount_mg = mipd_units.convert(amount, unit, "mg")
    routes = _code(dosage.get("route"), mapping.SNOMED)
    if not routes or routes[0] not in mapping.ROUTES:
        raise Unmappable(f"route {routes[0] if routes else '(none)'} is not one the import maps")
    route = mapping.ROUTES[routes[0]]
    period = raw.get("effectivePeriod")
    if period:
        start = parse_instant(period.get("start"), "effectivePeriod.start")
        end = parse_instant(period.get("end"), "effectivePeriod.end") if period.get("end") else None
    else:
        start, end = parse_instant(raw.get("effectiveDateTime"), "effectiveDateTime"), None
    duration_h = None
    if end is not None and end > start:
        duration_h = (end - start).total_seconds() / 3600.0
    elif isinstance(dosage.get("rateQuantity"), dict):
        rate = dosage["rateQuantity"]
        rate_unit = unit_of(rate, "dosage.rateQuantity")
        if mipd_units.kind_of(rate_unit) != "mass_rate":
            raise Unmappable(
                f"rate in '{rate_unit}' needs the bag's concentration: give the infusion's end time"
            )
        duration_h = amount_mg / mipd_units.convert(_number(rate, "dosage.rateQuantity"), rate_unit, "mg/h")
    if route == "iv_infusion" and duration_h is None:
        route = "iv_bolus"  # intravenous, given at once: no period and no rate
    return DosePlan(drug, start, amount_mg, route, duration_h if route == "iv_infusion" else None)


def request_plan(raw: dict[str, Any]) -> OrderPlan:
    drug = drug_of(raw)
    authored = parse_instant(raw["authoredOn"], "authoredOn") if raw.get("authoredOn") else None
    texts = [d.get("text", "") for d in raw.get("dosageInstruction", []) if d.get("text")]
    return OrderPlan(drug, str(raw.get("status")), str(raw.get("intent")), authored, "; ".join(texts))


def plan_for(resource_type: str, raw: dict[str, Any]) -> Plan:
    if resource_type == "Observation":
        return observation_plan(raw)
    if resource_type == "MedicationAdministration":
        return administration_plan(raw)
    if resource_type == "MedicationRequest":
        return request_plan(raw)
    raise Unmappable(f"{resource_type} is not imported")


def subject_reference(raw: dict[str, Any]) -> str:
    return str(((raw.get("subject") or raw.get("patient") or {}).get("reference")) or "")
