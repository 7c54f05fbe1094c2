"""Patient REST API: registration, measurements with units, genotypes, consent; roles; refused input."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from patients.models import ConsentRecord, CovariateMeasurement, Genotype, Patient

pytestmark = pytest.mark.django_db
PATIENTS = "/api/v1/patients/"


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def iso(moment: dt.datetime) -> str:
    return moment.isoformat()


def test_a_clinician_registers_a_patient_and_finds_it_by_search(clinician) -> None:
    created = api(clinician).post(
        PATIENTS,
        {
            "mrn": " MRN-42 ",
            "family_name": "Dupont",
            "given_name": "Jean",
            "birth_date": "1971-03-02",
            "sex": "male",
            "ward": "Nephrology",
        },
        format="json",
    )
    assert created.status_code == 201, created.data
    assert created.data["mrn"] == "MRN-42"
    assert created.data["courses"] == []
    listed = api(clinician).get(PATIENTS, {"search": "dup"})
    assert listed.status_code == 200
    assert listed.data["count"] == 1
    assert listed.data["results"][0]["id"] == created.data["id"]
    assert api(clinician).get(PATIENTS, {"search": "nobody"}).data["count"] == 0


def test_the_patient_list_is_paginated(clinician) -> None:
    from patients import services

    for i in range(55):
        services.patient_create(
            mrn=f"P{i:03d}",
            family_name=f"Name{i:03d}",
            given_name="X",
            birth_date=dt.date(1980, 1, 1),
            sex="female",
            user=clinician,
        )
    first = api(clinician).get(PATIENTS)
    assert first.data["count"] == 55
    assert len(first.data["results"]) == 50
    assert first.data["next"]
    assert len(api(clinician).get(PATIENTS, {"page": 2}).data["results"]) == 5


def test_a_patient_born_in_the_future_is_refused_with_the_field(clinician) -> None:
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    response = api(clinician).post(
        PATIENTS,
        {"mrn": "X", "family_name": "F", "given_name": "G", "birth_date": str(tomorrow), "sex": "male"},
        format="json",
    )
    assert response.status_code == 400
    assert "birth_date" in response.data
    assert not Patient.objects.exists()


def test_measurements_are_stored_in_canonical_units_next_to_what_was_entered(clinician, patient) -> None:
    url = f"{PATIENTS}{patient.public_id}/measurements/"
    when = iso(timezone.now() - dt.timedelta(hours=2))
    creatinine = api(clinician).post(
        url,
        {"kind": "serum_creatinine", "value": 88.42, "unit": "µmol/L", "measured_at": when},
        format="json",
    )
    assert creatinine.status_code == 201, creatinine.data
    assert creatinine.data["value"] == pytest.approx(1.0, rel=1e-9)
    assert creatinine.data["unit"] == "mg/dL"
    assert creatinine.data["value_as_entered"] == pytest.approx(88.42)
    assert creatinine.data["unit_as_entered"] == "µmol/L"
    weight = api(clinician).post(
        url, {"kind": "weight", "value": 154, "unit": "lb", "measured_at": when}, format="json"
    )
    assert weight.status_code == 201, weight.data
    assert weight.data["value"] == pytest.approx(154 * 0.45359237, rel=1e-12)
    assert weight.data["unit"] == "kg"
    listed = api(clinician).get(url)
    assert {row["kind"] for row in listed.data} == {"serum_creatinine", "weight"}


def test_the_patient_detail_shows_latest_values_derived_covariates_genotypes_and_consent(
    clinician, patient
) -> None:
    from patients import services

    now = timezone.now()
    services.measurement_record(
        patient=patient,
        kind="weight",
        value=80,
        unit="kg",
        measured_at=now - dt.timedelta(days=3),
        user=clinician,
    )
    services.measurement_record(
        patient=patient,
        kind="weight",
        value=72,
        unit="kg",
        measured_at=now - dt.timedelta(days=1),
        user=clinician,
    )
    services.measurement_record(
        patient=patient,
        kind="height",
        value=165,
        unit="cm",
        measured_at=now - dt.timedelta(days=1),
        user=clinician,
    )
    detail = api(clinician).get(f"{PATIENTS}{patient.public_id}/")
    assert detail.status_code == 200
    latest = {row["kind"]: row["value"] for row in detail.data["latest_measurements"]}
    assert latest == {"height": pytest.approx(165), "weight": pytest.approx(72)}
    derived = {row["label"]: row for row in detail.data["derived_covariates"]}
    bsa = derived["Body surface area (Mosteller)"]
    assert bsa["value"] == pytest.approx((165 * 72 / 3600) ** 0.5, rel=1e-6)
    assert bsa["formula"]
    crcl = derived["Creatinine clearance (Cockcroft-Gault, total body weight)"]
    assert crcl["value"] is None
    assert "serum creatinine" in crcl["missing"]
    consents = {row["scope"]: row["status"] for row in detail.data["consents"]}
    assert consents[ConsentRecord.Scope.MODEL_BASED_DOSING] == "not recorded"
    assert detail.data["genotypes"] == []


def test_a_cyp3a5_genotype_gets_its_phenotype_from_the_engine(clinician, patient) -> None:
    response = api(clinician).post(
        f"{PATIENTS}{patient.public_id}/genotypes/",
        {"gene": "CYP3A5", "diplotype": "*1/*3", "lab": "Central lab", "reported_on": "2026-01-15"},
        format="json",
    )
    assert response.status_code == 201, response.data
    assert response.data["phenotype"] == "Intermediate Metabolizer"
    assert "cpic_tacrolimus_cyp3a5" in response.data["phenotype_source"]
    listed = api(clinician).get(f"{PATIENTS}{patient.public_id}/genotypes/")
    assert [row["diplotype"] for row in listed.data] == ["*1/*3"]


def test_a_genotype_for_a_gene_without_a_guideline_table_is_refused(clinician, patient) -> None:
    response = api(clinician).post(
        f"{PATIENTS}{patient.public_id}/genotypes/",
        {"gene": "NOSUCHGENE", "diplotype": "*1/*1", "lab": "Lab", "reported_on": "2026-01-15"},
        format="json",
    )
    assert response.status_code == 400
    assert {"gene", "diplotype"} & response.data.keys()
    assert not Genotype.objects.exists()


def test_consent_records_are_listed_and_the_latest_is_current(clinician, patient) -> None:
    url = f"{PATIENTS}{patient.public_id}/consents/"
    for state in ("granted", "withdrawn"):
        response = api(clinician).post(url, {"scope": "model_based_dosing", "status": state}, format="json")
        assert response.status_code == 201, response.data
    assert len(api(clinician).get(url).data) == 2
    detail = api(clinician).get(f"{PATIENTS}{patient.public_id}/")
    consents = {row["scope"]: row["status"] for row in detail.data["consents"]}
    assert consents["model_based_dosing"] == "withdrawn"
    refused = api(clinician).post(url, {"scope": "model_based_dosing", "status": "maybe"}, format="json")
    assert refused.status_code == 400
    assert "status" in refused.data
    assert ConsentRecord.objects.count() == 2


def test_a_measurement_entered_in_error_stays_struck_with_its_reason(clinician, patient) -> None:
    from patients import services

    measurement = services.measurement_record(
        patient=patient,
        kind="weight",
        value=70,
        unit="kg",
        measured_at=timezone.now() - dt.timedelta(hours=1),
        user=clinician,
    )
    url = f"/api/v1/measurements/{measurement.public_id}/entered-in-error/"
    assert api(clinician).post(url, {"reason": " "}, format="json").status_code == 400
    response = api(clinician).post(url, {"reason": "other patient's weight"}, format="json")
    assert response.status_code == 200, response.data
    assert response.data["entered_in_error"] is True
    assert response.data["error_reason"] == "other patient's weight"
    detail = api(clinician).get(f"{PATIENTS}{patient.public_id}/")
    assert detail.data["latest_measurements"] == []


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"kind": "weight", "value": 700, "unit": "kg"}, "value"),
        ({"kind": "weight", "value": 70, "unit": "stone"}, "unit"),
        ({"kind": "serum_creatinine", "value": 1.0, "unit": "furlongs"}, "unit"),
        ({"kind": "weight", "value": -3, "unit": "kg"}, "value"),
    ],
)
def test_an_implausible_measurement_is_refused_with_the_field_and_nothing_is_stored(
    clinician, patient, entry, field
) -> None:
    response = api(clinician).post(
        f"{PATIENTS}{patient.public_id}/measurements/",
        {**entry, "measured_at": iso(timezone.now() - dt.timedelta(hours=1))},
        format="json",
    )
    assert response.status_code == 400
    assert field in response.data, response.data
    assert not CovariateMeasurement.objects.exists()


def test_a_measurement_in_the_future_is_refused(clinician, patient) -> None:
    response = api(clinician).post(
        f"{PATIENTS}{patient.public_id}/measurements/",
        {
            "kind": "weight",
            "value": 70,
            "unit": "kg",
            "measured_at": iso(timezone.now() + dt.timedelta(days=1)),
        },
        format="json",
    )
    assert response.status_code == 400
    assert "measured_at" in response.data
    assert not CovariateMeasurement.objects.exists()


def test_a_time_in_a_foreign_zone_is_refused_while_utc_local_and_the_hospital_offset_are_accepted(
    clinician, patient, settings
) -> None:
    settings.TIME_ZONE = "Europe/Zurich"  # UTC+1 in November
    url = f"{PATIENTS}{patient.public_id}/measurements/"
    day = (timezone.now() - dt.timedelta(days=2)).date().isoformat()

    def post(moment: str):
        return api(clinician).post(
            url, {"kind": "weight", "value": 70, "unit": "kg", "measured_at": moment}, format="json"
        )

    refused = post(f"{day}T08:00:00+09:00")
    assert refused.status_code == 400
    assert "measured_at" in refused.data
    assert "UTC+9" in str(refused.data["measured_at"][0])
    assert not CovariateMeasurement.objects.exists()
    for moment in (f"{day}T08:00:00Z", f"{day}T08:00:00", f"{day}T09:00:00+01:00"):
        assert post(moment).status_code == 201, moment
    stored = CovariateMeasurement.objects.order_by("pk")
    utc = [row.measured_at.astimezone(dt.UTC).strftime("%H:%M") for row in stored]
    assert utc == ["08:00", "07:00", "08:00"]  # naive 08:00 is Zurich time, i.e. 07:00 UTC


def test_anonymous_callers_are_refused(client) -> None:
    assert APIClient().get(PATIENTS).status_code in (401, 403)
    assert APIClient().post(PATIENTS, {}, format="json").status_code in (401, 403)


def test_a_curator_sees_no_patient_data(curator, patient) -> None:
    for url in (
        PATIENTS,
        f"{PATIENTS}{patient.public_id}/",
        f"{PATIENTS}{patient.public_id}/measurements/",
        f"{PATIENTS}{patient.public_id}/genotypes/",
        f"{PATIENTS}{patient.public_id}/consents/",
    ):
        assert api(curator).get(url).status_code == 403, url
    refused = api(curator).post(
        PATIENTS,
        {"mrn": "X", "family_name": "F", "given_name": "G", "birth_date": "1970-01-01", "sex": "male"},
        format="json",
    )
    assert refused.status_code == 403
    assert Patient.objects.count() == 1


def test_a_pharmacist_reads_patients_but_cannot_write(pharmacist, patient) -> None:
    client = api(pharmacist)
    assert client.get(f"{PATIENTS}{patient.public_id}/").status_code == 200
    assert client.get(f"{PATIENTS}{patient.public_id}/measurements/").status_code == 200
    when = iso(timezone.now() - dt.timedelta(hours=1))
    writes = [
        (
            PATIENTS,
            {"mrn": "X", "family_name": "F", "given_name": "G", "birth_date": "1970-01-01", "sex": "male"},
        ),
        (
            f"{PATIENTS}{patient.public_id}/measurements/",
            {"kind": "weight", "value": 70, "unit": "kg", "measured_at": when},
        ),
        (
            f"{PATIENTS}{patient.public_id}/genotypes/",
            {"gene": "CYP3A5", "diplotype": "*1/*3", "lab": "Lab", "reported_on": "2026-01-15"},
        ),
        (f"{PATIENTS}{patient.public_id}/consents/", {"scope": "model_based_dosing", "status": "granted"}),
    ]
    for url, body in writes:
        assert client.post(url, body, format="json").status_code == 403, url
    assert Patient.objects.count() == 1
    assert not CovariateMeasurement.objects.exists()
    assert not Genotype.objects.exists()
    assert not ConsentRecord.objects.exists()


def test_an_unknown_patient_is_404(clinician) -> None:
    assert api(clinician).get(f"{PATIENTS}999999/").status_code == 404
