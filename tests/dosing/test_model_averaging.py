"""Model averaging and selection for courses: the per-drug strategy (curators, audited), the update that
fits every eligible published model, the course page's weights table."""

from __future__ import annotations

import math
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from dosing import averaging
from dosing.models import BayesianUpdate, DrugModelStrategy
from tests.auth import login
from tests.dosing.test_refit import open_course

pytestmark = pytest.mark.django_db


def publish(model_id: str, v_l: float, n: int) -> Any:
    """Another published testdrug model: the same structure and domain, a volume of ``v_l`` L."""
    from accounts.roles import Role
    from models_catalog import services
    from tests.factories import UserFactory
    from tests.models_catalog.documents import DOSE_MG, model_document, reference_checks

    document = model_document(model_id)
    document["thetas"]["TVV"] = v_l
    document["title"] = f"Test drug, V {v_l:g} L"
    expected = DOSE_MG / v_l * math.exp(-4.0 / v_l * 6.0)
    first = UserFactory(username=f"curator-a{n}", roles=[Role.MODEL_CURATOR])
    version = services.model_version_create(
        document=document,
        version="1.0.0",
        user=first,
        reference_checks=reference_checks(expected_at_6_h=expected),
        covariate_sources={"WT": {"from": "weight"}},
        model_card={"limitations": ["made for tests"]},
    )
    services.model_version_validate(model_version=version, user=first)
    services.model_version_request_publication(model_version=version, user=first)
    return services.model_version_approve_publication(
        model_version=version, user=UserFactory(username=f"curator-b{n}", roles=[Role.MODEL_CURATOR])
    )


@pytest.fixture
def three_models(published_version) -> list[Any]:
    return [published_version, publish("testdrug-smallv", 25.0, 1), publish("testdrug-largev", 100.0, 2)]


@pytest.fixture
def curator(db: None) -> Any:
    from accounts.roles import Role
    from tests.factories import UserFactory

    return UserFactory(username="curator-x", roles=[Role.MODEL_CURATOR])


def test_a_curator_sets_the_strategy_with_a_reason_and_it_is_audited(three_models, curator) -> None:
    from audit.models import AuditEntry

    drug = three_models[0].drug
    assert averaging.strategy_of(drug).mode == "pinned"  # no row: the courses' pinned models
    averaging.strategy_set(
        drug=drug,
        mode="average",
        prior_weights={"testdrug-smallv": 0.5},
        reason="AMS committee",
        user=curator,
    )
    strategy = averaging.strategy_of(drug)
    assert (strategy.mode, strategy.prior_weight("testdrug-smallv"), strategy.prior_weight("x")) == (
        "average",
        0.5,
        1.0,
    )
    entry = AuditEntry.objects.filter(object_type="dosing.drugmodelstrategy").latest("pk")
    assert entry.reason == "AMS committee"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"mode": "vote"}, "choose one of"),
        ({"prior_weights": {"nomodel": 1}}, "'nomodel' is not a model of testdrug"),
        ({"prior_weights": {"testdrug-1cmt": 0}}, "must be positive"),
        ({"reason": " "}, "say why"),
    ],
)
def test_a_bad_strategy_is_refused_with_the_field(three_models, curator, values, message) -> None:
    arguments = {"mode": "average", "prior_weights": {}, "reason": "protocol", **values}
    with pytest.raises(ValidationError, match=message):
        averaging.strategy_set(drug=three_models[0].drug, user=curator, **arguments)
    assert not DrugModelStrategy.objects.exists()


def test_only_a_curator_sets_the_strategy(three_models, clinician) -> None:
    with pytest.raises(PermissionDenied):
        averaging.strategy_set(
            drug=three_models[0].drug, mode="average", prior_weights={}, reason="x", user=clinician
        )


def run_course(clinician, version, django_capture_on_commit_callbacks) -> tuple[Any, BayesianUpdate]:
    with django_capture_on_commit_callbacks(execute=True):
        course = open_course(clinician, version, 1)
    update = course.updates.filter(status=BayesianUpdate.Status.SUCCEEDED).latest("pk")
    return course, update


def test_an_averaged_update_weighs_every_eligible_model_and_shows_why(
    three_models, curator, clinician, client, django_capture_on_commit_callbacks, celery_eager
) -> None:
    drug = three_models[0].drug
    averaging.strategy_set(
        drug=drug, mode="average", prior_weights={"testdrug-largev": 2.0}, reason="protocol", user=curator
    )
    course, update = run_course(clinician, three_models[0], django_capture_on_commit_callbacks)
    block = update.results["averaging"]
    rows = block["models"]
    assert [row["label"] for row in rows] == [
        "testdrug-1cmt@1.0.0",  # the course's own model first
        "testdrug-largev@1.0.0",
        "testdrug-smallv@1.0.0",
    ]
    assert [row["prior_weight"] for row in rows] == [1.0, 2.0, 1.0]
    raw = [row["prior_weight"] * math.exp(-(row["ofv"] - rows[0]["ofv"]) / 2) for row in rows]
    assert [row["weight"] for row in rows] == pytest.approx([r / sum(raw) for r in raw], rel=1e-9)
    assert sum(row["n_draws"] for row in rows) == block["n_draws"] == 2000
    assert all(row["n_levels"] == 1 for row in rows)
    # The recommendation comes from the mixture's ranking.
    recommendation = course.recommendations.get(update=update)
    assert recommendation.probability_of_target == pytest.approx(update.results["regimens"][0]["pta"])

    login(client, clinician)
    page = client.get(f"/courses/{course.public_id}/").content.decode()
    assert "Model averaging: 3 models fitted" in page
    assert "a what-if forecast (and a pharmacist's change) is computed with the course's own model" in page
    for row in rows:
        assert row["label"] in page
        assert f"({row['n_draws']} draws)" in page


def test_the_same_record_gives_the_same_averaged_results(
    three_models, curator, clinician, django_capture_on_commit_callbacks, celery_eager
) -> None:
    from django.utils import timezone

    from dosing import adapters

    averaging.strategy_set(
        drug=three_models[0].drug, mode="average", prior_weights={}, reason="p", user=curator
    )
    course, _ = run_course(clinician, three_models[0], django_capture_on_commit_callbacks)
    now = timezone.now()
    case = adapters.course_case(course, now=now)
    strategy = averaging.strategy_of(course.drug)
    first = averaging.recommend_for_course(course=course, case=case, strategy=strategy)
    second = averaging.recommend_for_course(
        course=course, case=adapters.course_case(course, now=now), strategy=strategy
    )
    assert first == second
    assert first["averaging"]["models"][0]["inputs_sha256"] == case.inputs_sha256


def test_selection_recommends_from_the_best_fitting_model(
    three_models, curator, clinician, django_capture_on_commit_callbacks, celery_eager
) -> None:
    averaging.strategy_set(
        drug=three_models[0].drug, mode="select", prior_weights={}, reason="p", user=curator
    )
    _, update = run_course(clinician, three_models[0], django_capture_on_commit_callbacks)
    rows = update.results["averaging"]["models"]
    weights = [row["weight"] for row in rows]
    assert sorted(weights) == [0.0, 0.0, 1.0]
    winner = rows[weights.index(1.0)]
    assert winner["ofv"] == min(row["ofv"] for row in rows)  # equal priors: the lowest OFV wins
    assert update.results["regimens"][0]["pta"] == winner["pta"]


def test_a_pinned_drug_fits_only_the_courses_model(
    three_models, clinician, django_capture_on_commit_callbacks, celery_eager
) -> None:
    _, update = run_course(clinician, three_models[0], django_capture_on_commit_callbacks)
    assert "averaging" not in update.results


def test_the_curator_page_saves_the_strategy(three_models, curator, client) -> None:
    login(client, curator)
    url = "/drugs/testdrug/models/"
    assert "testdrug-smallv" in client.get(url).content.decode()
    data = {
        "mode": "average",
        "reason": "committee",
        "weight_testdrug-1cmt": "1",
        "weight_testdrug-smallv": "0.5",
        "weight_testdrug-largev": "2",
    }
    assert client.post(url, data).status_code == 302
    row = DrugModelStrategy.objects.get()
    assert (row.mode, row.prior_weights["testdrug-largev"]) == ("average", 2.0)
