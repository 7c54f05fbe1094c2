"""New levels are scored against what the patient's model expects before they enter a fit.

Each pending level is scored, in the order it was recorded, against the predictive distribution of the data
already in the fit (:func:`mipd_engine.plausibility.score_level`); an accepted level joins the data for the
next one. A held level stays out of every fit until a clinician confirms it or marks it entered in error.
The unit slips considered are the same number read in the units a laboratory may report: ×1000 or ÷1000
(mg/L versus ng/mL or µg/L) and mass versus molar units through the drug's molar mass.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from dosing import adapters, hooks
from dosing.models import DrugLevel, TherapyCourse
from mipd_engine.case import parse_case
from mipd_engine.events import Observation
from mipd_engine.plausibility import PlausibilityScore, Reading, score_level
from mipd_units import concentration as units

# Units a number may have been meant in, for the unit-slip readings.
_SLIP_UNITS = ("mg/L", "ng/mL", "µmol/L", "nmol/L")


def unit_readings(
    *, value: float, unit: str, model_unit: str, molar_mass_g_per_mol: float | None
) -> list[Reading]:
    """The same number read in other units, in the model's unit: labels say which reading it is."""
    if value <= 0:
        return []
    entered = units.convert(value, unit, model_unit, molar_mass_g_per_mol=molar_mass_g_per_mol)
    readings = []
    seen = {round(entered, 12)}
    candidates = [*_SLIP_UNITS]
    for other in candidates:
        try:
            converted = units.convert(value, other, model_unit, molar_mass_g_per_mol=molar_mass_g_per_mol)
        except units.UnitError:
            continue  # a molar unit without a molar mass
        if round(converted, 12) in seen or abs(converted / entered - 1.0) < 0.05:
            continue
        seen.add(round(converted, 12))
        readings.append(Reading(f"{value:g} {other} (the unit {other} instead of {unit})", converted))
    for factor, label in ((1000.0, "1000 times the number"), (1e-3, "a thousandth of the number")):
        converted = entered * factor
        if round(converted, 12) not in seen:
            seen.add(round(converted, 12))
            readings.append(Reading(f"{value * factor:g} {unit} ({label})", converted))
    return readings


def _seed(case: adapters.CourseCase, observation: dict) -> int:
    text = json.dumps({"case": case.inputs_sha256, "level": observation}, sort_keys=True)
    return int(hashlib.sha256(text.encode()).hexdigest()[:15], 16)


def score(case: adapters.CourseCase, level: DrugLevel, *, drug_molar_mass: float | None) -> PlausibilityScore:
    """Score one level against the data in ``case`` (which does not contain it)."""
    model = case.model
    observation = adapters.level_document(level, case.origin, model)
    output = observation.get("output") or model.default_output
    model_unit = model.outputs[output].unit
    readings = []
    if not level.below_lloq and level.value is not None:
        readings = unit_readings(
            value=level.value, unit=level.unit, model_unit=model_unit, molar_mass_g_per_mol=drug_molar_mass
        )
    record = parse_case({k: v for k, v in case.document.items() if k != "target"}).record
    return score_level(
        model,
        record,
        Observation(observation["time_h"], observation.get("value"), output, observation.get("lloq")),
        rng=np.random.default_rng(_seed(case, observation)),
        unit=model_unit,
        readings=readings,
    )


def score_pending_levels(
    course: TherapyCourse, case: adapters.CourseCase, *, update_id: int
) -> adapters.CourseCase:
    """Score every pending level; returns the case rebuilt with the accepted ones."""
    pending = adapters.pending_levels(course)
    for level in pending:
        result = score(case, level, drug_molar_mass=course.drug.molar_mass_g_per_mol)
        document = {**result.as_dict(), "update": update_id}
        if not result.success:  # unchecked is not plausible: a clinician confirms it or marks it in error
            document["reason"] = f"it could not be checked against the model: {result.message}"
        held = result.held or not result.success
        status = DrugLevel.Plausibility.HELD if held else DrugLevel.Plausibility.ACCEPTED
        DrugLevel.objects.filter(pk=level.pk, plausibility=DrugLevel.Plausibility.PENDING).update(
            plausibility=status, plausibility_score=document
        )
        if result.success:  # its prospective score, for the model's local performance (apps above dosing)
            hooks.level_scored_notify(level=level, course=course, case=case, score=document)
        if status == DrugLevel.Plausibility.ACCEPTED:
            case = adapters.course_case(course)
    return case
