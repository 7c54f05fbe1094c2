"""Sign-in: lockout after repeated failures, the second factor, no code used twice, idle timeout, Argon2."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.middleware import LAST_ACTIVITY
from accounts.roles import Role
from audit.models import AuditEntry
from tests.auth import login, next_totp_code, totp_code, totp_device
from tests.factories import PASSWORD, UserFactory
from tests.mipd_web import conftest as web_fixtures

pytestmark = pytest.mark.django_db
run_python = web_fixtures.run_python  # fresh processes: settings load once per process
LOGIN = "/accounts/login/"


def sign_in(client: Client, username: str, password: str, path: str = LOGIN):
    return client.post(path, {"username": username, "password": password})


def test_thirty_wrong_passwords_lock_the_account_and_the_right_one_is_then_refused() -> None:
    UserFactory(username="dr-house", roles=[Role.CLINICIAN])
    client = Client()
    statuses = [sign_in(client, "dr-house", f"wrong-{i}").status_code for i in range(30)]
    assert statuses[: settings.AXES_FAILURE_LIMIT - 1] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    assert set(statuses[settings.AXES_FAILURE_LIMIT :]) == {429}
    locked = sign_in(client, "dr-house", PASSWORD)
    assert locked.status_code == 429
    assert b"Sign-in locked" in locked.content
    minutes = round(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    assert f"It is locked for {minutes} minutes" in " ".join(locked.content.decode().split())
    assert "_auth_user_id" not in client.session
    assert AuditEntry.objects.filter(action="sign_in_locked").exists()


def test_the_admin_login_is_locked_out_too() -> None:
    UserFactory(username="it-admin", is_staff=True, is_superuser=True)
    client = Client()
    for i in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "it-admin", f"wrong-{i}", path="/admin/login/")
    assert sign_in(client, "it-admin", PASSWORD, path="/admin/login/").status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_lockout_ends_after_the_cooloff(settings) -> None:
    from axes.models import AccessAttempt

    UserFactory(username="dr-house", roles=[Role.CLINICIAN])
    client = Client()
    for i in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "dr-house", f"wrong-{i}")
    AccessAttempt.objects.update(attempt_time="2000-01-01T00:00:00Z")  # the cool-off has passed
    assert sign_in(client, "dr-house", PASSWORD).status_code == 302


@pytest.mark.parametrize("role", [Role.PHARMACIST, Role.MODEL_CURATOR, Role.AUDITOR])
def test_roles_that_sign_or_publish_need_the_second_factor(role: Role, settings) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # no pause after the wrong code (tested below)
    user = UserFactory(username="needs-otp", roles=[role])
    totp_device(user)
    client = Client()
    response = sign_in(client, "needs-otp", PASSWORD)
    assert response.status_code == 302
    # the password alone reaches nothing but the code page, and the API answers 403
    page = client.get("/patients/")
    assert page.status_code == 302 and page["Location"].startswith("/accounts/second-factor/")
    assert client.get("/api/v1/me/").status_code == 403
    wrong = client.post("/accounts/second-factor/", {"code": "000000", "next": "/"})
    assert wrong.status_code == 200 and b"wrong or was already used" in wrong.content
    right = client.post("/accounts/second-factor/", {"code": totp_code(user), "next": "/api/v1/me/"})
    assert right.status_code == 302 and right["Location"] == "/api/v1/me/"
    assert client.get("/api/v1/me/").status_code == 200
    assert AuditEntry.objects.filter(action="second_factor", actor_id=user.pk).exists()
    assert AuditEntry.objects.filter(action="second_factor_failed", actor_id=user.pk).exists()


def test_staff_need_the_second_factor_and_clinicians_do_not() -> None:
    admin = UserFactory(username="it-admin", is_staff=True, is_superuser=True)
    totp_device(admin)
    client = Client()
    sign_in(client, "it-admin", PASSWORD)
    assert client.get("/admin/").status_code == 302
    UserFactory(username="dr-house", roles=[Role.CLINICIAN])
    clinician = Client()
    sign_in(clinician, "dr-house", PASSWORD)
    assert clinician.get("/").status_code == 200


def test_a_code_is_accepted_once() -> None:
    user = UserFactory(username="pharma", roles=[Role.PHARMACIST])
    code = totp_code(user)
    first, second = Client(), Client()
    sign_in(first, "pharma", PASSWORD)
    assert first.post("/accounts/second-factor/", {"code": code}).status_code == 302
    sign_in(second, "pharma", PASSWORD)
    replay = second.post("/accounts/second-factor/", {"code": code})
    assert replay.status_code == 200  # the same code, again: refused
    assert second.get("/patients/").status_code == 302


def test_a_first_sign_in_enrols_an_authenticator_app() -> None:
    user = UserFactory(username="new-curator", roles=[Role.MODEL_CURATOR])
    client = Client()
    sign_in(client, "new-curator", PASSWORD)
    setup = client.get("/accounts/second-factor/")
    assert setup.status_code == 200
    page = setup.content.decode()
    assert "<svg" in page and 'class="totp-secret"' in page
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    assert client.get("/catalog/").status_code == 302  # not before the device is confirmed
    code = f"{totp(device.bin_key):06d}"  # what the app shows once the secret is added
    confirmed = client.post("/accounts/second-factor/", {"code": code, "next": "/catalog/"})
    assert confirmed.status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/catalog/").status_code == 200


def test_an_idle_session_ends_and_the_login_page_says_why(client: Client, settings) -> None:
    user = UserFactory(username="dr-house", roles=[Role.CLINICIAN])
    login(client, user)
    assert client.get("/").status_code == 200
    session = client.session
    session[LAST_ACTIVITY] = time.time() - settings.SESSION_IDLE_TIMEOUT - 1
    session.save()
    response = client.get("/patients/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=%2Fpatients%2F&idle=1")
    assert "_auth_user_id" not in client.session
    assert b"without activity" in client.get(response["Location"]).content
    assert AuditEntry.objects.filter(action="session_timeout", actor_id=user.pk).exists()


def test_an_active_session_stays(client: Client, settings) -> None:
    login(client, UserFactory(username="dr-house", roles=[Role.CLINICIAN]))
    session = client.session
    session[LAST_ACTIVITY] = time.time() - settings.SESSION_IDLE_TIMEOUT + 60
    session.save()
    assert client.get("/").status_code == 200


def test_the_idle_timeout_is_fifteen_minutes_by_default_and_configurable(run_python) -> None:
    from tests.mipd_web.conftest import PRODUCTION_ENV

    code = (
        "import django; django.setup(); from django.conf import settings as s; print(s.SESSION_IDLE_TIMEOUT)"
    )
    env = {"DJANGO_SETTINGS_MODULE": "mipd_web.settings", **PRODUCTION_ENV}
    assert run_python(code, env=env).stdout.strip() == "900"
    assert run_python(code, env={**env, "SESSION_IDLE_TIMEOUT": "300"}).stdout.strip() == "300"


def test_passwords_are_hashed_with_argon2_in_production(run_python) -> None:
    from tests.mipd_web.conftest import PRODUCTION_ENV

    code = (
        "import django; django.setup(); from django.contrib.auth.hashers import make_password; "
        "print(make_password('correct-horse-battery-staple'))"
    )
    result = run_python(code, env={"DJANGO_SETTINGS_MODULE": "mipd_web.settings", **PRODUCTION_ENV})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("argon2$argon2id$")


def test_a_used_code_is_refused_and_the_next_one_accepted(settings) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    user = UserFactory(username="pharma", roles=[Role.PHARMACIST])
    device = totp_device(user)
    code = totp_code(user)
    assert device.verify_token(code)
    assert not device.verify_token(code)
    assert device.verify_token(next_totp_code(user))


def test_wrong_codes_slow_down_guessing() -> None:
    user = UserFactory(username="pharma", roles=[Role.PHARMACIST])
    device = totp_device(user)
    assert not device.verify_token("000000")
    assert not device.verify_token(totp_code(user))  # even the right code, until the pause is over
    assert device.verify_is_allowed()[0] is False
