"""Hostile and implausible input: a 400 naming the field, and nothing stored.

Each case here once gave a 500 or stored nonsense (issue 14): a NUL byte or a non-ASCII digit in a query
string, ``true`` as a dose, 1e-300 mg, a 1e-300 h infusion, an LLOQ of 1e308, a 1 MB course target, JSON
nested 5,000 deep, and what-if values that overflow the engine's arithmetic.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from tests.dosing.api_helpers import api, counts

pytestmark = pytest.mark.django_db
COURSES = "/api/v1/courses/"
TARGET = {"metric": "trough", "low": 5, "high": 10}


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/v1/patients/", "search=a%00"),
        ("/api/v1/catalog/model-versions/", "drug=%00"),
        ("/api/v1/catalog/model-versions/", "status=%00"),
        (COURSES, "status=%00"),
        (COURSES, "patient=%C2%B2"),  # '²': isdigit() says yes
        (COURSES, "page=%D9%A3"),  # Arabic-Indic 3: int() says 3
    ],
)
def test_a_nul_byte_or_a_non_ascii_digit_in_a_query_is_a_400(clinician, path, query) -> None:
    response = api(clinician).get(f"{path}?{query}")
    assert response.status_code == 400, response.content
    body = response.json()
    key = query.split("=")[0]
    assert body[key], body


def test_a_nul_byte_in_a_page_query_is_a_400_too(client, clinician) -> None:
    client.force_login(clinician)
    response = client.get("/patients/?q=a%00")
    assert response.status_code == 400
    assert b"control characters" in response.content


@pytest.mark.parametrize("status", ["bogus", "ACTIVE"])
def test_an_unknown_status_filter_is_a_400(clinician, course, status) -> None:
    response = api(clinician).get(COURSES, {"status": status})
    assert response.status_code == 400
    assert "active" in str(response.data["status"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount_mg", True),
        ("amount_mg", 1e-300),
        ("amount_mg", 1e300),
        ("infusion_duration_h", 1e-300),
        ("infusion_duration_h", 1e6),
        ("infusion_duration_h", False),
    ],
)
def test_a_dose_outside_its_physical_range_is_refused(clinician, course, field, value) -> None:
    before = counts()
    payload = {
        "given_at": (timezone.now() - dt.timedelta(hours=2)).isoformat(),
        "amount_mg": 1000,
        "route": "iv_infusion",
        "infusion_duration_h": 1,
        field: value,
    }
    response = api(clinician).post(f"{COURSES}{course.public_id}/doses/", payload, format="json")
    assert response.status_code == 400, response.data
    assert field in response.data
    assert counts() == before


@pytest.mark.parametrize(
    "changes",
    [
        {"value": True},
        {"value": 1e308},
        {"value": -1e-300},
        {"below_lloq": True, "value": None, "lloq": 1e308},
        {"below_lloq": True, "value": None, "lloq": 1e-300},
        {"below_lloq": True, "value": None, "lloq": True},
    ],
)
def test_a_level_outside_its_physical_range_is_refused(clinician, dosed_course, changes) -> None:
    before = counts()
    payload = {
        "sampled_at": (timezone.now() - dt.timedelta(hours=1)).isoformat(),
        "value": 7.0,
        "unit": "mg/L",
        **changes,
    }
    response = api(clinician).post(f"{COURSES}{dosed_course.public_id}/levels/", payload, format="json")
    assert response.status_code == 400, response.data
    field = "lloq" if "lloq" in changes else "value"
    assert field in response.data, response.data
    assert counts() == before


def test_the_services_refuse_the_same_values_whoever_calls_them(clinician, dosed_course) -> None:
    """The source of the rule: a form, a script or the API meet the same range."""
    from django.core.exceptions import ValidationError

    from dosing import services

    with pytest.raises(ValidationError) as refused:
        services.level_record(
            course=dosed_course,
            sampled_at=timezone.now() - dt.timedelta(hours=1),
            value=None,
            below_lloq=True,
            lloq=1e308,
            unit="mg/L",
            user=clinician,
        )
    assert "lloq" in refused.value.message_dict
    with pytest.raises(ValidationError) as refused:
        services.dose_record(
            course=dosed_course,
            given_at=timezone.now() - dt.timedelta(hours=1),
            amount_mg=1000,
            route="iv_infusion",
            infusion_duration_h=1e-300,
            user=clinician,
        )
    assert "infusion_duration_h" in refused.value.message_dict


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("target", {**TARGET, "notes": ["x"] * 200_000}),  # about 1 MB
        ("target", {"metric": "trough", "low": 5, "high": 10, "a": {"b": {"c": {"d": {}}}}}),
        ("mic_mg_per_l", True),
        ("mic_mg_per_l", 1e300),
    ],
)
def test_a_course_with_an_implausible_target_or_mic_is_refused(
    clinician, patient, published_version, field, value
) -> None:
    before = counts()
    payload = {
        "patient": str(patient.public_id),
        "model_version": published_version.pk,
        "indication": "sepsis",
        "target": TARGET,
        field: value,
    }
    response = api(clinician).post(COURSES, payload, format="json")
    assert response.status_code == 400, str(response.data)[:300]
    assert field in response.data
    assert counts() == before


@pytest.mark.parametrize("depth", [40, 5_000, 200_000])
def test_json_nested_too_deep_is_a_400(clinician, dosed_course, depth) -> None:
    before = counts()
    body = '{"sampled_at": "2026-01-01T00:00:00", "unit": "mg/L", "value": ' + "[" * depth + "]" * depth + "}"
    response = api(clinician).post(
        f"{COURSES}{dosed_course.public_id}/levels/", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert "nested deeper" in response.data["detail"]
    assert counts() == before


def test_json_nested_within_the_limit_is_parsed(clinician, dosed_course) -> None:
    """The limit refuses depth, not JSON: a body nested 30 deep reaches the serializer (a field error)."""
    body = json.dumps({"sampled_at": "x", "unit": "mg/L", "value": json.loads("[" * 30 + "]" * 30)})
    response = api(clinician).post(
        f"{COURSES}{dosed_course.public_id}/levels/", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert "value" in response.data and "sampled_at" in response.data


@pytest.mark.parametrize(
    "changes",
    [
        {"dose_mg": 1e308},
        {"dose_mg": True},
        {"interval_h": 1e-300},
        {"interval_h": 1e308},
        {"duration_h": 1e308},
        {"n_doses": 10**30},
    ],
)
def test_overflowing_what_if_values_are_a_400(clinician, dosed_course, changes) -> None:
    payload = {"dose_mg": 1000, "interval_h": 12, "duration_h": 1, "route": "iv_infusion", **changes}
    response = api(clinician).post(f"{COURSES}{dosed_course.public_id}/what-if/", payload, format="json")
    assert response.status_code == 400, response.data
    assert set(changes) <= set(response.data), response.data


def test_the_what_if_page_refuses_the_same_ranges(client, clinician, dosed_course) -> None:
    client.force_login(clinician)
    response = client.get(
        f"/courses/{dosed_course.public_id}/what-if/",
        {"dose_mg": "1e308", "interval_h": "0.01", "duration_h": "1e-300", "route": "iv_infusion"},
    )
    assert response.status_code == 200
    form = response.context["what_if_form"]
    assert {"dose_mg", "interval_h", "duration_h"} <= set(form.errors)
