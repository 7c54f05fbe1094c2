"""Access by care relationship: every patient endpoint (pages and API), for every role, on a patient who is
not the user's, answers 403 or 404 and leaves an audit entry for the refusal. Emergency access is logged."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from audit.models import AuditEntry
from dosing import services as dosing
from dosing.models import BayesianUpdate, DoseAdministration, DrugLevel, Recommendation, TherapyCourse
from patients import services
from patients.models import ConsentRecord
from tests.auth import login
from tests.dosing import conftest as dosing_fixtures
from tests.factories import UserFactory, care_team

pytestmark = pytest.mark.django_db
published_version = dosing_fixtures.published_version
NOW = timezone.now()


@dataclass
class Other:
    """Everything of a patient on the oncology ward, cared for by another team."""

    patient: Any
    course: Any
    dose: Any
    level: Any
    update: Any
    recommendation: Any
    measurement: Any
    genotype: Any


@pytest.fixture
def other(published_version, django_capture_on_commit_callbacks, celery_eager) -> Other:
    oncologist = UserFactory(username="oncologist", roles=[Role.CLINICIAN])
    care_team(oncologist, wards=("Oncology",))
    patient = services.patient_create(
        mrn="ONC-7",
        family_name="Other",
        given_name="Olga",
        birth_date=dt.date(1970, 1, 1),
        sex="female",
        ward="Oncology",
        user=oncologist,
    )
    services.measurement_record(
        patient=patient,
        kind="weight",
        value=60,
        unit="kg",
        measured_at=NOW - dt.timedelta(days=1),
        user=oncologist,
    )
    services.consent_record(
        patient=patient, scope=ConsentRecord.Scope.MODEL_BASED_DOSING, status="granted", user=oncologist
    )
    genotype = services.genotype_record(
        patient=patient,
        gene="CYP3A5",
        diplotype="*3/*3",
        lab="lab",
        reported_on=dt.date(2024, 1, 1),
        user=oncologist,
    )
    with django_capture_on_commit_callbacks(execute=True):
        course = dosing.course_open(
            patient=patient,
            model_version=published_version,
            indication="infection",
            target={"metric": "trough", "low": 5, "high": 10},
            user=oncologist,
        )
        start = NOW - dt.timedelta(hours=20)
        dosing.dose_record(
            course=course,
            given_at=start,
            amount_mg=1000,
            route="iv_infusion",
            infusion_duration_h=1,
            user=oncologist,
        )
        dosing.level_record(
            course=course, sampled_at=start + dt.timedelta(hours=11), value=6.0, unit="mg/L", user=oncologist
        )
    return Other(
        patient=patient,
        course=course,
        dose=DoseAdministration.objects.get(course=course),
        level=DrugLevel.objects.get(course=course),
        update=BayesianUpdate.objects.filter(course=course).first(),
        recommendation=Recommendation.objects.get(course=course, status="pending_review"),
        measurement=patient.measurements.get(),
        genotype=genotype,
    )


def users() -> dict[str, Any]:
    icu_clinician = UserFactory(username="icu-clinician", roles=[Role.CLINICIAN])
    icu_pharmacist = UserFactory(username="icu-pharmacist", roles=[Role.PHARMACIST])
    care_team(icu_clinician, icu_pharmacist, wards=("ICU",))
    return {
        "clinician of another team": icu_clinician,
        "pharmacist of another team": icu_pharmacist,
        "clinician in no team": UserFactory(username="lonely", roles=[Role.CLINICIAN]),
        "curator": UserFactory(username="curator", roles=[Role.MODEL_CURATOR]),
        "auditor": UserFactory(username="auditor", roles=[Role.AUDITOR]),
        "no role": UserFactory(username="nobody"),
    }


def page_requests(o: Other) -> list[tuple[str, str, dict[str, Any]]]:
    p, c = o.patient.public_id, o.course.public_id
    reason = {"reason": "wrong"}
    return [
        ("get", reverse("patients:detail", args=[p]), {}),
        (
            "post",
            reverse("patients:record", args=[p, "measurement"]),
            {"kind": "weight", "value": "61", "unit": "kg"},
        ),
        (
            "post",
            reverse("patients:record", args=[p, "consent"]),
            {"scope": "research_use", "status": "granted"},
        ),
        ("post", reverse("patients:entry_error", args=[p, "measurement", o.measurement.public_id]), reason),
        ("post", reverse("patients:entry_error", args=[p, "genotype", o.genotype.public_id]), reason),
        ("post", reverse("dosing:course_open", args=[p]), {"indication": "x"}),
        ("get", reverse("dosing:course", args=[c]), {}),
        ("get", reverse("dosing:course_status", args=[c]), {}),
        ("get", reverse("dosing:course_results", args=[c]), {}),
        (
            "get",
            reverse("dosing:what_if", args=[c]),
            {"dose_mg": "1000", "interval_h": "12", "route": "iv_bolus"},
        ),
        ("post", reverse("dosing:course_record", args=[c, "dose"]), {"amount_mg": "500"}),
        ("post", reverse("dosing:course_record", args=[c, "level"]), {"value": "5"}),
        ("post", reverse("dosing:course_record", args=[c, "update"]), {}),
        ("post", reverse("dosing:level_exclude", args=[c, o.level.public_id]), reason),
        ("post", reverse("dosing:entry_error", args=[c, "dose", o.dose.public_id]), reason),
        ("post", reverse("dosing:entry_error", args=[c, "level", o.level.public_id]), reason),
        (
            "post",
            reverse("dosing:recommendation_review", args=[c, o.recommendation.public_id]),
            {"decision": "approve", "password": "x", "otp_code": "1"},
        ),
    ]


def api_requests(o: Other) -> list[tuple[str, str, dict[str, Any]]]:
    p, c = o.patient.public_id, o.course.public_id
    reason = {"reason": "wrong"}
    when = NOW.isoformat()
    return [
        ("get", f"/api/v1/patients/{p}/", {}),
        ("get", f"/api/v1/patients/{p}/measurements/", {}),
        (
            "post",
            f"/api/v1/patients/{p}/measurements/",
            {"kind": "weight", "value": 61, "unit": "kg", "measured_at": when},
        ),
        ("get", f"/api/v1/patients/{p}/genotypes/", {}),
        ("post", f"/api/v1/patients/{p}/genotypes/", {"gene": "TPMT", "diplotype": "*1/*1", "lab": "x"}),
        ("get", f"/api/v1/patients/{p}/consents/", {}),
        ("post", f"/api/v1/patients/{p}/consents/", {"scope": "research_use", "status": "granted"}),
        ("post", f"/api/v1/measurements/{o.measurement.public_id}/entered-in-error/", reason),
        ("post", f"/api/v1/genotypes/{o.genotype.public_id}/entered-in-error/", reason),
        (
            "post",
            "/api/v1/courses/",
            {"patient": str(p), "model_version": o.course.model_version_id, "indication": "x"},
        ),
        ("get", f"/api/v1/courses/{c}/", {}),
        ("get", f"/api/v1/courses/{c}/doses/", {}),
        ("post", f"/api/v1/courses/{c}/doses/", {"given_at": when, "amount_mg": 500, "route": "iv_bolus"}),
        ("get", f"/api/v1/courses/{c}/levels/", {}),
        ("post", f"/api/v1/courses/{c}/levels/", {"sampled_at": when, "value": 5, "unit": "mg/L"}),
        ("get", f"/api/v1/courses/{c}/updates/", {}),
        ("post", f"/api/v1/courses/{c}/updates/", {}),
        ("post", f"/api/v1/courses/{c}/what-if/", {"dose_mg": 1000, "interval_h": 12}),
        ("get", f"/api/v1/courses/{c}/recommendations/", {}),
        ("get", f"/api/v1/updates/{o.update.public_id}/", {}),
        ("post", f"/api/v1/levels/{o.level.public_id}/exclude/", reason),
        ("post", f"/api/v1/levels/{o.level.public_id}/entered-in-error/", reason),
        ("post", f"/api/v1/doses/{o.dose.public_id}/entered-in-error/", reason),
    ]


def _call(client: Client, method: str, url: str, data: dict[str, Any], *, api: bool) -> Any:
    if method == "get":
        return client.get(url, data)
    if api:
        return client.post(url, data, content_type="application/json")
    return client.post(url, data)


def test_every_endpoint_refuses_a_patient_who_is_not_the_users_and_logs_the_refusal(other: Other) -> None:
    failures = []
    requests = [(*request, False) for request in page_requests(other)] + [
        (*request, True) for request in api_requests(other)
    ]
    before_rows = (
        DrugLevel.objects.count(),
        DoseAdministration.objects.count(),
        TherapyCourse.objects.count(),
    )
    for role, user in users().items():
        client = login(Client(), user)
        for method, url, data, api in requests:
            denied_before = AuditEntry.objects.filter(action="access_denied", actor_id=user.pk).count()
            response = _call(client, method, url, data, api=api)
            denied_after = AuditEntry.objects.filter(action="access_denied", actor_id=user.pk).count()
            if response.status_code not in (403, 404):
                failures.append(f"{role}: {method.upper()} {url} answered {response.status_code}")
            elif denied_after != denied_before + 1:
                failures.append(
                    f"{role}: {method.upper()} {url} left {denied_after - denied_before} refusal entries"
                )
    assert failures == []
    after_rows = (
        DrugLevel.objects.count(),
        DoseAdministration.objects.count(),
        TherapyCourse.objects.count(),
    )
    assert after_rows == before_rows
    other.recommendation.refresh_from_db()
    assert other.recommendation.status == "pending_review"


def test_the_refusal_entry_names_the_patient_and_why(other: Other) -> None:
    user = users()["clinician of another team"]
    client = login(Client(), user)
    assert client.get(f"/api/v1/courses/{other.course.public_id}/").status_code == 403
    entry = AuditEntry.objects.filter(action="access_denied", actor_id=user.pk).latest("seq")
    assert entry.patient_id == other.patient.public_id
    assert entry.reason == "not under the user's care"


def test_lists_and_the_review_queue_show_only_the_users_patients(other: Other) -> None:
    everyone = users()
    clinician = login(Client(), everyone["clinician of another team"])
    assert clinician.get("/api/v1/patients/").data["count"] == 0
    assert clinician.get("/api/v1/courses/", {"patient": str(other.patient.public_id)}).data["count"] == 0
    assert "ONC-7" not in clinician.get("/patients/", {"q": "Other"}).content.decode()
    pharmacist = login(Client(), everyone["pharmacist of another team"])
    queue = pharmacist.get(reverse("dosing:review_queue")).content.decode()
    assert str(other.course.public_id) not in queue


def test_the_own_team_sees_its_ward_and_its_patients(other: Other) -> None:
    oncologist = UserFactory(username="oncologist")  # the fixture's user
    client = login(Client(), oncologist)
    assert client.get(reverse("patients:detail", args=[other.patient.public_id])).status_code == 200
    assert AuditEntry.objects.filter(
        action="read", actor_id=oncologist.pk, patient_id=other.patient.public_id
    )


def test_a_hospital_wide_team_sees_every_patient(other: Other) -> None:
    tdm = UserFactory(username="tdm-pharmacist", roles=[Role.PHARMACIST])
    care_team(tdm, all_wards=True)
    client = login(Client(), tdm)
    assert client.get(f"/api/v1/patients/{other.patient.public_id}/").status_code == 200


def test_breaking_the_glass_opens_the_record_for_a_while_and_is_logged(other: Other, settings) -> None:
    user = users()["clinician of another team"]
    client = login(Client(), user)
    url = reverse("patients:detail", args=[other.patient.public_id])
    refused = client.get(url)
    assert refused.status_code == 403 and b"break the glass" in refused.content.lower()
    glass = reverse("patients:break_glass", args=[other.patient.public_id])
    assert client.post(glass, {"reason": "short"}).status_code == 403  # too short a reason: not opened
    opened = client.post(glass, {"reason": "cardiac arrest on my ward, patient transferred"})
    assert opened.status_code == 302
    assert client.get(url).status_code == 200
    entry = AuditEntry.objects.get(action="break_glass", actor_id=user.pk)
    assert entry.patient_id == other.patient.public_id
    assert entry.reason == "cardiac arrest on my ward, patient transferred"
    grant = other.patient.break_glass_accesses.get()
    lasts = grant.expires_at - grant.granted_at
    assert abs(lasts - dt.timedelta(hours=settings.BREAK_GLASS_HOURS)) < dt.timedelta(seconds=5)
    grant.expires_at = timezone.now() - dt.timedelta(seconds=1)
    grant.save()
    assert client.get(url).status_code == 403


def test_an_exact_mrn_search_offers_emergency_access(other: Other) -> None:
    client = login(Client(), users()["clinician of another team"])
    page = client.get("/patients/", {"q": "onc-7"}).content.decode()
    assert 'id="outside-care"' in page and str(other.patient.public_id) in page
    assert "Olga" not in page  # no clinical data before the glass is broken


def test_ids_in_urls_are_not_sequential(other: Other) -> None:
    assert str(other.patient.public_id) != str(other.patient.pk)
    assert len(str(other.course.public_id)) == 36
    client = login(Client(), UserFactory(username="oncologist"))
    assert client.get(f"/patients/{other.patient.pk}/").status_code == 404
    assert client.get(f"/api/v1/courses/{other.course.pk}/").status_code == 404


def test_an_unknown_id_is_a_404_and_logged(other: Other) -> None:
    user = users()["clinician of another team"]
    client = login(Client(), user)
    assert client.get("/api/v1/patients/6f1c1d52-0000-4000-8000-000000000000/").status_code == 404
    assert AuditEntry.objects.filter(
        action="access_denied", actor_id=user.pk, reason="no such record"
    ).exists()
