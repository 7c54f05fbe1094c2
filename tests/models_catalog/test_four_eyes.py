"""Four eyes on everything that changes dosing: drug limits (always a complete set), target protocols and
retiring a version need a second curator, in the services and through the API."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from rest_framework.test import APIClient

from models_catalog import services
from models_catalog.models import CatalogChangeRequest, Drug
from tests.auth import login

pytestmark = pytest.mark.django_db
TARGET = {"metric": "auc24", "low": 400, "high": 600}


def limits(**changes) -> dict:
    values = {name: None for name in Drug.LIMIT_FIELDS}
    values.update(
        strengths_mg=[], interval_options_h=[12, 24], continuous_infusion=False, limits_source="SmPC"
    )
    values.update(changes)
    return values


def test_one_curator_alone_changes_no_limit(drug, curator) -> None:
    with pytest.raises(PermissionDenied, match="second curator"):
        services.drug_limits_update(drug=drug, user=curator, **limits(max_single_dose_mg=2000))
    request = services.drug_limits_propose(
        drug=drug, user=curator, reason="committee", **limits(max_single_dose_mg=2000)
    )
    drug.refresh_from_db()
    assert drug.max_single_dose_mg is None
    with pytest.raises(PermissionDenied, match="four-eyes"):
        services.change_request_approve(change_request=request, user=curator)


def test_a_second_curator_applies_exactly_what_was_proposed(drug, curator, second_curator) -> None:
    request = services.drug_limits_propose(
        drug=drug,
        user=curator,
        reason="committee",
        **limits(max_single_dose_mg=2000, max_infusion_rate_mg_per_h=1000),
    )
    services.change_request_approve(change_request=request, user=second_curator)
    drug.refresh_from_db()
    assert (drug.max_single_dose_mg, drug.max_infusion_rate_mg_per_h, drug.interval_options_h) == (
        2000,
        1000,
        [12, 24],
    )
    request.refresh_from_db()
    assert (request.status, request.decided_by) == ("approved", second_curator)


def test_a_partial_set_of_limits_is_refused(drug, curator) -> None:
    with pytest.raises(ValidationError, match=r"every limit .* missing: .*max_infusion_rate_mg_per_h"):
        services.drug_limits_propose(
            drug=drug, user=curator, reason="x", max_single_dose_mg=2000, limits_source="x"
        )
    assert not CatalogChangeRequest.objects.exists()


def test_a_proposal_made_stale_by_another_change_is_refused(drug, curator, second_curator) -> None:
    first = services.drug_limits_propose(
        drug=drug, user=curator, reason="a", **limits(max_single_dose_mg=2000)
    )
    second = services.drug_limits_propose(
        drug=drug, user=second_curator, reason="b", **limits(max_single_dose_mg=2500)
    )
    first.refresh_from_db()
    assert first.status == "superseded"
    services.change_request_approve(change_request=second, user=curator)
    drug.refresh_from_db()
    assert drug.max_single_dose_mg == 2500


def test_a_target_protocol_needs_a_second_curator(drug, curator, second_curator) -> None:
    with pytest.raises(PermissionDenied):
        services.target_protocol_save(drug=drug, indication="sepsis", target=TARGET, source="x", user=curator)
    request = services.target_protocol_propose(
        drug=drug, indication="sepsis", target=TARGET, source="guideline 2020", user=curator, reason="new"
    )
    assert not drug.target_protocols.exists()
    services.change_request_approve(change_request=request, user=second_curator)
    assert drug.target_protocols.get().target == TARGET


def test_a_rejection_says_why_and_the_author_may_withdraw(drug, curator, second_curator) -> None:
    request = services.drug_limits_propose(
        drug=drug, user=curator, reason="a", **limits(max_single_dose_mg=2000)
    )
    with pytest.raises(ValidationError, match="say why"):
        services.change_request_reject(change_request=request, user=second_curator, note="")
    services.change_request_reject(change_request=request, user=second_curator, note="no source given")
    request.refresh_from_db()
    assert request.status == "rejected"
    own = services.drug_limits_propose(drug=drug, user=curator, reason="b", **limits(max_single_dose_mg=2000))
    services.change_request_reject(change_request=own, user=curator, note="")
    own.refresh_from_db()
    assert own.status == "withdrawn"


def test_the_api_lists_and_decides_change_requests(drug, curator, second_curator, clinician) -> None:
    request = services.drug_limits_propose(
        drug=drug, user=curator, reason="a", **limits(max_single_dose_mg=2000)
    )
    api = login(APIClient(), second_curator)
    listed = api.get("/api/v1/catalog/change-requests/")
    assert [row["id"] for row in listed.data] == [request.pk]
    assert listed.data[0]["proposed"]["max_single_dose_mg"] == 2000
    own = login(APIClient(), curator).post(f"/api/v1/catalog/change-requests/{request.pk}/approve/", {})
    assert own.status_code == 403
    assert login(APIClient(), clinician).get("/api/v1/catalog/change-requests/").status_code == 403
    approved = api.post(f"/api/v1/catalog/change-requests/{request.pk}/approve/", {}, format="json")
    assert approved.status_code == 200 and approved.data["status"] == "approved"
    drug.refresh_from_db()
    assert drug.max_single_dose_mg == 2000
