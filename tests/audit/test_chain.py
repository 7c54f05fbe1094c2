"""The audit trail: an entry for every write path, sealed and chained; verification finds what SQL changed."""

from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AppendOnlyError, AuditEntry, ChainHead
from audit.verify import verify_chain
from dosing import services as dosing
from dosing.models import DoseAdministration, DrugLevel, Recommendation
from models_catalog.models import ModelVersion
from patients import services as patients
from patients.models import CovariateMeasurement, Patient
from tests.audit.helpers import actions_for, entries_for
from tests.auth import login, next_totp_code
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def api(user) -> APIClient:
    client = APIClient()
    login(client, user)
    return client


@pytest.fixture
def dosed(course, clinician, django_capture_on_commit_callbacks, celery_eager):
    """A course with a dose and a level; its update ran and left a recommendation pending review."""
    start = timezone.now() - dt.timedelta(hours=20)
    with django_capture_on_commit_callbacks(execute=True):
        dosing.dose_record(
            course=course,
            given_at=start,
            amount_mg=1000,
            route="iv_infusion",
            infusion_duration_h=1,
            user=clinician,
        )
        dosing.level_record(
            course=course, sampled_at=start + dt.timedelta(hours=11.5), value=7.0, unit="mg/L", user=clinician
        )
    return course


def test_a_new_patient_leaves_a_create_entry_with_who_when_and_the_row(patient, clinician) -> None:
    entry = entries_for(patient)[0]
    assert entry.action == "create"
    assert entry.patient_id == patient.public_id
    after = json.loads(entry.after)
    assert (after["mrn"], after["created_by_id"]) == ("MRN-0001", clinician.pk)
    assert entry.at <= timezone.now()
    assert len(entry.row_sha256) == 64


def test_marking_in_error_is_a_mark_entry_with_the_reason_and_before_and_after(patient, clinician) -> None:
    weight = patient.measurements.get(kind="weight")
    patients.entry_mark_in_error(entry=weight, reason="wrong patient's scale", user=clinician)
    entry = entries_for(weight)[-1]
    assert entry.action == "mark_entered_in_error"
    assert entry.reason == "wrong patient's scale"
    assert json.loads(entry.before)["entered_in_error"] is False
    assert json.loads(entry.after)["entered_in_error"] is True


def test_the_html_pages_leave_entries(client, patient, clinician) -> None:
    login(client, clinician)
    response = client.post(
        reverse("patients:record", args=[patient.public_id, "measurement"]),
        {"kind": "height", "value": "170", "unit": "cm", "measured_at": "2026-01-01T08:00"},
    )
    assert response.status_code in (302, 400)
    if response.status_code == 302:
        height = patient.measurements.get(kind="height")
        assert actions_for(height) == ["create"]
        entry = entries_for(height)[0]
        assert json.loads(entry.context)["path"].endswith("/record/measurement/")
    reads = AuditEntry.objects.filter(action="read", patient_id=patient.public_id, actor="clinician")
    assert reads.exists()


def test_the_api_leaves_entries_attributed_to_the_caller(patient, clinician) -> None:
    response = api(clinician).post(
        f"/api/v1/patients/{patient.public_id}/measurements/",
        {"kind": "height", "value": 170, "unit": "cm", "measured_at": timezone.now().isoformat()},
        format="json",
    )
    assert response.status_code == 201, response.data
    height = CovariateMeasurement.objects.get(public_id=response.data["id"])
    entry = entries_for(height)[0]
    assert (entry.action, entry.actor) == ("create", "clinician")


def test_the_admin_leaves_entries(client) -> None:
    admin = UserFactory(username="it-admin", is_staff=True, is_superuser=True)
    target = UserFactory(username="dr-new")
    login(client, admin)
    response = client.post(
        reverse("admin:auth_user_change", args=[target.pk]),
        {
            "username": "dr-new",
            "first_name": "New",
            "last_name": "Doctor",
            "email": "",
            "is_active": "on",
            "groups": [],
            "user_permissions": [],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "08:00:00",
            "initial-date_joined_0": "2026-01-01",
            "initial-date_joined_1": "08:00:00",
            "is_staff": "on",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    entry = entries_for(target)[-1]
    assert entry.action == "change" and entry.actor == "it-admin"
    assert json.loads(entry.after)["is_staff"] is True
    assert json.loads(entry.after)["password"] == {
        "redacted": json.loads(entry.before)["password"]["redacted"]
    }


def test_roles_given_and_taken_are_entries(clinician) -> None:
    from django.contrib.auth.models import Group

    group = Group.objects.get_or_create(name="pharmacist")[0]
    clinician.groups.add(group)
    clinician.groups.remove(group)
    rows = AuditEntry.objects.filter(object_type="auth.user_groups").order_by("seq")
    assert [entry.action for entry in rows][-2:] == ["create", "delete"]
    assert json.loads(rows.last().before)["group_id"] == group.pk


def test_a_bulk_update_leaves_an_entry_per_row(dosed, clinician) -> None:
    # update_request supersedes the pending recommendation with QuerySet.update(): one entry per row
    pending = Recommendation.objects.get(course=dosed, status="pending_review")
    dosing.update_request(course=dosed, user=clinician, trigger="check")
    entry = entries_for(pending)[-1]
    assert entry.action == "change"
    assert json.loads(entry.before)["status"] == "pending_review"
    assert json.loads(entry.after)["status"] == "superseded"


def test_a_rolled_back_write_leaves_no_entry_but_a_refusal_stays(patient, clinician) -> None:
    before = AuditEntry.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        Patient.objects.filter(pk=patient.pk).update(ward="ER")
        raise RuntimeError("rolled back")
    assert AuditEntry.objects.count() == before
    with pytest.raises(RuntimeError), transaction.atomic():
        from audit.recorder import record_event

        record_event(
            "access_denied", patient_id=patient.public_id, reason="refusal inside a failed transaction"
        )
        raise RuntimeError("rolled back")
    assert AuditEntry.objects.filter(reason="refusal inside a failed transaction").count() == 1


def test_entries_are_chained_and_sealed(dosed) -> None:
    rows = list(AuditEntry.objects.order_by("seq"))
    assert [row.seq for row in rows] == list(range(1, len(rows) + 1))
    for previous, entry in itertools.pairwise(rows):
        assert entry.prev_hash == previous.entry_hash
    assert ChainHead.objects.get(pk=1).entry_hash == rows[-1].entry_hash
    report = verify_chain()
    assert report.ok, report.problems
    assert report.rows > 0


def test_the_model_refuses_to_change_or_delete_an_entry(patient) -> None:
    entry = AuditEntry.objects.first()
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(pk=entry.pk).update(reason="x")
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.all().delete()


@pytest.mark.services("postgresql")
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_auditentry SET reason = 'forged' WHERE seq = 1",
        "DELETE FROM audit_auditentry WHERE seq = 1",
        "TRUNCATE audit_auditentry",
        "DELETE FROM audit_chainhead",
        "UPDATE audit_chainhead SET seq = 0",
    ],
)
def test_postgresql_refuses_to_change_the_trail_whatever_the_client(patient, statement: str) -> None:
    with pytest.raises(DatabaseError, match=r"append-only|forward only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(statement)
    assert AuditEntry.objects.filter(seq=1).exclude(reason="forged").exists()


@pytest.mark.services("postgresql")
def test_postgresql_refuses_a_queryset_update_that_by_passes_the_model(patient) -> None:
    from django.db.models import QuerySet

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        QuerySet(model=AuditEntry).filter(seq=1).update(reason="forged")  # a plain QuerySet, not the model's


def _sql(statement: str, params: list | tuple = ()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def test_a_level_changed_by_sql_is_found(dosed) -> None:
    level = DrugLevel.objects.get(course=dosed)
    _sql(f"UPDATE {DrugLevel._meta.db_table} SET value = 70, value_model_unit = 70 WHERE id = %s", [level.pk])
    report = verify_chain()
    assert not report.ok
    assert any(
        f"dosing.druglevel {level.pk} was changed outside the application" in p for p in report.problems
    )
    assert report.first_broken_seq == entries_for(level)[-1].seq


def test_an_approval_forged_by_sql_is_found(dosed, pharmacist) -> None:
    pending = Recommendation.objects.get(course=dosed, status="pending_review")
    _sql(
        f"UPDATE {Recommendation._meta.db_table} SET status = 'approved', reviewed_by_id = %s WHERE id = %s",
        [pharmacist.pk, pending.pk],
    )
    report = verify_chain()
    assert any(f"dosing.recommendation {pending.pk} was changed outside" in p for p in report.problems)


def test_an_edited_published_model_is_found(published_version) -> None:
    document = dict(published_version.document)
    document["title"] = "edited in the database"
    _sql(
        f"UPDATE {ModelVersion._meta.db_table} SET document = %s WHERE id = %s",
        [json.dumps(document), published_version.pk],
    )
    report = verify_chain()
    assert any(
        f"models_catalog.modelversion {published_version.pk} was changed" in p for p in report.problems
    )


def test_rows_inserted_or_deleted_by_sql_are_found(dosed, clinician) -> None:
    dose = DoseAdministration.objects.get(course=dosed)
    _sql(f"DELETE FROM {DoseAdministration._meta.db_table} WHERE id = %s", [dose.pk])
    patient = Patient.objects.get()
    _sql(
        f"UPDATE {Patient._meta.db_table} SET ward = 'elsewhere' WHERE id = %s",
        [patient.pk],
    )
    report = verify_chain()
    text = "\n".join(report.problems)
    assert f"dosing.doseadministration {dose.pk} was deleted outside the application" in text
    assert f"patients.patient {patient.pk} was changed outside the application" in text


@pytest.mark.services("postgresql")
def test_an_entry_edited_with_the_triggers_off_breaks_its_seal(dosed) -> None:
    """A database superuser can switch the triggers off; the chain still shows the edit."""
    with transaction.atomic():
        _sql("SET LOCAL session_replication_role = replica")
        _sql("UPDATE audit_auditentry SET reason = 'nothing happened' WHERE seq = 3")
    report = verify_chain()
    assert report.first_broken_seq == 3
    assert "entry #3 was altered" in report.problems[0]


@pytest.mark.services("postgresql")
def test_a_removed_entry_breaks_the_chain(dosed) -> None:
    with transaction.atomic():
        _sql("SET LOCAL session_replication_role = replica")
        _sql("DELETE FROM audit_auditentry WHERE seq = 5")
    report = verify_chain()
    assert report.first_broken_seq == 5
    assert "entry #5 is missing" in report.problems[0]


def test_the_verify_command_names_the_first_broken_link(dosed, capsys) -> None:
    call_command("audit_verify")
    assert "Audit trail intact" in capsys.readouterr().out
    level = DrugLevel.objects.get(course=dosed)
    _sql(f"UPDATE {DrugLevel._meta.db_table} SET value = 70 WHERE id = %s", [level.pk])
    with pytest.raises(SystemExit) as stopped:
        call_command("audit_verify")
    assert stopped.value.code == 1
    assert f"first broken link: entry #{entries_for(level)[-1].seq}" in capsys.readouterr().err


def test_every_sign_in_and_failed_sign_in_is_an_entry(client, clinician) -> None:
    client.post(reverse("accounts:login"), {"username": "clinician", "password": "wrong"})
    client.post(reverse("accounts:login"), {"username": "clinician", "password": PASSWORD})
    actions = list(AuditEntry.objects.filter(object_type="auth.user").values_list("action", flat=True))
    assert "sign_in_failed" in actions and "sign_in" in actions
    failed = AuditEntry.objects.get(action="sign_in_failed")
    assert json.loads(failed.after) == {"username": "clinician"}
    assert "wrong" not in failed.after  # never the password


def test_a_signature_is_covered_by_the_chain(dosed, pharmacist) -> None:
    pending = Recommendation.objects.get(course=dosed, status="pending_review")
    dosing.recommendation_review(
        recommendation=pending,
        user=pharmacist,
        decision="approve",
        password=PASSWORD,
        otp_code=next_totp_code(pharmacist),
    )
    assert verify_chain().ok
    _sql("UPDATE dosing_electronicsignature SET printed_name = 'Someone Else'")
    assert any("dosing.electronicsignature" in problem for problem in verify_chain().problems)
