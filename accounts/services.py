"""Writes about users: the demo accounts of the embedded default."""

import base64
import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from accounts.otp import SECOND_FACTOR_ROLES
from accounts.roles import Role

# Two curators, because publishing a model needs a second curator's approval (four-eyes).
DEMO_USERS: tuple[tuple[str, Role], ...] = (
    ("demo-clinician", Role.CLINICIAN),
    ("demo-pharmacist", Role.PHARMACIST),
    ("demo-curator", Role.MODEL_CURATOR),
    ("demo-curator-2", Role.MODEL_CURATOR),
    ("demo-auditor", Role.AUDITOR),
)
DEMO_CARE_TEAM = "Demo TDM service (all wards)"


@dataclass(frozen=True)
class SeededUser:
    username: str
    role: Role
    created: bool
    password: str | None  # the new password when one was set, else None (it is never stored in clear)
    totp_secret: str | None = None  # base32, for an authenticator app; roles that need a second factor


def _new_password() -> str:
    return secrets.token_urlsafe(12)


@transaction.atomic
def demo_users_seed(*, reset_passwords: bool = False) -> list[SeededUser]:
    """Create the demo users (one per role, two curators), or put existing ones back in their group.

    Idempotent: an existing user keeps its password unless ``reset_passwords`` is set.
    """
    user_model = get_user_model()
    seeded = []
    for username, role in DEMO_USERS:
        group = Group.objects.get(name=role.value)  # created by accounts.0001_role_groups
        user, created = user_model.objects.get_or_create(
            username=username, defaults={"first_name": "Demo", "last_name": role.label}
        )
        password = None
        if created or reset_passwords:
            password = _new_password()
            user.set_password(password)
        if password is not None or not user.is_active:
            user.is_active = True
            user.save(update_fields=["password", "is_active"])
        user.groups.add(group)
        secret = _demo_totp_secret(user) if role in SECOND_FACTOR_ROLES else None
        seeded.append(
            SeededUser(username=username, role=role, created=created, password=password, totp_secret=secret)
        )
    _demo_care_team(user_model)
    return seeded


def _demo_totp_secret(user) -> str:
    """The demo user's authenticator secret (created once, then kept): printed so a person can sign in."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="demo authenticator", confirmed=True)
    return base64.b32encode(device.bin_key).decode("ascii")


def _demo_care_team(user_model) -> None:
    """The demo clinician and pharmacist care for every demo patient (a hospital-wide service team)."""
    from patients.models import CareTeam

    team, _ = CareTeam.objects.get_or_create(name=DEMO_CARE_TEAM, defaults={"covers_all_wards": True})
    team.members.add(*user_model.objects.filter(username__in=["demo-clinician", "demo-pharmacist"]))
