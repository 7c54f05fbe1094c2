"""API throttles (``mipd_web.throttles``): the engine endpoints share a per-user rate, every endpoint has the
user and anonymous rates, a throttled request answers 429 with Retry-After, and the schema says so.

Rates are set per test with ``override_settings``: the throttles read them when a request arrives. A refused
request (400, 404) counts too: DRF throttles before the view runs, so an invalid body costs the same slot.
"""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from drf_spectacular.generators import SchemaGenerator

from mipd_web.throttles import AnonRateThrottle
from tests.auth import login
from tests.dosing.api_helpers import api
from tests.throttle_counts import rates

pytestmark = pytest.mark.django_db
INVALID = {"dose_mg": "x"}  # refused by the serializer: fast, and still counted


def _what_if(client, course):
    return client.post(f"/api/v1/courses/{course.public_id}/what-if/", INVALID, format="json")


def _preview(client):
    return client.post(f"/api/v1/recommendations/{uuid.uuid4()}/preview-change/", {}, format="json")


def test_the_engine_rate_is_per_user_across_the_engine_endpoints(clinician, pharmacist, course) -> None:
    client = api(clinician)
    with rates(engine="3/minute"):
        assert [_what_if(client, course).status_code for _ in range(2)] == [400, 400]
        assert _preview(client).status_code == 404  # the third engine request, on another endpoint
        throttled = _what_if(client, course)
        assert throttled.status_code == 429
        assert 0 < int(throttled["Retry-After"]) <= 60
        assert "available in" in throttled.json()["detail"]
        assert _preview(client).status_code == 429
        assert client.get("/api/v1/courses/").status_code == 200  # other endpoints: the user rate only
        assert _what_if(api(pharmacist), course).status_code == 400  # another user has their own count


def test_the_user_rate_covers_every_endpoint(clinician) -> None:
    client = api(clinician)
    with rates(user="2/minute"):
        assert [client.get("/api/v1/courses/").status_code for _ in range(2)] == [200, 200]
        response = client.get("/api/v1/patients/")
        assert response.status_code == 429 and response["Retry-After"]


def test_the_rates_are_read_when_a_request_arrives() -> None:
    """DRF's own classes keep the rates of import time; a changed setting reaches these at once."""
    request = RequestFactory().get("/api/v1/courses/", REMOTE_ADDR="192.0.2.7")
    request.user = AnonymousUser()
    with rates(anon="1/minute"):
        throttle = AnonRateThrottle()
        assert throttle.rate == "1/minute"
        assert throttle.allow_request(request, None)
        assert not AnonRateThrottle().allow_request(request, None)
    with rates(anon="5/minute"):
        assert AnonRateThrottle().rate == "5/minute"


ENGINE_OPERATIONS = {
    ("/api/v1/courses/{id}/what-if/", "post"),
    ("/api/v1/recommendations/{id}/preview-change/", "post"),
    ("/api/v1/recommendations/{id}/review/", "post"),
    ("/api/v1/catalog/model-versions/{id}/{action}/", "post"),
}


def test_the_schema_documents_429_and_503_on_the_engine_endpoints() -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    paths = schema["paths"]
    for path, method in ENGINE_OPERATIONS:
        responses = paths[path][method]["responses"]
        assert {"200", "429", "503"} <= responses.keys(), (path, sorted(responses))
        assert "Retry-After" in responses["429"]["description"]
        assert "THROTTLE_ENGINE" in responses["429"]["description"]
    others = paths["/api/v1/courses/"]["get"]["responses"]  # the user rate's 429 (mipd_web.api_errors)
    assert "503" not in others and "THROTTLE_ENGINE" not in others["429"]["description"]


PAGE_REGIMEN = {"dose_mg": "1000", "interval_h": "12", "duration_h": "1", "route": "iv_infusion"}


def _what_if_page(client, course, regimen=PAGE_REGIMEN):
    return client.get(f"/courses/{course.public_id}/what-if/", regimen)


def test_the_what_if_page_shares_the_engine_rate_with_the_api(
    client, clinician, pharmacist, dosed_course
) -> None:
    """The page's forecast counts as an engine request of its user, together with the API's; over the rate
    the page answers 429 with Retry-After and says on the form what to do, with nothing computed."""
    client.force_login(clinician)
    with rates(engine="2/minute"):
        first = _what_if_page(client, dosed_course)
        assert first.status_code == 200 and first.context["what_if"] is not None
        assert _what_if(api(clinician), dosed_course).status_code == 400  # the second engine request
        throttled = _what_if_page(client, dosed_course)
        assert throttled.status_code == 429
        wait_s = int(throttled["Retry-After"])
        assert 0 < wait_s <= 60
        assert throttled.context["what_if"] is None  # no forecast shown, nor computed
        errors = throttled.context["what_if_form"].non_field_errors()
        assert errors == [
            "Too many forecasts in a short time: at most 2 per minute for each user, on the pages and the "
            f"API together. Nothing was computed. Wait {wait_s} seconds, then press Forecast again."
        ]
        html = throttled.content.decode()
        assert 'role="alert"' in html and f"Wait {wait_s} seconds" in html
        assert 'value="1000"' in html  # the typed regimen stays in the form
        assert _what_if(api(clinician), dosed_course).status_code == 429  # and the API is refused too
        login(client, pharmacist)  # another user has their own count
        assert _what_if_page(client, dosed_course).status_code == 200


def test_a_what_if_form_error_on_the_page_costs_no_engine_request(client, clinician, dosed_course) -> None:
    client.force_login(clinician)
    with rates(engine="1/minute"):
        refused = _what_if_page(client, dosed_course, {**PAGE_REGIMEN, "dose_mg": "x"})
        assert refused.status_code == 200 and "dose_mg" in refused.context["what_if_form"].errors
        assert _what_if_page(client, dosed_course).status_code == 200
        assert _what_if_page(client, dosed_course).status_code == 429
