"""The second factor (TOTP, django-otp): who needs it, their device, and verifying a code.

Pharmacists sign recommendations, curators publish what doses are computed with, auditors read every
record's history and staff administer accounts: each of them signs in with a password and a code from an
authenticator app (RFC 6238, 30 s steps). Clinicians may enrol a device too; once they have one it is asked.
A code is accepted once: django-otp's TOTP device remembers the last time step used (no replay) and slows
down guessing after failures.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django_otp import devices_for_user
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.roles import Role
from accounts.selectors import user_roles

SECOND_FACTOR_ROLES = frozenset({Role.PHARMACIST, Role.MODEL_CURATOR, Role.AUDITOR})


def second_factor_required(*, user: AbstractBaseUser | AnonymousUser) -> bool:
    if not user.is_authenticated:
        return False
    if getattr(user, "is_staff", False) or getattr(user, "is_superuser", False):
        return True
    return bool(user_roles(user=user) & SECOND_FACTOR_ROLES) or has_device(user=user)


def has_device(*, user: Any) -> bool:
    return any(True for _ in devices_for_user(user, confirmed=True))


def totp_device(*, user: Any) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def verify_code(*, user: Any, code: str) -> TOTPDevice | None:
    """The device that accepts ``code`` now (the code is then spent), or None."""
    code = "".join((code or "").split())
    if not code.isdigit():
        return None
    for device in TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk"):
        allowed, _ = device.verify_is_allowed()
        if allowed and device.verify_token(code):
            return device
    return None
