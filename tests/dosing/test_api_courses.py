"""Dosing REST API, recording: courses, doses, levels; a refused entry names its field and stores nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from dosing.models import DrugLevel
from models_catalog.models import TargetProtocol
from tests.dosing.api_helpers import api, counts

pytestmark = pytest.mark.django_db
COURSES = "/api/v1/courses/"
TARGET = {"metric": "trough", "low": 5, "high": 10}


def iso(moment: dt.datetime) -> str:
    return moment.isoformat()


def test_a_clinician_opens_a_course_with_a_target_protocol(clinician, patient, published_version) -> None:
    protocol = TargetProtocol.objects.create(
        drug=published_version.drug, indication="sepsis", target=TARGET, source="test guideline"
    )
    response = api(clinician).post(
        COURSES,
        {
            "patient": patient.public_id,
            "model_version": published_version.pk,
            "target_protocol": protocol.pk,
            "indication": "sepsis",
            "mic_mg_per_l": 1,
        },
        format="json",
    )
    assert response.status_code == 201, response.data
    assert response.data["target"] == TARGET
    assert response.data["drug"] == "testdrug"
    assert response.data["status"] == "active"
    assert response.data["latest_update"]["status"] == "queued"
    assert response.data["latest_update"]["trigger"] == "course opened (a priori)"
    assert response.data["doses"] == [] and response.data["levels"] == []
    listed = api(clinician).get(COURSES, {"patient": patient.public_id})
    assert [row["id"] for row in listed.data["results"]] == [response.data["id"]]
    summary = api(clinician).get(f"/api/v1/patients/{patient.public_id}/").data["courses"]
    assert [row["id"] for row in summary] == [response.data["id"]]


def test_a_course_on_an_unpublished_model_version_is_refused(clinician, patient, published_version) -> None:
    from accounts.roles import Role
    from models_catalog import services
    from tests.factories import UserFactory
    from tests.models_catalog.documents import library_entry

    entry = library_entry()
    draft = services.model_version_create(
        document=entry["model"],
        version="2.0.0",
        user=UserFactory(username="curator-three", roles=[Role.MODEL_CURATOR]),
        reference_checks=entry["reference_checks"],
        covariate_sources=entry["covariate_sources"],
        model_card=entry["model_card"],
    )
    before = counts()
    response = api(clinician).post(
        COURSES,
        {"patient": patient.public_id, "model_version": draft.pk, "target": TARGET, "indication": "x"},
        format="json",
    )
    assert response.status_code == 400
    assert "model_version" in response.data
    assert counts() == before


def test_a_course_without_consent_needs_a_reason(clinician, published_version) -> None:
    created = api(clinician).post(
        "/api/v1/patients/",
        {
            "mrn": "NC-1",
            "family_name": "No",
            "given_name": "Consent",
            "birth_date": "1950-01-01",
            "sex": "male",
        },
        format="json",
    )
    body = {
        "patient": created.data["id"],
        "model_version": published_version.pk,
        "target": TARGET,
        "indication": "pneumonia",
    }
    before = counts()
    refused = api(clinician).post(COURSES, body, format="json")
    assert refused.status_code == 400
    assert "not recorded" in refused.data["consent_override_reason"][0]
    assert counts() == before
    accepted = api(clinician).post(
        COURSES,
        {**body, "consent_override_reason": "unconscious, emergency", "missing_data_reason": "weight today"},
        format="json",
    )
    assert accepted.status_code == 201, accepted.data
    assert accepted.data["consent_override_reason"] == "unconscious, emergency"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"target": None}, "target"),
        ({"target": {"metric": "nonsense", "low": 1}}, "target"),
        ({"mic_mg_per_l": -1}, "mic_mg_per_l"),
        ({"patient": 999999}, "patient"),
        ({"model_version": 999999}, "model_version"),
    ],
)
def test_a_bad_course_is_refused_with_the_field(clinician, patient, published_version, change, field) -> None:
    body = {
        "patient": patient.public_id,
        "model_version": published_version.pk,
        "target": TARGET,
        "indication": "x",
    }
    before = counts()
    response = api(clinician).post(COURSES, {**body, **change}, format="json")
    assert response.status_code == 400
    assert field in response.data, response.data
    assert counts() == before


def test_doses_and_levels_are_recorded_and_shown_on_the_course(clinician, course) -> None:
    start = timezone.now() - dt.timedelta(hours=14)
    dose = api(clinician).post(
        f"{COURSES}{course.public_id}/doses/",
        {"given_at": iso(start), "amount_mg": 1000, "route": "iv_infusion", "infusion_duration_h": 1},
        format="json",
    )
    assert dose.status_code == 201, dose.data
    level = api(clinician).post(
        f"{COURSES}{course.public_id}/levels/",
        {
            "sampled_at": iso(start + dt.timedelta(hours=11.5)),
            "value": 6200,
            "unit": "ng/mL",
            "assay": "LC-MS",
        },
        format="json",
    )
    assert level.status_code == 201, level.data
    assert level.data["value_model_unit"] == pytest.approx(6.2, rel=1e-12)
    below = api(clinician).post(
        f"{COURSES}{course.public_id}/levels/",
        {
            "sampled_at": iso(start + dt.timedelta(hours=12.5)),
            "below_lloq": True,
            "lloq": 0.5,
            "unit": "mg/L",
        },
        format="json",
    )
    assert below.status_code == 201, below.data
    assert below.data["value"] is None and below.data["lloq_model_unit"] == pytest.approx(0.5)
    detail = api(clinician).get(f"{COURSES}{course.public_id}/")
    assert [d["amount_mg"] for d in detail.data["doses"]] == [1000]
    assert [lv["below_lloq"] for lv in detail.data["levels"]] == [False, True]
    assert detail.data["latest_update"]["trigger"] == "new level"
    assert len(api(clinician).get(f"{COURSES}{course.public_id}/doses/").data) == 1
    assert len(api(clinician).get(f"{COURSES}{course.public_id}/levels/").data) == 2


def test_a_level_is_excluded_with_a_reason(clinician, dosed_course) -> None:
    level = api(clinician).post(
        f"{COURSES}{dosed_course.public_id}/levels/",
        {"sampled_at": iso(timezone.now() - dt.timedelta(hours=1)), "value": 4, "unit": "mg/L"},
        format="json",
    )
    url = f"/api/v1/levels/{level.data['id']}/exclude/"
    missing = api(clinician).post(url, {"reason": ""}, format="json")
    assert missing.status_code == 400 and "reason" in missing.data
    excluded = api(clinician).post(url, {"reason": "drawn from the infusion line"}, format="json")
    assert excluded.status_code == 200, excluded.data
    assert excluded.data["excluded"] is True
    assert DrugLevel.objects.get().exclusion_reason == "drawn from the infusion line"


@pytest.mark.parametrize(
    ("level", "field"),
    [
        ({"hours_after_first_dose": -2, "value": 5, "unit": "mg/L"}, "sampled_at"),
        ({"hours_after_first_dose": 3, "value": -1, "unit": "mg/L"}, "value"),
        ({"hours_after_first_dose": 3, "value": 5000, "unit": "mg/L"}, "value"),
        ({"hours_after_first_dose": 3, "value": 5, "unit": "mg/furlong"}, "unit"),
        ({"hours_after_first_dose": 3, "below_lloq": True, "unit": "mg/L"}, "lloq"),
        ({"hours_after_first_dose": 3, "unit": "mg/L"}, "value"),
        ({"hours_after_first_dose": 3, "value": 5, "unit": "mg/L", "model_output": "urine"}, "model_output"),
        ({"hours_after_first_dose": 20, "value": 5, "unit": "mg/L"}, "sampled_at"),
    ],
    ids=[
        "before-first-dose",
        "negative",
        "above-plausible-maximum",
        "unknown-unit",
        "below-lloq-without-lloq",
        "no-value",
        "unknown-output",
        "in-the-future",
    ],
)
def test_a_bad_level_is_refused_with_the_field_and_nothing_is_stored(
    clinician, dosed_course, level, field
) -> None:
    first = dosed_course.doses.get().given_at
    body = dict(level)
    body["sampled_at"] = iso(first + dt.timedelta(hours=body.pop("hours_after_first_dose")))
    before = counts()
    response = api(clinician).post(f"{COURSES}{dosed_course.public_id}/levels/", body, format="json")
    assert response.status_code == 400
    assert field in response.data, response.data
    assert counts() == before


def test_a_sample_time_in_a_foreign_zone_is_refused_while_utc_and_local_are_accepted(
    clinician, dosed_course, settings
) -> None:
    settings.TIME_ZONE = "Europe/Zurich"
    url = f"{COURSES}{dosed_course.public_id}/levels/"
    sampled = (timezone.now() - dt.timedelta(hours=2)).replace(microsecond=0)
    tokyo = sampled.astimezone(dt.timezone(dt.timedelta(hours=9)))
    before = counts()
    refused = api(clinician).post(
        url, {"sampled_at": tokyo.isoformat(), "value": 5, "unit": "mg/L"}, format="json"
    )
    assert refused.status_code == 400
    assert "sampled_at" in refused.data
    assert counts() == before
    utc = sampled.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    local = timezone.localtime(sampled).replace(tzinfo=None).isoformat()
    for moment in (utc, local):
        response = api(clinician).post(url, {"sampled_at": moment, "value": 5, "unit": "mg/L"}, format="json")
        assert response.status_code == 201, (moment, response.data)
    assert [level.sampled_at for level in DrugLevel.objects.order_by("pk")] == [sampled, sampled]


@pytest.mark.parametrize(
    ("dose", "field"),
    [
        (
            {"hours_from_now": 3, "amount_mg": 1000, "route": "iv_infusion", "infusion_duration_h": 1},
            "given_at",
        ),
        ({"hours_from_now": -1, "amount_mg": 1000, "route": "iv_infusion"}, "infusion_duration_h"),
        ({"hours_from_now": -1, "amount_mg": 0, "route": "iv_bolus"}, "amount_mg"),
        ({"hours_from_now": -1, "amount_mg": 50000, "route": "iv_bolus"}, "amount_mg"),
        ({"hours_from_now": -1, "amount_mg": 1000, "route": "oral"}, "route"),
    ],
    ids=["future-beyond-limit", "infusion-without-duration", "zero", "absurd", "unknown-route"],
)
def test_a_bad_dose_is_refused_with_the_field_and_nothing_is_stored(clinician, course, dose, field) -> None:
    body = dict(dose)
    body["given_at"] = iso(timezone.now() + dt.timedelta(hours=body.pop("hours_from_now")))
    before = counts()
    response = api(clinician).post(f"{COURSES}{course.public_id}/doses/", body, format="json")
    assert response.status_code == 400
    assert field in response.data, response.data
    assert counts() == before


def test_anonymous_callers_are_refused(course) -> None:
    client = APIClient()
    for url in (COURSES, f"{COURSES}{course.public_id}/", f"{COURSES}{course.public_id}/updates/"):
        assert client.get(url).status_code in (401, 403)


def test_a_curator_gets_403_on_course_data(course, published_version) -> None:
    from accounts.roles import Role
    from tests.factories import UserFactory

    curator = UserFactory(username="curator-x", roles=[Role.MODEL_CURATOR])
    update = course.updates.get()
    for url in (
        COURSES,
        f"{COURSES}{course.public_id}/",
        f"{COURSES}{course.public_id}/doses/",
        f"{COURSES}{course.public_id}/levels/",
        f"{COURSES}{course.public_id}/updates/",
        f"{COURSES}{course.public_id}/recommendations/",
        f"/api/v1/updates/{update.public_id}/",
    ):
        assert api(curator).get(url).status_code == 403, url


def test_a_pharmacist_reads_courses_but_cannot_write(
    pharmacist, dosed_course, patient, published_version
) -> None:
    client = api(pharmacist)
    assert client.get(f"{COURSES}{dosed_course.public_id}/").status_code == 200
    assert client.get(COURSES).data["count"] == 1
    level = DrugLevel.objects.create(
        course=dosed_course,
        sampled_at=timezone.now() - dt.timedelta(hours=1),
        value=5,
        unit="mg/L",
        value_model_unit=5,
        recorded_by=dosed_course.opened_by,
    )
    before = counts()
    now = timezone.now()
    writes = [
        (
            COURSES,
            {
                "patient": patient.public_id,
                "model_version": published_version.pk,
                "target": TARGET,
                "indication": "x",
            },
        ),
        (
            f"{COURSES}{dosed_course.public_id}/doses/",
            {"given_at": iso(now), "amount_mg": 500, "route": "iv_bolus"},
        ),
        (f"{COURSES}{dosed_course.public_id}/levels/", {"sampled_at": iso(now), "value": 5, "unit": "mg/L"}),
        (f"{COURSES}{dosed_course.public_id}/updates/", {}),
        (f"/api/v1/levels/{level.public_id}/exclude/", {"reason": "haemolysed"}),
    ]
    for url, body in writes:
        response = client.post(url, body, format="json")
        assert response.status_code == 403, (url, response.data)
    assert counts() == before
    level.refresh_from_db()
    assert not level.excluded


def test_unknown_ids_are_404(clinician) -> None:
    client = api(clinician)
    assert client.get(f"{COURSES}999999/").status_code == 404
    assert client.get("/api/v1/updates/999999/").status_code == 404
    assert client.post("/api/v1/levels/999999/exclude/", {"reason": "x"}, format="json").status_code == 404
