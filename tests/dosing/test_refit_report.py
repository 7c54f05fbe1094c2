"""Refit on demand after a catalog change: the report of what changed per course (old vs new regimen and
PTA), the automatic fan-out when a version of the drug is published or retired, signed recommendations
left alone."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from dosing import averaging, services
from dosing.models import BayesianUpdate, Recommendation
from dosing.refit import refit_report
from tests.auth import next_totp_code
from tests.dosing.test_model_averaging import publish
from tests.dosing.test_refit import open_course
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def courses(clinician, published_version, django_capture_on_commit_callbacks, celery_eager) -> list[Any]:
    with django_capture_on_commit_callbacks(execute=True):
        return [open_course(clinician, published_version, n) for n in range(2)]


@pytest.fixture
def curator(db: None) -> Any:
    from accounts.roles import Role
    from tests.factories import UserFactory

    return UserFactory(username="curator-x", roles=[Role.MODEL_CURATOR])


@pytest.mark.django_db(transaction=True)  # --report polls while the updates commit and run (in process)
def test_the_report_lists_the_regimen_and_pta_before_and_after_and_never_touches_a_signature(
    courses, pharmacist
) -> None:
    signed = Recommendation.objects.get(course=courses[0], status=Recommendation.Status.PENDING_REVIEW)
    services.recommendation_review(
        recommendation=signed,
        user=pharmacist,
        decision="approve",
        password=PASSWORD,
        otp_code=next_totp_code(pharmacist),
        note="",
    )
    signed.refresh_from_db()
    frozen = (signed.status, signed.regimen, signed.probability_of_target, signed.reviewed_at)
    out = StringIO()
    call_command(
        "refit_courses",
        "--drug",
        "testdrug",
        "--requested-by",
        "clinician",
        "--report",
        "--timeout",
        "120",
        stdout=out,
    )
    text = out.getvalue()
    # Nothing about the patients or the models changed: the same regimens, listed with their PTA.
    label = services.regimen_label(signed.regimen)
    assert (
        f"course {courses[0].public_id}: {label} (PTA {signed.probability_of_target * 100:.0f} %), approved"
        in text
    )
    assert "changes: unchanged 2" in text
    signed.refresh_from_db()
    assert (signed.status, signed.regimen, signed.probability_of_target, signed.reviewed_at) == frozen


def test_a_newly_published_model_is_averaged_in_by_the_automatic_refit(
    courses, curator, settings, django_capture_on_commit_callbacks
) -> None:
    settings.REFIT_ON_CATALOG_CHANGE_AS = "clinician"
    averaging.strategy_set(
        drug=courses[0].drug, mode="average", prior_weights={}, reason="protocol", user=curator
    )
    before = {c.pk: c.recommendations.latest("pk") for c in courses}
    with django_capture_on_commit_callbacks(execute=True):
        publish("testdrug-smallv", 25.0, 1)
    refits = BayesianUpdate.objects.filter(trigger__contains="testdrug-smallv@1.0.0 published")
    assert sorted(refits.values_list("course_id", flat=True)) == sorted(before)
    assert set(refits.values_list("status", flat=True)) == {BayesianUpdate.Status.SUCCEEDED}
    for update in refits:
        assert [row["label"] for row in update.results["averaging"]["models"]] == [
            "testdrug-1cmt@1.0.0",
            "testdrug-smallv@1.0.0",
        ]
    changes = refit_report(update_ids=tuple(refits.values_list("pk", flat=True)))
    for change in changes:
        course_pk = next(c.pk for c in courses if str(c.public_id) == change.course)
        previous = before[course_pk]
        after = Recommendation.objects.get(update__trigger__contains="smallv", course_id=course_pk)
        assert change.before_pta == previous.probability_of_target
        assert change.after_pta == after.probability_of_target
        same = previous.regimen["dose_mg"] == after.regimen["dose_mg"] and (
            previous.regimen["interval_h"] == after.regimen["interval_h"]
        )
        assert change.outcome == ("unchanged" if same else "changed")


def test_a_retired_version_refits_its_courses_and_the_report_says_it_is_retired(
    courses, settings, django_capture_on_commit_callbacks, published_version
) -> None:
    from models_catalog import services as catalog

    settings.REFIT_ON_CATALOG_CHANGE_AS = "clinician"
    with django_capture_on_commit_callbacks(execute=True):
        catalog.model_version_retire(model_version=published_version, user=None, reason="superseded")
    refits = BayesianUpdate.objects.filter(trigger__contains="testdrug-1cmt@1.0.0 retired")
    assert refits.count() == 2
    changes = refit_report(update_ids=tuple(refits.values_list("pk", flat=True)))
    assert all("is retired" in change.note for change in changes)


def test_no_account_configured_no_automatic_refit(courses, django_capture_on_commit_callbacks) -> None:
    before = BayesianUpdate.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        publish("testdrug-smallv", 25.0, 1)
    assert BayesianUpdate.objects.count() == before
