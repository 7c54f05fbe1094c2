"""A frozen version's model is parsed once per process; a draft's, each time (it can still change)."""

from __future__ import annotations

import copy

import pytest

from accounts.roles import Role
from mipd_engine.model import parse_model
from models_catalog import engine_adapter
from models_catalog.engine_adapter import version_model
from models_catalog.models import ModelVersion
from tests.factories import UserFactory, published_test_version


@pytest.fixture
def published() -> ModelVersion:
    return published_test_version(
        curator=UserFactory(username="curator-one", roles=[Role.MODEL_CURATOR]),
        second_curator=UserFactory(username="curator-two", roles=[Role.MODEL_CURATOR]),
    )


@pytest.mark.django_db
def test_a_published_version_is_parsed_once_and_gives_the_same_model(published: ModelVersion) -> None:
    first = version_model(published)
    assert repr(first) == repr(parse_model(published.document))  # numpy fields: no == on the whole
    again = ModelVersion.objects.get(pk=published.pk)  # another request's row
    assert version_model(again) is first
    with pytest.raises(ValueError, match="read-only"):  # shared by every request: no write in place
        first.omega[0, 0] = 0.0


@pytest.mark.django_db
def test_a_draft_is_parsed_each_time_so_an_edit_shows(published: ModelVersion) -> None:
    document = copy.deepcopy(published.document)
    draft = ModelVersion.objects.create(
        drug=published.drug, model_id=published.model_id, version="9.9.9", document=document
    )
    assert not draft.is_frozen
    first = version_model(draft)
    draft.document["outputs"] = dict(reversed(list(draft.document["outputs"].items())))
    draft.document["outputs"]["extra"] = next(iter(draft.document["outputs"].values()))
    draft.save()
    assert version_model(draft) is not first
    assert "extra" in version_model(draft).outputs and "extra" not in first.outputs
    assert (draft.pk, draft.document_sha256) not in engine_adapter._parsed_models


@pytest.mark.django_db
def test_the_parsed_models_are_bounded(published: ModelVersion, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_adapter, "PARSED_MODELS_MAX", 1)
    version_model(published)
    other = ModelVersion.objects.get(pk=published.pk)
    other.pk = published.pk + 1000  # another frozen row (not stored): it displaces the first
    version_model(other)
    assert list(engine_adapter._parsed_models) == [(other.pk, published.document_sha256)]
