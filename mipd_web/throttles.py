"""API throttles whose rates come from the settings when a request arrives (not when DRF is imported).

DRF's throttles copy ``DEFAULT_THROTTLE_RATES`` into a class attribute at import, so a changed setting (a
test's ``override_settings``) would not reach them; these read ``api_settings`` on every request. Three
scopes: ``anon`` and ``user`` on every endpoint, and ``engine`` on the endpoints that run the engine (what-if,
a pharmacist's changed regimen and review, a model's validation), counted per user across all of them.
Counts live in the default cache, which is per web process unless a shared cache is configured.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import throttling
from rest_framework.settings import api_settings

ENGINE_SCOPE = "engine"


class _RatesAtCallTime:
    """First in the bases: its ``get_rate`` replaces DRF's, the DRF class gives the ``scope``."""

    def get_rate(self) -> str | None:
        scope = getattr(self, "scope", None)
        if not scope:
            raise ImproperlyConfigured(f"{type(self).__name__} has no throttle scope")
        try:
            return api_settings.DEFAULT_THROTTLE_RATES[scope]
        except KeyError:
            raise ImproperlyConfigured(f"no throttle rate set for the scope '{scope}'") from None


class AnonRateThrottle(_RatesAtCallTime, throttling.AnonRateThrottle):
    """Requests without a signed-in user, per client address."""


class UserRateThrottle(_RatesAtCallTime, throttling.UserRateThrottle):
    """Requests of one signed-in user (or, without one, one address)."""


class ScopedRateThrottle(_RatesAtCallTime, throttling.ScopedRateThrottle):
    """Requests of one user to the views that share a ``throttle_scope`` (``engine``)."""


# Documented as bare objects: the schema hook (mipd_web.api_errors) gives them the shared ErrorDetail shape
# ({"detail": ...}, more keys allowed) and keeps these descriptions.
ENGINE_RESPONSES: dict[int, Any] = {
    429: OpenApiResponse(
        response=OpenApiTypes.OBJECT,
        description="Too many engine requests from this user (setting THROTTLE_ENGINE, e.g. 30/minute): "
        "wait the seconds of the Retry-After header, then send the request again.",
    ),
    503: OpenApiResponse(
        response=OpenApiTypes.OBJECT,
        description="The engine was busy (code engine_busy) or ran out of its time budget (code "
        "engine_deadline); nothing was computed or stored. Retry after the seconds of the Retry-After header "
        "(also in retry_after_s); see docs/api-limits.md.",
    ),
}
