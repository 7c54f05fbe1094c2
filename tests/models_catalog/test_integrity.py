"""A published model file is checked at every use for dosing: an edit in the database stops dosing, alerts."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from audit.models import AuditEntry
from dosing import services
from dosing.models import BayesianUpdate
from models_catalog import integrity
from models_catalog.engine_adapter import canonical_sha256
from tests.dosing import conftest as dosing_fixtures

pytestmark = pytest.mark.django_db
clinician, patient, course = dosing_fixtures.clinician, dosing_fixtures.patient, dosing_fixtures.course
published_version = dosing_fixtures.published_version
TARGET = {"metric": "trough", "low": 5, "high": 10}


def tamper(version, *, rehash: bool) -> None:
    """TVCL 4 → 9 by SQL; with ``rehash`` the stored SHA-256 too, as a careful forger would."""
    document = json.loads(json.dumps(version.document))
    document["thetas"]["TVCL"] = 9.0
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE models_catalog_modelversion SET document = %s"
            + (", document_sha256 = %s" if rehash else "")
            + " WHERE id = %s",
            [json.dumps(document), *([canonical_sha256(document)] if rehash else []), version.pk],
        )
    version.refresh_from_db()


def test_a_published_version_is_sealed_and_passes(published_version) -> None:
    assert published_version.document_seal
    assert integrity.problem(published_version) == ""
    assert integrity.document_for_dosing(published_version) == published_version.document


@pytest.mark.parametrize("rehash", [False, True], ids=["file-only", "file-and-hash"])
def test_an_edited_model_file_stops_dosing_with_it_and_alerts(
    course,
    clinician,
    patient,
    published_version,
    rehash,
    caplog,
    django_capture_on_commit_callbacks,
    celery_eager,
) -> None:
    tamper(published_version, rehash=rehash)
    with caplog.at_level(logging.CRITICAL, logger="mipd.integrity"):
        with django_capture_on_commit_callbacks(execute=True):
            services.dose_record(
                course=course,
                given_at=timezone.now() - dt.timedelta(hours=2),
                amount_mg=1000,
                route="iv_infusion",
                infusion_duration_h=1,
                user=clinician,
            )
    update = BayesianUpdate.objects.filter(course=course).order_by("-pk").first()
    assert update.status == BayesianUpdate.Status.FAILED
    assert "Dosing with this model version is stopped" in update.error
    assert update.results["stop"]["code"] == "model_integrity"  # shown as a stop on the course page
    assert course.recommendations.filter(update=update).count() == 0
    assert any("model integrity alert" in record.getMessage() for record in caplog.records)
    alert = AuditEntry.objects.filter(action="integrity_alert", object_id=str(published_version.pk)).latest(
        "seq"
    )
    assert "is stopped" in alert.reason
    with pytest.raises(ValidationError, match="Dosing with this model version is stopped"):
        services.course_open(
            patient=patient, model_version=published_version, indication="x", target=TARGET, user=clinician
        )


def test_the_catalog_page_of_an_edited_version_says_so(client, published_version) -> None:
    from tests.auth import login
    from tests.factories import UserFactory

    login(client, UserFactory(username="reader"))
    url = f"/catalog/versions/{published_version.pk}/"
    assert 'id="integrity-alert"' not in client.get(url).content.decode()
    tamper(published_version, rehash=True)
    assert "Do not dose with this version" in client.get(url).content.decode()
