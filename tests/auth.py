"""Signing in as a test user the way the application requires: with the second factor where it is needed.

``login(client, user)`` is ``client.force_login(user)`` plus, for a user who needs a second factor
(pharmacists, curators, auditors, staff), a confirmed TOTP device and a session verified with it, as after a
real sign-in with password and code. ``totp_code(user)`` gives the device's current code (for signatures),
``next_totp_code(user)`` one that has not been used yet.
"""

from __future__ import annotations

import time
from typing import Any

from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.otp import second_factor_required

SESSION_DEVICE_KEY = "otp_device_id"  # django_otp.DEVICE_ID_SESSION_KEY


def totp_device(user: Any) -> TOTPDevice:
    device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="test authenticator", confirmed=True)
    return device


def totp_code(user: Any, *, at: float | None = None) -> str:
    """The code the user's authenticator shows at ``at`` (now by default)."""
    device = totp_device(user)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = at if at is not None else time.time()
    return f"{totp.token():0{device.digits}d}"


def next_totp_code(user: Any) -> str:
    """A code the device has not accepted yet: the current one, or the next step's if the current is spent.

    The device accepts a code one step ahead (tolerance 1), so a test need not wait 30 s between two uses.
    """
    device = totp_device(user)
    device.refresh_from_db()
    now = time.time()
    current_t = int((now - device.t0) // device.step)
    if device.last_t is not None and device.last_t >= current_t:
        return totp_code(user, at=now + device.step * (device.last_t - current_t + 1))
    return totp_code(user, at=now)


def allow_codes_ahead(user: Any, steps: int) -> None:
    """Let the device accept codes up to ``steps`` steps ahead, for a test that signs more than twice within
    one 30-s step (each attempt past the password spends a code)."""
    device = totp_device(user)
    device.tolerance = steps
    device.save(update_fields=["tolerance"])


def login(client: Any, user: Any) -> Any:
    """Sign ``user`` in on the test client, second factor included where the user needs one."""
    client.force_login(user)
    if second_factor_required(user=user):
        device = totp_device(user)
        session = client.session
        session[SESSION_DEVICE_KEY] = device.persistent_id
        session.save()
    return client
