"""seed_demo: one demo user per role, idempotent, passwords printed once, embedded default only."""

import base64
import re
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command
from django.test import RequestFactory
from django_otp.oath import totp

from accounts.roles import Role
from accounts.selectors import user_roles

PASSWORD_LINE = re.compile(r"^\s*(demo-\S+)\s+role (\S+)\s+password (\S+)", re.MULTILINE)
TOTP_LINE = re.compile(r"^\s*(demo-\S+)\s+role (\S+)\s.*totp secret ([A-Z2-7]+)", re.MULTILINE)
DEMO_USERS = {"demo-clinician", "demo-pharmacist", "demo-curator", "demo-curator-2", "demo-auditor"}


def sign_in(username: str, password: str):
    """authenticate() as the login page calls it: with the request (django-axes counts failures by it)."""
    return authenticate(RequestFactory().post("/accounts/login/"), username=username, password=password)


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def debug_on(settings) -> None:
    settings.DEBUG = True


@pytest.mark.django_db
@pytest.mark.usefixtures("debug_on")
def test_it_creates_one_user_per_role_two_curators_and_prints_working_passwords() -> None:
    output = seed()
    printed = {username: (role, password) for username, role, password in PASSWORD_LINE.findall(output)}
    assert printed.keys() == DEMO_USERS
    for username, (role, password) in printed.items():
        user = sign_in(username, password)
        assert user is not None
        assert user_roles(user=user) == frozenset({Role(role)})


@pytest.mark.django_db
@pytest.mark.usefixtures("debug_on")
def test_users_who_need_a_second_factor_get_a_working_totp_secret_on_their_line() -> None:
    from accounts.otp import verify_code

    secrets = {username: secret for username, _, secret in TOTP_LINE.findall(seed())}
    assert secrets.keys() == DEMO_USERS - {"demo-clinician"}
    for username, secret in secrets.items():
        user = get_user_model().objects.get(username=username)
        code = f"{totp(base64.b32decode(secret)):06d}"  # what an authenticator app shows now
        assert verify_code(user=user, code=code) is not None
    # later runs print the same secrets (the device is kept), so the authenticator app keeps working
    assert {username: secret for username, _, secret in TOTP_LINE.findall(seed())} == secrets


@pytest.mark.django_db
@pytest.mark.usefixtures("debug_on")
def test_running_it_again_keeps_users_and_passwords() -> None:
    seed()
    hashes = dict(get_user_model().objects.values_list("username", "password"))
    output = seed()
    assert PASSWORD_LINE.findall(output) == []
    assert output.count("exists, password unchanged") == 5
    assert dict(get_user_model().objects.values_list("username", "password")) == hashes


@pytest.mark.django_db
@pytest.mark.usefixtures("debug_on")
def test_reset_passwords_prints_new_ones() -> None:
    first = {name: pw for name, _, pw in PASSWORD_LINE.findall(seed())}
    second = {name: pw for name, _, pw in PASSWORD_LINE.findall(seed("--reset-passwords"))}
    assert second.keys() == first.keys()
    for username, password in second.items():
        assert password != first[username]
        assert sign_in(username, password) is not None


@pytest.mark.django_db
@pytest.mark.usefixtures("debug_on")
def test_it_puts_a_demo_user_back_in_its_role() -> None:
    seed()
    curator = get_user_model().objects.get(username="demo-curator")
    curator.groups.clear()
    curator.is_active = False
    curator.save()
    seed()
    curator.refresh_from_db()
    assert curator.is_active
    assert user_roles(user=curator) == frozenset({Role.MODEL_CURATOR})


@pytest.mark.django_db
def test_it_refuses_to_run_with_debug_off(settings) -> None:
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG on"):
        seed()
    assert not get_user_model().objects.filter(username__startswith="demo-").exists()
    seed("--force")
    assert get_user_model().objects.filter(username__startswith="demo-").count() == 5
