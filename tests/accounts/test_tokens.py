"""API tokens: hashed at rest, with an expiry, revoked with the password, shown once, never to 2FA roles."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken

from accounts.roles import Role
from tests.auth import login
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def issue(username: str, *args: str) -> str:
    out = StringIO()
    call_command("api_token_issue", "--user", username, *args, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def me(client: Client, token: str) -> int:
    return client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {token}").status_code


def test_a_token_is_printed_once_and_stored_only_as_a_digest(client: Client) -> None:
    UserFactory(username="ehr-bridge", roles=[Role.CLINICIAN])
    token = issue("ehr-bridge")
    assert token.startswith("mipd_")
    row = AuthToken.objects.get()
    assert token not in (row.digest, row.token_key) and len(row.digest) == 128
    assert row.digest != token and len(row.token_key) == 15  # an identifying prefix, not the secret
    assert row.expiry is not None and row.expiry > timezone.now()
    assert me(client, token) == 200


def test_an_expired_token_is_refused(client: Client) -> None:
    UserFactory(username="ehr-bridge", roles=[Role.CLINICIAN])
    token = issue("ehr-bridge", "--hours", "1")
    AuthToken.objects.update(expiry=timezone.now() - dt.timedelta(seconds=1))
    assert me(client, token) in (401, 403)


def test_every_token_has_an_expiry_within_the_configured_limit(settings) -> None:
    UserFactory(username="ehr-bridge", roles=[Role.CLINICIAN])
    with pytest.raises(CommandError, match="--hours"):
        issue("ehr-bridge", "--hours", str(settings.API_TOKEN_TTL_HOURS + 1))


def test_a_password_change_revokes_the_tokens(client: Client) -> None:
    user = UserFactory(username="ehr-bridge", roles=[Role.CLINICIAN])
    token = issue("ehr-bridge")
    user.set_password("a-new-password-for-the-bridge")
    user.save()
    assert not AuthToken.objects.exists()
    assert me(client, token) in (401, 403)


def test_deactivating_an_account_revokes_its_tokens(client: Client) -> None:
    user = UserFactory(username="ehr-bridge", roles=[Role.CLINICIAN])
    token = issue("ehr-bridge")
    user.is_active = False
    user.save()
    assert me(client, token) in (401, 403)


@pytest.mark.parametrize("role", [Role.PHARMACIST, Role.MODEL_CURATOR, Role.AUDITOR])
def test_accounts_with_a_second_factor_get_no_token_and_cannot_use_one(client: Client, role: Role) -> None:
    user = UserFactory(username="signer", roles=[role])
    with pytest.raises(CommandError, match="second factor"):
        issue("signer")
    _, token = AuthToken.objects.create(user=user)  # e.g. issued before the role was given
    assert me(client, token) in (401, 403)


def test_the_admin_never_shows_a_token(client: Client) -> None:
    UserFactory(username="ehr-bridge", roles=[Role.CLINICIAN])
    token = issue("ehr-bridge")
    admin = UserFactory(username="it-admin", is_staff=True, is_superuser=True)
    login(client, admin)
    listing = client.get("/admin/knox/authtoken/")
    assert listing.status_code == 200
    page = listing.content.decode()
    assert token not in page  # only the digest (a SHA-512) and the 15-character key prefix
    assert client.get("/admin/knox/authtoken/add/").status_code == 403
