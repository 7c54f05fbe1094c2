"""The life of a model version: validation, four-eyes publishing, immutability, retirement."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from models_catalog import selectors, services
from models_catalog.engine_adapter import canonical_sha256
from models_catalog.models import CatalogEvent, ImmutableVersionError, ModelVersion
from tests.models_catalog.documents import library_entry, model_document, reference_checks

Status = ModelVersion.Status
pytestmark = pytest.mark.django_db


def draft(user, **overrides) -> ModelVersion:
    entry = library_entry(**overrides)
    return services.model_version_create(
        document=entry["model"],
        version=entry["version"],
        user=user,
        model_card=entry["model_card"],
        reference_checks=entry["reference_checks"],
        covariate_sources=entry["covariate_sources"],
        transcription=entry["transcription"],
    )


def published(drug, curator, second_curator) -> ModelVersion:
    version = draft(curator)
    assert services.model_version_validate(model_version=version, user=curator).success
    services.model_version_request_publication(model_version=version, user=curator)
    return services.model_version_approve_publication(model_version=version, user=second_curator)


def test_a_draft_stores_the_document_and_its_canonical_hash(drug, curator) -> None:
    version = draft(curator)
    assert version.status == Status.DRAFT
    assert version.document == model_document()
    reordered = dict(reversed(list(model_document().items())))  # key order must not change the hash
    assert version.document_sha256 == canonical_sha256(reordered)
    assert version.citation_text.startswith("Test A.")
    assert version.doi == "10.0000/test"


def test_validation_reproducing_the_reference_values_moves_a_draft_to_validated(drug, curator) -> None:
    version = draft(curator)
    run = services.model_version_validate(model_version=version, user=curator)
    version.refresh_from_db()
    assert run.success, run.message
    assert [result["passed"] for result in run.results] == [True, True]
    assert run.document_sha256 == version.document_sha256
    assert version.status == Status.VALIDATED


def test_a_failing_validation_run_blocks_publishing(drug, curator, second_curator) -> None:
    version = draft(curator, reference_checks=reference_checks(expected_at_6_h=99.0))
    run = services.model_version_validate(model_version=version, user=curator)
    assert not run.success
    assert run.results[1]["passed"] is False
    version.refresh_from_db()
    assert version.status == Status.DRAFT
    with pytest.raises(ValidationError, match="only a validated version"):
        services.model_version_request_publication(model_version=version, user=curator)
    with pytest.raises(ValidationError):
        services.model_version_approve_publication(model_version=version, user=second_curator)
    assert not ModelVersion.objects.published().exists()


def test_a_version_without_reference_checks_cannot_be_validated(drug, curator) -> None:
    version = draft(curator, reference_checks=[])
    run = services.model_version_validate(model_version=version, user=curator)
    assert not run.success
    assert "no reference checks" in run.message


def test_four_eyes_the_requesting_curator_cannot_approve(drug, curator, second_curator) -> None:
    version = draft(curator)
    services.model_version_validate(model_version=version, user=curator)
    services.model_version_request_publication(model_version=version, user=curator)
    with pytest.raises(PermissionDenied, match="four-eyes"):
        services.model_version_approve_publication(model_version=version, user=curator)
    version = services.model_version_approve_publication(model_version=version, user=second_curator)
    assert version.status == Status.PUBLISHED
    assert version.published_by == second_curator
    assert version.publication_requested_by == curator


def test_four_eyes_the_author_cannot_approve_what_another_curator_submitted(
    drug, curator, second_curator
) -> None:
    version = draft(curator)
    services.model_version_validate(model_version=version, user=curator)
    services.model_version_request_publication(model_version=version, user=second_curator)
    with pytest.raises(PermissionDenied, match="four-eyes"):
        services.model_version_approve_publication(model_version=version, user=curator)


def test_four_eyes_is_also_a_database_constraint(drug, curator, second_curator) -> None:
    version = published(drug, curator, second_curator)
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=version.pk).update(publication_requested_by=second_curator)


def test_publishing_needs_a_request_first(drug, curator, second_curator) -> None:
    version = draft(curator)
    services.model_version_validate(model_version=version, user=curator)
    with pytest.raises(ValidationError, match="nobody asked"):
        services.model_version_approve_publication(model_version=version, user=second_curator)


def test_editing_a_published_version_is_refused(drug, curator, second_curator) -> None:
    version = published(drug, curator, second_curator)
    changed = model_document()
    changed["thetas"]["TVCL"] = 5.0
    with pytest.raises(ValidationError, match="never changes"):
        services.model_version_update(model_version=version, user=curator, document=changed)
    version.document = changed  # bypassing the services is refused by the model itself
    version.document_sha256 = canonical_sha256(changed)
    with pytest.raises(ImmutableVersionError):
        version.save()
    version.refresh_from_db()
    assert version.document == model_document()


def test_editing_a_validated_version_sends_it_back_to_draft(drug, curator, second_curator) -> None:
    version = draft(curator)
    services.model_version_validate(model_version=version, user=curator)
    services.model_version_request_publication(model_version=version, user=curator)
    changed = model_document()
    changed["title"] = "Test drug, corrected title"
    version = services.model_version_update(
        model_version=version, user=second_curator, document=changed, reference_checks=reference_checks()
    )
    assert version.status == Status.DRAFT
    assert version.publication_requested_at is None
    assert version.last_edited_by == second_curator
    # The run on the earlier file does not count for the new one.
    with pytest.raises(ValidationError, match="only a validated version"):
        services.model_version_request_publication(model_version=version, user=curator)


def test_a_change_to_a_published_model_is_a_new_version(drug, curator, second_curator) -> None:
    old = published(drug, curator, second_curator)
    new = services.model_version_new_draft(source=old, version="1.1.0", user=curator)
    assert new.status == Status.DRAFT
    assert new.document == old.document
    assert new.transcription["derived_from"] == "testdrug-1cmt 1.0.0"
    with pytest.raises(ValidationError, match="exists already"):
        services.model_version_new_draft(source=old, version="1.0.0", user=curator)


def test_retired_versions_stay_readable_but_are_not_published(
    drug, curator, second_curator, clinician
) -> None:
    version = published(drug, curator, second_curator)
    with pytest.raises(ValidationError, match="say why"):
        services.model_version_request_retirement(model_version=version, user=curator, reason=" ")
    request = services.model_version_request_retirement(
        model_version=version, user=curator, reason="superseded by 2.0.0"
    )
    version.refresh_from_db()
    assert version.status == Status.PUBLISHED  # one curator alone retires nothing
    with pytest.raises(PermissionDenied, match="four-eyes"):
        services.change_request_approve(change_request=request, user=curator)
    with pytest.raises(PermissionDenied, match="second curator"):
        services.model_version_retire(model_version=version, user=curator, reason="alone")
    services.change_request_approve(change_request=request, user=second_curator)
    version.refresh_from_db()
    assert version.status == Status.RETIRED
    assert not ModelVersion.objects.published().filter(pk=version.pk).exists()
    assert selectors.model_version_get(user=clinician, pk=version.pk) == version
    card = selectors.model_card(model_version=version)
    assert card.retired_reason == "superseded by 2.0.0"
    assert card.published_by  # who published it stays on the card


def test_only_curators_change_the_catalog(drug, clinician) -> None:
    entry = library_entry()
    with pytest.raises(PermissionDenied):
        services.model_version_create(document=entry["model"], version="1.0.0", user=clinician)
    assert not ModelVersion.objects.exists()


def test_clinicians_do_not_see_drafts(drug, curator, clinician) -> None:
    version = draft(curator)
    assert list(selectors.model_versions_visible(user=clinician)) == []
    assert list(selectors.model_versions_visible(user=curator)) == [version]


def test_every_step_leaves_an_audit_event(drug, curator, second_curator) -> None:
    version = published(drug, curator, second_curator)
    request = services.model_version_request_retirement(model_version=version, user=curator, reason="test")
    services.change_request_approve(change_request=request, user=second_curator)
    actions = list(
        CatalogEvent.objects.filter(model_version=version).order_by("pk").values_list("action", "actor")
    )
    assert actions == [
        ("created", curator.pk),
        ("validated", curator.pk),
        ("publication_requested", curator.pk),
        ("published", second_curator.pk),
        ("retirement_requested", curator.pk),
        ("retired", second_curator.pk),
    ]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["parameters"].update(CL="TVCL * __import__('os')"), "parameters.CL"),
        (lambda d: d["covariates"]["WT"].update(min=150, max=40), "covariates.WT: range is inverted"),
        (lambda d: d.update(drug="unknowndrug"), "not in the catalog"),
        (lambda d: d.update(citation={"text": ""}), "cites its source"),
    ],
)
def test_invalid_documents_are_refused_with_the_field_and_nothing_is_saved(
    drug, curator, mutate, message
) -> None:
    document = model_document()
    mutate(document)
    with pytest.raises(ValidationError, match=message):
        services.model_version_create(document=document, version="1.0.0", user=curator)
    assert not ModelVersion.objects.exists()


def test_version_numbers_are_semantic(drug, curator) -> None:
    with pytest.raises(ValidationError, match="semantic version"):
        services.model_version_create(document=model_document(), version="v1", user=curator)


def test_a_published_document_cannot_change_even_if_the_hash_is_left_alone(
    drug, curator, second_curator
) -> None:
    version = published(drug, curator, second_curator)
    version.document["thetas"]["TVCL"] = 40.0  # the caller does not touch document_sha256
    with pytest.raises(ImmutableVersionError, match="document"):
        version.save()
    version = ModelVersion.objects.get(pk=version.pk)
    version.covariate_sources = {}
    with pytest.raises(ImmutableVersionError, match="covariate_sources"):
        version.save()


def test_publishing_needs_a_source_for_every_covariate(drug, curator) -> None:
    version = draft(curator, covariate_sources={})
    services.model_version_validate(model_version=version, user=curator)
    with pytest.raises(ValidationError, match="no source for covariate"):
        services.model_version_request_publication(model_version=version, user=curator)


def test_the_model_file_keeps_its_key_order_in_the_database(drug, curator) -> None:
    """PostgreSQL's jsonb sorts keys; a model file's order has meaning (earlier parameters, first output)."""
    document = model_document()
    # jsonb would return "V" before "CL" (shorter keys first) and "aa_conc" before "zz_conc".
    document["parameters"] = {"CL": "TVCL * (WT/70)**0.75 * exp(ETA_CL)", "V": "TVV * (WT/70) * exp(ETA_V)"}
    document["outputs"] = {"zz_conc": document["outputs"]["conc"], "aa_conc": document["outputs"]["conc"]}
    version = services.model_version_create(document=document, version="1.0.0", user=curator)
    stored = ModelVersion.objects.get(pk=version.pk).document
    assert list(stored["parameters"]) == ["CL", "V"]
    assert list(stored["outputs"]) == ["zz_conc", "aa_conc"]  # the first output is the default one
    assert list(stored) == list(document)
