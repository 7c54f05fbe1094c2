"""Pharmacist review: approve, modify or reject a recommendation, signed with the pharmacist's password."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from dosing import services
from dosing.models import Recommendation
from tests.auth import allow_codes_ahead, login, next_totp_code
from tests.factories import PASSWORD
from tests.throttle_counts import rates

pytestmark = pytest.mark.django_db


@pytest.fixture
def recommendation(course, clinician, django_capture_on_commit_callbacks, celery_eager) -> Recommendation:
    start = timezone.now() - dt.timedelta(hours=20)
    with django_capture_on_commit_callbacks(execute=True):
        services.dose_record(
            course=course,
            given_at=start,
            amount_mg=1000,
            route="iv_infusion",
            infusion_duration_h=1,
            user=clinician,
        )
        services.level_record(
            course=course, sampled_at=start + dt.timedelta(hours=11.5), value=7.0, unit="mg/L", user=clinician
        )
    return Recommendation.objects.get(course=course, status=Recommendation.Status.PENDING_REVIEW)


def test_a_pharmacist_approves_with_a_signature(recommendation, pharmacist) -> None:
    reviewed = services.recommendation_review(
        recommendation=recommendation,
        user=pharmacist,
        decision="approve",
        password=PASSWORD,
        otp_code=next_totp_code(pharmacist),
    )
    assert reviewed.status == Recommendation.Status.APPROVED
    assert reviewed.reviewed_by == pharmacist
    assert reviewed.final_regimen == reviewed.regimen


def test_a_wrong_signature_changes_nothing(recommendation, pharmacist) -> None:
    with pytest.raises(ValidationError, match="signature"):
        services.recommendation_review(
            recommendation=recommendation,
            user=pharmacist,
            decision="approve",
            password="wrong",
            otp_code=next_totp_code(pharmacist),
        )
    recommendation.refresh_from_db()
    assert recommendation.status == Recommendation.Status.PENDING_REVIEW


def test_a_modification_states_the_regimen_and_why(recommendation, pharmacist) -> None:
    allow_codes_ahead(pharmacist, 3)
    with pytest.raises(ValidationError, match="regimen"):
        services.recommendation_review(
            recommendation=recommendation,
            user=pharmacist,
            decision="modify",
            password=PASSWORD,
            otp_code=next_totp_code(pharmacist),
            note="renal",
        )
    change = {"dose_mg": 1000, "interval_h": 12, "duration_h": 1}
    with pytest.raises(ValidationError, match="forecast this change before signing"):
        services.recommendation_review(
            recommendation=recommendation,
            user=pharmacist,
            decision="modify",
            password=PASSWORD,
            otp_code=next_totp_code(pharmacist),
            note="rounded to the vial",
            final_regimen=change,
        )
    preview = services.modification_preview(
        recommendation=recommendation, user=pharmacist, final_regimen=change
    )
    other = services.modification_preview(
        recommendation=recommendation, user=pharmacist, final_regimen={**change, "dose_mg": 950}
    )
    assert preview["preview_token"] != other["preview_token"]  # the token binds this very regimen
    reviewed = services.recommendation_review(
        recommendation=recommendation,
        user=pharmacist,
        decision="modify",
        password=PASSWORD,
        otp_code=next_totp_code(pharmacist),
        note="rounded to the vial",
        final_regimen=change,
        forecast_token=preview["preview_token"],
    )
    assert reviewed.status == Recommendation.Status.MODIFIED
    assert reviewed.final_regimen["dose_mg"] == 1000
    assert reviewed.final_figures["pta"] == preview["pta"]  # what was signed is what was seen


def test_clinicians_do_not_review(recommendation, clinician) -> None:
    with pytest.raises(PermissionDenied):
        services.recommendation_review(
            recommendation=recommendation, user=clinician, decision="approve", password=PASSWORD
        )


def test_the_queue_and_the_signed_review_through_the_pages(client, recommendation, pharmacist) -> None:
    login(client, pharmacist)
    queue = client.get(reverse("dosing:review_queue"))
    order = recommendation.update.results["recommendation"]["order"]
    assert order["text"] in queue.content.decode()  # the proposed order, next to the current regimen
    url = reverse(
        "dosing:recommendation_review", args=[recommendation.course.public_id, recommendation.public_id]
    )
    refused = client.post(
        url, {"decision": "reject", "password": PASSWORD, "otp_code": next_totp_code(pharmacist)}
    )
    assert refused.status_code == 400
    assert "say why" in " ".join(refused.context["review_form"].errors["note"])
    code = next_totp_code(pharmacist)
    done = client.post(
        url, {"decision": "reject", "password": PASSWORD, "otp_code": code, "note": "patient discharged"}
    )
    assert done.status_code == 302
    recommendation.refresh_from_db()
    assert recommendation.status == Recommendation.Status.REJECTED


def test_the_review_pages_share_the_engine_rate_with_the_api(client, recommendation, pharmacist) -> None:
    """Forecasting a change and signing run the engine: over the user's engine rate the page answers 429 with
    Retry-After and says so on the form, nothing is computed or signed, and the code typed is not spent."""
    login(client, pharmacist)
    url = reverse(
        "dosing:recommendation_review", args=[recommendation.course.public_id, recommendation.public_id]
    )
    change = {"preview": "1", "decision": "modify", "dose_mg": "750", "interval_h": "12", "duration_h": "1"}
    with rates(engine="1/minute"):
        assert client.post(url, change).status_code == 200  # the one forecast the rate allows
        throttled = client.post(url, change)
        assert throttled.status_code == 429 and 0 < int(throttled["Retry-After"]) <= 60
        assert throttled.context["review_preview"] is None
        errors = " ".join(throttled.context["review_form"].non_field_errors())
        assert "Too many computations in a short time: at most 1 per minute" in errors
        assert "press Forecast the change again" in errors
        code = next_totp_code(pharmacist)
        signed = client.post(url, {"decision": "approve", "password": PASSWORD, "otp_code": code})
        assert signed.status_code == 429
        assert "sign again with a new code" in " ".join(signed.context["review_form"].non_field_errors())
        recommendation.refresh_from_db()
        assert recommendation.status == Recommendation.Status.PENDING_REVIEW  # nothing signed
    done = client.post(url, {"decision": "approve", "password": PASSWORD, "otp_code": code})
    assert done.status_code == 302  # the refused attempt did not spend the code
    recommendation.refresh_from_db()
    assert recommendation.status == Recommendation.Status.APPROVED
