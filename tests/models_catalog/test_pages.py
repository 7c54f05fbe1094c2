"""Curator and clinician pages: upload with field-level errors, the model card, preview, export, actions."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from models_catalog import services
from models_catalog.engine_adapter import canonical_sha256
from models_catalog.forms import MAX_MODEL_FILE_BYTES
from models_catalog.models import ModelVersion
from tests.auth import login
from tests.models_catalog.documents import library_entry, model_document
from tests.throttle_counts import rates

pytestmark = pytest.mark.django_db
UPLOAD = reverse("models_catalog:version_upload")


def upload(client, content: bytes, *, version: str = "") -> object:
    return client.post(UPLOAD, {"file": SimpleUploadedFile("model.json", content), "version": version})


def field_errors(response, field: str) -> str:
    return " ".join(response.context["form"].errors.get(field, []))


def test_a_curator_uploads_a_library_entry_and_lands_on_its_card(client, drug, curator) -> None:
    login(client, curator)
    response = upload(client, json.dumps(library_entry()).encode())
    version = ModelVersion.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("models_catalog:version_detail", args=[version.pk])
    assert version.version == "1.0.0"
    assert version.model_card["limitations"] == ["made for tests"]
    page = client.get(response.url)
    assert b"Test A. A model for tests" in page.content
    assert b"made for tests" in page.content
    assert b"Not published" in page.content


def test_pasted_text_works_like_a_file(client, drug, curator) -> None:
    login(client, curator)
    response = client.post(UPLOAD, {"text": json.dumps(model_document()), "version": "0.1.0"})
    assert response.status_code == 302
    assert ModelVersion.objects.get().version == "0.1.0"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"format": "mipd-model/1", "id": ', "malformed JSON at line 1"),
        (
            json.dumps({**model_document(), "parameters": {"CL": "TVCL * foo(2)", "V": "TVV"}}).encode(),
            "parameters.CL",
        ),
        (
            json.dumps(
                {**model_document(), "covariates": {"WT": {"unit": "kg", "min": 120, "max": 40}}}
            ).encode(),
            "range is inverted",
        ),
        (b"\xff\xfe not text", "not UTF-8"),
    ],
)
def test_bad_files_get_a_clear_field_error_and_nothing_is_saved(
    client, drug, curator, content, expected
) -> None:
    login(client, curator)
    response = upload(client, content, version="1.0.0")
    assert response.status_code == 200
    assert expected in field_errors(response, "file")
    assert not ModelVersion.objects.exists()


def test_a_file_over_the_size_limit_is_refused(client, drug, curator) -> None:
    login(client, curator)
    document = model_document()
    document["title"] = "x" * MAX_MODEL_FILE_BYTES
    response = upload(client, json.dumps(document).encode(), version="1.0.0")
    assert "the limit is 256 KiB" in field_errors(response, "file")
    assert not ModelVersion.objects.exists()


def test_clinicians_cannot_open_the_upload_page(client, clinician) -> None:
    login(client, clinician)
    assert client.get(UPLOAD).status_code == 403


def test_two_curators_publish_through_the_pages(client, drug, curator, second_curator) -> None:
    login(client, curator)
    upload(client, json.dumps(library_entry()).encode())
    version = ModelVersion.objects.get()

    def act(action: str, **data: str):
        return client.post(
            reverse("models_catalog:version_action", args=[version.pk, action]), data, follow=True
        )

    assert b"Validation passed" in act("validate").content
    act("request-publication")
    refused = act("approve")
    assert b"four-eyes" in refused.content
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.VALIDATED
    login(client, second_curator)
    act("approve")
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.PUBLISHED
    page = client.get(reverse("models_catalog:version_detail", args=[version.pk]))
    assert b"Published by" in page.content
    assert client.get(reverse("models_catalog:version_edit", args=[version.pk])).status_code == 302


def _published(curator, second_curator) -> ModelVersion:
    entry = library_entry()
    version = services.model_version_create(
        document=entry["model"],
        version="1.0.0",
        user=curator,
        reference_checks=entry["reference_checks"],
        covariate_sources=entry["covariate_sources"],
    )
    services.model_version_validate(model_version=version, user=curator)
    services.model_version_request_publication(model_version=version, user=curator)
    return services.model_version_approve_publication(model_version=version, user=second_curator)


def test_a_clinician_reads_the_model_card_of_a_published_version_only(
    client, drug, curator, second_curator, clinician
) -> None:
    version = _published(curator, second_curator)
    hidden = services.model_version_new_draft(source=version, version="2.0.0", user=curator)
    login(client, clinician)
    page = client.get(reverse("models_catalog:version_detail", args=[version.pk]))
    assert page.status_code == 200
    assert b"Population the model was built on" in page.content
    assert b"40 \xe2\x80\x93 120" in page.content  # WT validity range
    assert b"Curation" not in page.content
    assert client.get(reverse("models_catalog:version_detail", args=[hidden.pk])).status_code == 404
    index = client.get(reverse("models_catalog:index"))
    assert b"Test drug, one compartment" in index.content


def test_export_returns_the_stored_file_with_its_hash(
    client, drug, curator, second_curator, clinician
) -> None:
    version = _published(curator, second_curator)
    login(client, clinician)
    response = client.get(reverse("models_catalog:version_export", args=[version.pk]))
    assert response["Content-Disposition"].startswith("attachment")
    document = json.loads(response.content)
    assert document == model_document()
    assert response["X-Model-SHA256"] == canonical_sha256(document) == version.document_sha256


def test_preview_draws_the_typical_curve_and_band(client, drug, curator, second_curator, clinician) -> None:
    version = _published(curator, second_curator)
    login(client, clinician)
    url = reverse("models_catalog:version_preview", args=[version.pk])
    response = client.get(
        url,
        {"route": "iv_bolus", "dose_mg": 1000, "interval_h": 12, "doses": 3, "duration_h": "", "cov_WT": 70},
    )
    assert response.status_code == 200
    assert b"<svg" in response.content
    assert b"90 % prediction band" in response.content
    outside = client.get(
        url,
        {"route": "iv_bolus", "dose_mg": 1000, "interval_h": 12, "doses": 3, "duration_h": "", "cov_WT": 200},
    )
    assert b"outside" in outside.content  # the engine's validity-range warning is shown


def _approve_pending(client, second_curator) -> None:
    from models_catalog.models import CatalogChangeRequest

    login(client, second_curator)
    change = CatalogChangeRequest.objects.get(status="pending")
    index = client.get(reverse("models_catalog:index")).content.decode()
    assert f'id="change-{change.pk}"' in index
    decided = client.post(reverse("models_catalog:change_request_decide", args=[change.pk, "approve"]))
    assert decided.status_code == 302
    change.refresh_from_db()
    assert change.status == "approved", change.status


def test_a_target_protocol_is_proposed_checked_by_the_engine_and_applied_by_a_second_curator(
    client, drug, curator, second_curator
) -> None:
    login(client, curator)
    url = reverse("models_catalog:target_new", args=["testdrug"])
    bad = client.post(
        url,
        {
            "indication": "sepsis",
            "target": '{"metric": "auc24", "low": 600, "high": 400}',
            "source": "local",
            "reason": "new protocol",
        },
    )
    assert "exceeds high" in " ".join(bad.context["form"].errors["target"])
    good = client.post(
        url,
        {
            "indication": "sepsis",
            "target": '{"metric": "auc24", "low": 400, "high": 600}',
            "source": "local decision 2026",
            "active": "on",
            "reason": "the committee's new target",
        },
    )
    assert good.status_code == 302
    assert not drug.target_protocols.exists()  # not before a second curator approves
    _approve_pending(client, second_curator)
    assert drug.target_protocols.get().target == {"metric": "auc24", "low": 400, "high": 600}


LIMITS_POST = {
    "dose_step_mg": "50",
    "strengths_mg": "",
    "max_single_dose_mg": "2000",
    "max_daily_dose_mg": "",
    "max_daily_dose_mg_per_kg": "",
    "max_infusion_rate_mg_per_h": "",
    "usual_infusion_duration_h": "",
    "standard_concentration_mg_per_ml": "",
    "interval_options_h": "8, 12",
    "continuous_infusion": "no",
    "max_plausible_concentration": "",
    "limits_source": "local committee 2026-11",
    "change_reason": "the committee's decision",
}


def test_drug_limits_are_proposed_as_a_whole_and_applied_by_a_second_curator(
    client, drug, curator, second_curator, clinician
) -> None:
    from models_catalog.models import CatalogEvent

    url = reverse("models_catalog:drug_limits", args=["testdrug"])
    login(client, clinician)
    assert client.get(url).status_code == 403
    login(client, curator)
    response = client.post(url, LIMITS_POST)
    assert response.status_code == 302
    drug.refresh_from_db()
    assert drug.max_single_dose_mg is None  # proposed only
    _approve_pending(client, second_curator)
    drug.refresh_from_db()
    assert drug.max_single_dose_mg == 2000
    assert drug.interval_options_h == [8.0, 12.0]
    event = CatalogEvent.objects.get(action="drug_limits_edited")
    assert event.actor == second_curator
    assert event.details["changes"]["max_single_dose_mg"] == {"before": None, "after": 2000.0}


def test_a_post_carrying_only_one_limit_is_refused_and_blanks_nothing(client, drug, curator) -> None:
    from models_catalog.models import CatalogChangeRequest

    drug.max_infusion_rate_mg_per_h = 1000
    drug.max_plausible_concentration = 200
    drug.interval_options_h = [12, 24]
    drug.save()
    login(client, curator)
    url = reverse("models_catalog:drug_limits", args=["testdrug"])
    response = client.post(url, {"max_single_dose_mg": "2000", "change_reason": "x", "limits_source": "x"})
    assert response.status_code == 200
    assert "complete set" in " ".join(response.context["form"].non_field_errors())
    assert not CatalogChangeRequest.objects.exists()
    drug.refresh_from_db()
    assert (drug.max_infusion_rate_mg_per_h, drug.max_plausible_concentration, drug.interval_options_h) == (
        1000,
        200,
        [12, 24],
    )


def test_the_preview_and_validation_pages_share_the_engine_rate_with_the_api(
    client, drug, curator, second_curator
) -> None:
    version = _published(curator, second_curator)
    draft = services.model_version_new_draft(source=version, version="2.0.0", user=curator)
    login(client, curator)
    url = reverse("models_catalog:version_preview", args=[version.pk])
    query = {
        "route": "iv_bolus",
        "dose_mg": 1000,
        "interval_h": 12,
        "doses": 3,
        "duration_h": "",
        "cov_WT": 70,
    }
    validate = reverse("models_catalog:version_action", args=[draft.pk, "validate"])
    with rates(engine="1/minute"):
        assert b"<svg" in client.get(url, query).content
        throttled = client.get(url, query)
        assert throttled.status_code == 429 and 0 < int(throttled["Retry-After"]) <= 60
        assert b"<svg" not in throttled.content
        assert b"press Simulate again" in throttled.content
        refused = client.post(validate, follow=True)
        assert b"press Run validation again" in refused.content
        draft.refresh_from_db()
        assert draft.status == ModelVersion.Status.DRAFT  # not validated: the engine did not run
