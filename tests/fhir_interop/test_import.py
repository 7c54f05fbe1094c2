"""Importing a FHIR R4 Bundle: the golden ICU bundle, every outcome reported, idempotent re-import."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import AuditEntry
from dosing.models import DoseAdministration, DrugLevel
from fhir_interop import services
from fhir_interop.models import ExternalOrder, ImportedResource
from patients.models import CovariateMeasurement, Genotype

pytestmark = pytest.mark.django_db
GOLDEN = Path(__file__).parent / "golden"


def golden(name: str, now: dt.datetime) -> str:
    """The golden file with its relative times ("NOW-20H", "NOW-8H30M") made absolute (UTC)."""

    def moment(match: re.Match[str]) -> str:
        hours, minutes = int(match.group(1)), int(match.group(2) or 0)
        return (now - dt.timedelta(hours=hours, minutes=minutes)).astimezone(dt.UTC).isoformat()

    return re.sub(r"NOW-(\d+)H(?:(\d+)M)?", moment, (GOLDEN / name).read_text())


def outcomes(run) -> dict[str, tuple[str, str]]:
    return {line["resource"]: (line["outcome"], line["reason"]) for line in run.report}


@pytest.fixture
def now():
    return timezone.now().replace(microsecond=0)


def test_the_icu_bundle_is_imported_through_the_services(course, clinician, now, celery_eager) -> None:
    run = services.bundle_import(
        document=golden("bundle_icu_vancomycin.json", now), user=clinician, channel="upload"
    )
    lines = outcomes(run)
    assert run.patient == course.patient
    weight = CovariateMeasurement.objects.get(patient=course.patient, kind="weight", unit_as_entered="lb")
    assert weight.value == pytest.approx(160 * 0.45359237, rel=1e-12)
    height = CovariateMeasurement.objects.get(patient=course.patient, kind="height", unit_as_entered="in")
    assert height.value == pytest.approx(66 * 2.54, rel=1e-12)
    creatinine = CovariateMeasurement.objects.get(
        patient=course.patient, kind="serum_creatinine", unit_as_entered="umol/L"
    )
    assert creatinine.value == pytest.approx(97.3 / 88.42, rel=1e-12)
    assert creatinine.unit == "mg/dL"
    genotype = Genotype.objects.get(patient=course.patient)
    assert (genotype.gene, genotype.diplotype, genotype.lab) == (
        "CYP3A5",
        "*3/*3",
        "Hospital Genomics Laboratory",
    )
    assert genotype.phenotype == "Poor Metabolizer"  # CPIC CYP3A5 table: *3/*3
    infusion = DoseAdministration.objects.get(course=course, amount_mg=1000)
    assert infusion.route == "iv_infusion"
    assert infusion.infusion_duration_h == pytest.approx(2.0)
    by_rate = DoseAdministration.objects.get(course=course, amount_mg=750)
    assert by_rate.infusion_duration_h == pytest.approx(750 / 500)  # dose / rate, in h
    level = DrugLevel.objects.get(course=course)
    molar_mass = course.drug.molar_mass_g_per_mol
    assert level.value_model_unit == pytest.approx(8.97 * molar_mass / 1000.0, rel=1e-9)
    assert level.assay == "LOINC 4092-3 (trough)"
    assert ExternalOrder.objects.get(patient=course.patient).text == "vancomycin 1 g IV q12h over 1 h"
    assert lines["Observation/scr-miscoded"][0] == "not_imported"
    assert (
        "2160-0 (serum_creatinine) is reported in mg/dL, not 'umol/L'" in lines["Observation/scr-miscoded"][1]
    )
    assert "preliminary" in lines["Observation/scr-prelim"][1]
    assert "718-7 is not one the import maps" in lines["Observation/hb-1"][1]
    assert "no active tacrolimus course" in lines["Observation/tacro-1"][1]
    assert "about another patient (Patient/someone-else)" in lines["Observation/other-patient"][1]
    assert "not-done" in lines["MedicationAdministration/ma-notdone"][1]
    assert "Condition is not imported" in lines["Condition/cond-1"][1]
    assert "not a valid FHIR R4 Observation" in lines["Observation/bad-1"][1]
    assert run.counts == {"unchanged": 1, "imported": 8, "not_imported": 8}
    assert len(run.report) == 17  # every entry has its line: nothing dropped silently
    kinds = set(
        AuditEntry.objects.filter(patient_id=course.patient.public_id).values_list("object_type", flat=True)
    )
    assert {"dosing.druglevel", "patients.covariatemeasurement", "fhir_interop.fhirimport"} <= kinds


def test_importing_the_same_bundle_again_changes_nothing(course, clinician, now, celery_eager) -> None:
    document = golden("bundle_icu_vancomycin.json", now)
    services.bundle_import(document=document, user=clinician, channel="api")
    counts = (
        CovariateMeasurement.objects.count(),
        DoseAdministration.objects.count(),
        DrugLevel.objects.count(),
        Genotype.objects.count(),
        ExternalOrder.objects.count(),
        ImportedResource.objects.count(),
    )
    again = services.bundle_import(document=document, user=clinician, channel="api")
    assert counts == (
        CovariateMeasurement.objects.count(),
        DoseAdministration.objects.count(),
        DrugLevel.objects.count(),
        Genotype.objects.count(),
        ExternalOrder.objects.count(),
        ImportedResource.objects.count(),
    )
    assert again.counts == {"unchanged": 9, "not_imported": 8}


def test_a_resource_changed_in_the_source_is_reported_not_overwritten(course, clinician, now, celery_eager):
    document = json.loads(golden("bundle_icu_vancomycin.json", now))
    services.bundle_import(document=document, user=clinician, channel="api")
    weight = next(e["resource"] for e in document["entry"] if e["resource"].get("id") == "wt-1")
    weight["valueQuantity"]["value"] = 170
    again = services.bundle_import(document=document, user=clinician, channel="api")
    assert outcomes(again)["Observation/wt-1"][0] == "changed_in_source"
    assert CovariateMeasurement.objects.get(unit_as_entered="lb").value_as_entered == 160


def test_imported_values_meet_the_typed_checks(patient, clinician, now) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": "w",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                    "effectiveDateTime": (now - dt.timedelta(hours=1)).isoformat(),
                    "valueQuantity": {"value": 700, "system": "http://unitsofmeasure.org", "code": "kg"},
                }
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": "u",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                    "effectiveDateTime": (now - dt.timedelta(hours=1)).isoformat(),
                    "valueQuantity": {"value": 70, "unit": "kilo"},
                }
            },
        ],
    }
    run = services.bundle_import(document=bundle, user=clinician, channel="api", patient=patient)
    assert run.counts == {"not_imported": 2}
    assert run.counts == {"not_imported": 2}
    lines = outcomes(run)
    assert "plausible range 0.3-350" in lines["Observation/w"][1]
    assert "no UCUM unit code (unit 'kilo'" in lines["Observation/u"][1]
    assert CovariateMeasurement.objects.filter(patient=patient, kind="weight").count() == 1  # the fixture's


def test_a_bundle_about_someone_else_is_refused_on_a_patient_page(patient, clinician, now) -> None:
    document = json.loads(golden("bundle_icu_vancomycin.json", now))
    document["entry"][0]["resource"]["identifier"][0]["value"] = "MRN-9999"
    with pytest.raises(ValidationError, match="MRN-9999"):
        services.bundle_import(document=document, user=clinician, channel="upload", patient=patient)


@pytest.mark.parametrize("document", ["not json", '{"resourceType": "Patient"}', "[]"])
def test_what_is_not_a_bundle_is_refused(clinician, document) -> None:
    with pytest.raises(ValidationError, match=r"JSON|Bundle"):
        services.bundle_import(document=document, user=clinician, channel="api")
