"""Refit (``manage.py refit_courses``): one update per active course of a drug, queued through the outbox;
courses with an update pending are skipped; pending recommendations stay until replaced; signed ones never
change."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from dosing import claims, services, signatures
from dosing.models import BayesianUpdate, Recommendation, TherapyCourse, UpdateDispatch
from tests.auth import next_totp_code
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
Status = BayesianUpdate.Status


def open_course(clinician: Any, version: Any, n: int) -> TherapyCourse:
    """A consenting 70-kg patient on ``version``: one dose given 20 h ago and a level 11.5 h after it."""
    from patients import services as patients
    from patients.models import ConsentRecord

    start = timezone.now() - dt.timedelta(hours=20)
    patient = patients.patient_create(
        mrn=f"REFIT-{n:02d}",
        family_name=f"Refit-{n}",
        given_name="Pat",
        birth_date=dt.date(1970, 1, 1 + n),
        sex="female",
        ward="ICU",
        user=clinician,
    )
    patients.measurement_record(
        patient=patient, kind="weight", value=70, unit="kg", measured_at=start, user=clinician
    )
    patients.consent_record(
        patient=patient, scope=ConsentRecord.Scope.MODEL_BASED_DOSING, status="granted", user=clinician
    )
    course = services.course_open(
        patient=patient,
        model_version=version,
        indication="refit test",
        target={"metric": "trough", "low": 5, "high": 10},
        user=clinician,
    )
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
    return course


@pytest.fixture
def settled(clinician, published_version, django_capture_on_commit_callbacks, celery_eager) -> list[Any]:
    """Three courses of testdrug whose updates have all run (in process), each with a recommendation."""
    with django_capture_on_commit_callbacks(execute=True):
        courses = [open_course(clinician, published_version, n) for n in range(3)]
    assert not BayesianUpdate.objects.filter(status__in=(Status.QUEUED, Status.RUNNING)).exists()
    assert Recommendation.objects.filter(status=Recommendation.Status.PENDING_REVIEW).count() == 3
    return courses


def refit(*args: str) -> str:
    out = StringIO()
    call_command("refit_courses", "--requested-by", "clinician", *args, stdout=out)
    return out.getvalue()


def test_it_queues_one_update_per_active_course_through_the_outbox(settled) -> None:
    closed = settled[2]
    TherapyCourse.objects.filter(pk=closed.pk).update(status=TherapyCourse.Status.CLOSED)
    before = set(BayesianUpdate.objects.values_list("pk", flat=True))
    pending_recs = set(
        Recommendation.objects.filter(status=Recommendation.Status.PENDING_REVIEW).values_list(
            "pk", flat=True
        )
    )

    out = refit("--drug", "testdrug")  # no --wait: the on-commit delivery is not run here

    assert "active courses: 2; updates queued: 2; skipped (an update already queued or running): 0" in out
    new = BayesianUpdate.objects.exclude(pk__in=before)
    assert sorted(new.values_list("course_id", flat=True)) == sorted(c.pk for c in settled[:2])
    assert set(new.values_list("status", flat=True)) == {Status.QUEUED}
    assert all(u.trigger == "refit of the active testdrug courses" for u in new)
    assert all(u.requested_by.username == "clinician" for u in new)
    # Written with its outbox row, so a broker that is down cannot lose it.
    assert UpdateDispatch.objects.filter(update__in=new, dispatched_at__isnull=True).count() == 2
    # Nothing about the patients changed: the pending recommendations stay reviewable meanwhile.
    assert (
        set(
            Recommendation.objects.filter(status=Recommendation.Status.PENDING_REVIEW).values_list(
                "pk", flat=True
            )
        )
        == pending_recs
    )


def test_a_course_with_an_update_queued_or_running_is_skipped(settled, clinician) -> None:
    queued = services.update_request(course=settled[0], user=clinician, trigger="new level")  # not delivered
    running = services.update_request(course=settled[1], user=clinician, trigger="new level")
    BayesianUpdate.objects.filter(pk=running.pk).update(status=Status.RUNNING, started_at=timezone.now())

    out = refit("--drug", "testdrug")

    assert "active courses: 3; updates queued: 1; skipped (an update already queued or running): 2" in out
    queued.refresh_from_db()
    running.refresh_from_db()
    assert (queued.status, running.status) == (Status.QUEUED, Status.RUNNING)  # not superseded
    refits = BayesianUpdate.objects.filter(trigger__startswith="refit")
    assert list(refits.values_list("course_id", flat=True)) == [settled[2].pk]
    # A second refit before any worker ran: every course now has one pending, nothing more is queued.
    again = refit("--drug", "testdrug")
    assert "updates queued: 0; skipped (an update already queued or running): 3" in again


def test_an_update_left_running_by_a_dead_worker_does_not_block_the_refit(settled, clinician) -> None:
    stuck = services.update_request(course=settled[0], user=clinician, trigger="new level")
    long_ago = timezone.now() - claims.stale_after() - dt.timedelta(minutes=1)
    BayesianUpdate.objects.filter(pk=stuck.pk).update(status=Status.RUNNING, started_at=long_ago)

    out = refit("--drug", "testdrug")

    assert "updates queued: 3; skipped (an update already queued or running): 0" in out
    stuck.refresh_from_db()
    assert stuck.status == Status.FAILED
    assert "the worker stopped before finishing" in stuck.error


@pytest.mark.django_db(transaction=True)  # --wait polls while the updates commit and run (in process)
def test_wait_runs_the_refit_and_never_touches_a_signed_recommendation(settled, pharmacist) -> None:
    signed = Recommendation.objects.get(course=settled[0], status=Recommendation.Status.PENDING_REVIEW)
    services.recommendation_review(
        recommendation=signed,
        user=pharmacist,
        decision="reject",
        password=PASSWORD,
        otp_code=next_totp_code(pharmacist),
        note="not needed",
    )
    signed.refresh_from_db()
    frozen = {
        field: getattr(signed, field)
        for field in ("status", "reviewed_by_id", "reviewed_at", "review_note", "final_regimen", "regimen")
    }
    other = Recommendation.objects.get(course=settled[1], status=Recommendation.Status.PENDING_REVIEW)

    out = refit("--drug", "testdrug", "--wait", "--timeout", "60")

    assert "updates queued: 3" in out
    assert "succeeded 3" in out
    signed.refresh_from_db()
    assert {field: getattr(signed, field) for field in frozen} == frozen
    assert signatures.verify(signed.signature) == []  # still verifies: what was signed did not change
    # The refit's result replaced the pending recommendation of the other course, as any newer update does.
    other.refresh_from_db()
    assert other.status == Recommendation.Status.SUPERSEDED
    refits = BayesianUpdate.objects.filter(trigger__startswith="refit")
    assert set(refits.values_list("status", flat=True)) == {Status.SUCCEEDED}
    for course in settled:
        fresh = course.recommendations.get(status=Recommendation.Status.PENDING_REVIEW)
        assert fresh.update.trigger.startswith("refit")


def test_wait_gives_up_after_the_timeout_and_says_how_many_are_pending(settled) -> None:
    # No on-commit delivery here (as with no worker): the updates stay queued.
    with pytest.raises(CommandError, match=r"3 update\(s\) still queued or running after 0.2 s"):
        refit("--drug", "testdrug", "--wait", "--timeout", "0.2")


def test_model_version_restricts_the_refit_to_the_courses_pinned_to_it(
    settled, clinician, published_version, django_capture_on_commit_callbacks
) -> None:
    from accounts.roles import Role
    from models_catalog import services as catalog
    from tests.factories import UserFactory
    from tests.models_catalog.documents import library_entry

    entry = library_entry(version="1.1.0")
    first = UserFactory(username="curator-three", roles=[Role.MODEL_CURATOR])
    newer = catalog.model_version_create(
        document=entry["model"],
        version=entry["version"],
        user=first,
        reference_checks=entry["reference_checks"],
        covariate_sources=entry["covariate_sources"],
        model_card=entry["model_card"],
    )
    catalog.model_version_validate(model_version=newer, user=first)
    catalog.model_version_request_publication(model_version=newer, user=first)
    newer = catalog.model_version_approve_publication(
        model_version=newer, user=UserFactory(username="curator-four", roles=[Role.MODEL_CURATOR])
    )
    with django_capture_on_commit_callbacks(execute=True):
        on_newer = open_course(clinician, newer, 9)

    out = refit("--drug", "testdrug", "--model-version", "testdrug-1cmt@1.1.0")
    assert "active courses: 1; updates queued: 1" in out
    assert on_newer.updates.filter(
        trigger="refit of the active testdrug courses on testdrug-1cmt@1.1.0"
    ).exists()
    out = refit("--drug", "testdrug", "--model-version", "1.0.0")  # a bare version, unique for the drug
    assert "active courses: 3; updates queued: 3" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--drug", "nodrug"), "no drug 'nodrug' (known: testdrug)"),
        (
            ("--drug", "testdrug", "--model-version", "9.9.9"),
            "'9.9.9' is not one of testdrug (its: testdrug-1cmt@1.0.0)",
        ),
        (("--drug", "testdrug", "--timeout", "0"), "--timeout must be a positive number"),
    ],
)
def test_it_refuses_what_it_cannot_refit(published_version, clinician, args, message) -> None:
    with pytest.raises(CommandError) as refused:
        refit(*args)
    assert message in str(refused.value)
    assert not BayesianUpdate.objects.exists()


def test_only_a_clinician_requests_the_updates(settled, pharmacist) -> None:
    before = BayesianUpdate.objects.count()
    with pytest.raises(CommandError, match="only clinicians request Bayesian updates"):
        call_command("refit_courses", "--drug", "testdrug", "--requested-by", "pharmacist", stdout=StringIO())
    assert BayesianUpdate.objects.count() == before
