"""Electronic signatures (Part 11): printed name, UTC time, meaning, hash of what was signed; verification
fails on any later change; segregation of duties; one signature wins when two pharmacists sign at once."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from audit.models import AuditEntry
from dosing import services, signatures
from dosing.models import ElectronicSignature, Recommendation
from tests.auth import login, next_totp_code
from tests.factories import PASSWORD, UserFactory, care_team


def _record(course, clinician, capture) -> Recommendation:
    """A dose and a level recorded by ``clinician``; the update runs; its recommendation awaits review."""
    start = timezone.now() - dt.timedelta(hours=20)
    with capture(execute=True):
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


@pytest.fixture
def recommendation(course, clinician, django_capture_on_commit_callbacks, celery_eager) -> Recommendation:
    return _record(course, clinician, django_capture_on_commit_callbacks)


def approve(recommendation, user, **kwargs):
    return services.recommendation_review(
        recommendation=recommendation,
        user=user,
        decision=kwargs.pop("decision", "approve"),
        password=kwargs.pop("password", PASSWORD),
        otp_code=kwargs.pop("otp_code", None) or next_totp_code(user),
        **kwargs,
    )


@pytest.mark.django_db
def test_a_signature_records_name_utc_time_meaning_and_the_hash_of_what_was_signed(
    recommendation, pharmacist
):
    pharmacist.first_name, pharmacist.last_name = "Paula", "Pharmacist"
    pharmacist.save()
    reviewed = approve(recommendation, pharmacist)
    signature = ElectronicSignature.objects.get(recommendation=reviewed)
    assert signature.printed_name == "Paula Pharmacist (pharmacist)"
    assert signature.signed_at == reviewed.reviewed_at
    assert signature.meaning == "approved"
    content = json.loads(signature.content)
    assert content["statement"].startswith("Approved: I approve this regimen")
    assert content["signed_at_utc"].endswith("+00:00")
    update = reviewed.update
    assert content["update"]["inputs_sha256"] == update.inputs_sha256
    assert content["model_version"]["document_sha256"] == update.model_version.document_sha256
    assert content["engine_version"] == update.engine_version
    assert content["recommended_regimen"] == reviewed.regimen == content["approved_regimen"]
    assert signatures.verify(signature) == []
    assert AuditEntry.objects.filter(action="signature", object_id=str(signature.pk)).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        ("UPDATE dosing_recommendation SET final_regimen = '{\"dose_mg\": 9000}'", "changed after signing"),
        ("UPDATE dosing_recommendation SET status = 'rejected'", "decision or reviewer"),
        ("UPDATE dosing_bayesianupdate SET inputs_sha256 = 'x'", "changed after signing"),
        ("UPDATE dosing_electronicsignature SET content = content || ' '", "does not match its hash"),
        ("UPDATE models_catalog_modelversion SET document_sha256 = 'x'", "changed after signing"),
    ],
)
def test_verification_fails_on_any_later_change(recommendation, pharmacist, statement, problem):
    approve(recommendation, pharmacist)
    signature = ElectronicSignature.objects.get()
    with connection.cursor() as cursor:
        cursor.execute(statement)
    found = signatures.verify(signature)
    assert any(problem in item for item in found), found


@pytest.mark.django_db
def test_the_course_page_shows_the_signature_and_whether_it_holds(client, recommendation, pharmacist):
    approve(recommendation, pharmacist)
    login(client, pharmacist)
    url = reverse("dosing:course", args=[recommendation.course.public_id])
    page = client.get(url).content.decode()
    assert "Electronically signed by" in page and "UTC" in page and "the signed records are unchanged" in page
    with connection.cursor() as cursor:
        cursor.execute("UPDATE dosing_recommendation SET final_regimen = '{\"dose_mg\": 9000}'")
    assert "This signature no longer holds" in client.get(url).content.decode()


@pytest.mark.django_db
def test_who_recorded_the_data_cannot_sign_its_recommendation(
    course, django_capture_on_commit_callbacks, celery_eager
):
    both = UserFactory(username="both-roles", roles=[Role.CLINICIAN, Role.PHARMACIST])
    care_team(both)
    pending = _record(course, both, django_capture_on_commit_callbacks)
    with pytest.raises(ValidationError, match=r"segregation of duties: you .*recorded doses.*levels"):
        approve(pending, both)
    pending.refresh_from_db()
    assert pending.status == Recommendation.Status.PENDING_REVIEW
    other = UserFactory(username="other-pharmacist", roles=[Role.PHARMACIST])
    assert approve(pending, other).status == Recommendation.Status.APPROVED


@pytest.mark.django_db
def test_a_used_code_cannot_sign_and_a_wrong_password_is_logged(recommendation, pharmacist):
    code = next_totp_code(pharmacist)
    with pytest.raises(ValidationError, match="password"):
        approve(recommendation, pharmacist, password="wrong", otp_code=code)
    assert AuditEntry.objects.filter(action="signature_failed", actor_id=pharmacist.pk).count() == 1
    signatures.authenticate_signer(user=pharmacist, password=PASSWORD, otp_code=code)  # spends the code
    with pytest.raises(ValidationError, match="authenticator code"):
        approve(recommendation, pharmacist, otp_code=code)
    recommendation.refresh_from_db()
    assert recommendation.status == Recommendation.Status.PENDING_REVIEW


@pytest.mark.django_db
def test_five_failed_signatures_pause_signing(recommendation, pharmacist):
    for _ in range(signatures.FAILURE_LIMIT):
        with pytest.raises(ValidationError):
            approve(recommendation, pharmacist, password="wrong")
    with pytest.raises(ValidationError, match="signing is paused"):
        approve(recommendation, pharmacist)


@pytest.mark.services("postgresql")
@pytest.mark.django_db(transaction=True)
def test_two_pharmacists_approving_at_once_exactly_one_succeeds(
    course, clinician, django_capture_on_commit_callbacks, celery_eager
):
    from django.contrib.auth.models import Group

    for role in Role:
        Group.objects.get_or_create(name=role.value)
    pending = _record(course, clinician, django_capture_on_commit_callbacks)
    signers = [UserFactory(username=f"pharmacist-{i}", roles=[Role.PHARMACIST]) for i in range(2)]
    codes = [next_totp_code(user) for user in signers]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def sign(user, code):
        try:
            barrier.wait(timeout=10)
            approve(Recommendation.objects.get(pk=pending.pk), user, otp_code=code)
            outcomes.append("signed")
        except ValidationError as exc:
            outcomes.append(f"refused: {exc.messages[0]}")
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=sign, args=(user, code)) for user, code in zip(signers, codes, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["refused: this recommendation is approved", "signed"]
    assert ElectronicSignature.objects.filter(recommendation=pending).count() == 1
