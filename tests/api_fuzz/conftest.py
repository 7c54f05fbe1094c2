"""What the API fuzz tests run against: the Django app in process (WSGI) on the test database, a small world
of records (a published model, a patient, a course, a recommendation) and one signed-in caller per role.

Each caller authenticates as the API lets that role: a clinician (one factor) with an API token; pharmacists,
curators and administrators, who need a second factor and are refused tokens, with a session verified by
their authenticator (as after a sign-in with password and code) and Django's CSRF cookie and header.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

ROLES = ("anonymous", "clinician", "pharmacist", "curator", "admin")
REQUESTS_SENT = [0]  # requests the fuzz tests made in this run (printed at the end)
WRITTEN: set[str] = set()  # writing operations whose schema example was answered 2xx for its writer


@dataclass(frozen=True)
class Caller:
    """How one role calls the API: its headers (Authorization, or X-CSRFToken) and cookies (the session's)."""

    role: str
    user: Any
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def wsgi_app() -> Iterator[Any]:
    """The production WSGI handler, keeping the test's database connection (and its transaction) open.

    Django closes old connections at the start and the end of each request; its test client switches that
    off for the request, and so do we here, for the whole test.
    """
    from django.core import signals
    from django.core.wsgi import get_wsgi_application
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    """The records every fuzz test finds, committed once for the module (each test's own writes are rolled
    back with its transaction) and flushed at the end, as a transactional test is."""
    from django.core.management import call_command

    from mipd_web.celery import app
    from tests.factories import role_groups_restore

    previous = {key: app.conf[key] for key in ("task_always_eager", "task_eager_propagates")}
    with django_db_blocker.unblock():
        try:
            app.conf.update(task_always_eager=True, task_eager_propagates=True)  # the update runs here
            records = _world()
            app.conf.update(previous)
            yield records
        finally:
            app.conf.update(previous)
            call_command("flush", interactive=False, verbosity=0)
            role_groups_restore()  # later tests in this database rely on them (seed_demo)


def _world() -> dict[str, Any]:
    """A published test model, a consenting patient in the ICU, a dosed course with a level, and the
    pending recommendation its update made; the clinician and pharmacist are on the ICU's care team."""
    from django.utils import timezone

    from accounts.roles import Role
    from dosing import services as dosing
    from dosing.models import DrugLevel, Recommendation
    from models_catalog import services as catalog
    from models_catalog.models import Drug
    from patients import services as patients
    from tests.factories import UserFactory, care_team, consenting_icu_patient, published_test_version

    clinician = UserFactory(username="fuzz-clinician", roles=[Role.CLINICIAN])
    pharmacist = UserFactory(username="fuzz-pharmacist", roles=[Role.PHARMACIST])
    curator = UserFactory(username="fuzz-curator", roles=[Role.MODEL_CURATOR])
    second_curator = UserFactory(username="fuzz-curator-2", roles=[Role.MODEL_CURATOR])
    admin = UserFactory(username="fuzz-admin", is_staff=True, is_superuser=True)
    care_team(clinician, pharmacist)

    version = published_test_version(
        curator=curator, second_curator=second_curator, limits_source="test limits"
    )
    _shipped_drug("vancomycin")  # the drug of the catalog import's example

    now = timezone.now()
    patient = consenting_icu_patient(mrn="FUZZ-0001", user=clinician, now=now)
    genotype = patients.genotype_record(
        patient=patient,
        gene="CYP3A5",
        diplotype="*3/*3",
        lab="lab",
        reported_on=dt.date(2024, 1, 1),
        user=clinician,
    )
    patients.support_session_record(
        patient=patient,
        modality="crrt",
        started_at=now - dt.timedelta(days=5),
        ended_at=now - dt.timedelta(days=4),
        user=clinician,
    )
    on_crrt = patients.patient_create(
        mrn="FUZZ-0002",
        family_name="Bernard",
        given_name="Paul",
        birth_date=dt.date(1971, 2, 3),
        sex="male",
        ward="ICU",
        user=clinician,
    )
    session = patients.support_session_record(  # under way: it can be ended
        patient=on_crrt, modality="crrt", started_at=now - dt.timedelta(hours=6), user=clinician
    )
    course = dosing.course_open(
        patient=patient,
        model_version=version,
        indication="fuzzing",
        target={"metric": "trough", "low": 5, "high": 10},
        user=clinician,
    )
    dose = dosing.dose_record(
        course=course,
        given_at=now - dt.timedelta(hours=20),
        amount_mg=1000,
        route="iv_infusion",
        infusion_duration_h=1,
        user=clinician,
    )
    dosing.level_record(
        course=course, sampled_at=now - dt.timedelta(hours=8.5), value=7.0, unit="mg/L", user=clinician
    )
    # Far above what the model expects from the data before it: held out of the fit until confirmed.
    held = dosing.level_record(
        course=course, sampled_at=now - dt.timedelta(hours=2), value=400.0, unit="mg/L", user=clinician
    )
    held.refresh_from_db()
    assert held.plausibility == DrugLevel.Plausibility.HELD, held.plausibility
    recommendation = Recommendation.objects.get(course=course, status=Recommendation.Status.PENDING_REVIEW)
    drug = version.drug
    limits = {name: getattr(drug, name) for name in Drug.LIMIT_FIELDS}
    change_request = catalog.drug_limits_propose(  # by the other curator: the fuzzing one may decide it
        drug=drug, user=second_curator, reason="fuzzing", **{**limits, "max_single_dose_mg": 2500}
    )
    return {
        "users": {
            "clinician": clinician,
            "pharmacist": pharmacist,
            "curator": curator,
            "admin": admin,
        },
        "model_version": version,
        "change_request": change_request,
        "patient": patient,
        "measurement": patient.measurements.get(),
        "genotype": genotype,
        "session": session,
        "course": course,
        "dose": dose,
        "level": held,  # a held level can be confirmed, excluded or marked in error
        "update": recommendation.update,
        "recommendation": recommendation,
    }


def _shipped_drug(name: str) -> Any:
    import json

    from models_catalog.library import DRUG_FIELDS, LIBRARY_DIRECTORY
    from models_catalog.models import Drug

    drugs = json.loads((LIBRARY_DIRECTORY / "drugs.json").read_text(encoding="utf-8"))["drugs"]
    (item,) = (item for item in drugs if item["name"] == name)
    return Drug.objects.create(name=name, **{key: item[key] for key in DRUG_FIELDS if key in item})


def _token_caller(role: str, user: Any) -> Caller:
    from knox.models import AuthToken

    _, token = AuthToken.objects.create(user=user, expiry=dt.timedelta(hours=1))
    return Caller(role, user, {"Authorization": f"Token {token}"})


def _session_caller(role: str, user: Any) -> Caller:
    """A session signed in with password and authenticator code (tests.auth.login), and a CSRF token."""
    from django.conf import settings
    from django.middleware.csrf import _get_new_csrf_string
    from django.test import Client

    from tests.auth import login

    client = login(Client(), user)
    session_id = client.cookies[settings.SESSION_COOKIE_NAME].value
    csrf = _get_new_csrf_string()
    cookies = {settings.SESSION_COOKIE_NAME: session_id, settings.CSRF_COOKIE_NAME: csrf}
    return Caller(role, user, {"X-CSRFToken": csrf}, cookies)


@pytest.fixture
def caller(request: pytest.FixtureRequest, world: dict[str, Any], settings: Any) -> Caller:
    # Schemathesis' WSGI client keeps cookies for the host "localhost": the app must answer to it.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "localhost"]
    role = request.param
    if role == "anonymous":
        return Caller(role, None)
    user = world["users"][role]
    if role == "clinician":
        return _token_caller(role, user)
    return _session_caller(role, user)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REQUESTS_SENT[0]:
        terminalreporter.write_line(
            f"schemathesis: {REQUESTS_SENT[0]} requests sent to the API; "
            f"{len(WRITTEN)} writing operations recorded by their example"
        )
