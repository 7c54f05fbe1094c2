"""API throttles whose rates come from the settings when a request arrives (not when DRF is imported).

DRF's throttles copy ``DEFAULT_THROTTLE_RATES`` into a class attribute at import, so a changed setting (a
test's ``override_settings``) would not reach them; these read ``api_settings`` on every request. Three
scopes: ``anon`` and ``user`` on every endpoint, and ``engine`` on the endpoints that run the engine (what-if,
a pharmacist's changed regimen and review, a model's validation), counted per user across all of them.

Counts live in the ``THROTTLE_CACHE`` (settings): Redis when ``REDIS_URL`` is set, so every web process
counts against the same limit; local memory, per process, in the embedded default. A Redis that cannot be
reached lets the request through (logged): the broker's outage must not take every page and API call down,
and the engine's per-process slots (mipd_web.engine_calls) still bound the work.
"""

from __future__ import annotations

import logging
import math
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core.cache import BaseCache, caches
from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from redis import RedisError
from rest_framework import throttling
from rest_framework.settings import api_settings

ENGINE_SCOPE = "engine"
logger = logging.getLogger(__name__)


class _SharedThrottle:
    """First in the bases: its rate (read at call time), cache and failure handling replace DRF's; the DRF
    class gives the ``scope`` and the key."""

    def get_rate(self) -> str | None:
        scope = getattr(self, "scope", None)
        if not scope:
            raise ImproperlyConfigured(f"{type(self).__name__} has no throttle scope")
        try:
            return api_settings.DEFAULT_THROTTLE_RATES[scope]
        except KeyError:
            raise ImproperlyConfigured(f"no throttle rate set for the scope '{scope}'") from None

    @property
    def cache(self) -> BaseCache:
        """The shared counts (DRF's own classes use the default cache, per process)."""
        return caches[settings.THROTTLE_CACHE]

    def allow_request(self, request: Any, view: Any) -> bool:
        try:
            return super().allow_request(request, view)  # type: ignore[misc]
        except RedisError as exc:
            logger.warning("throttle counts unavailable (%s): request let through uncounted", exc)
            return True


class AnonRateThrottle(_SharedThrottle, throttling.AnonRateThrottle):
    """Requests without a signed-in user, per client address."""


class UserRateThrottle(_SharedThrottle, throttling.UserRateThrottle):
    """Requests of one signed-in user (or, without one, one address)."""


class ScopedRateThrottle(_SharedThrottle, throttling.ScopedRateThrottle):
    """Requests of one user to the views that share a ``throttle_scope`` (``engine``)."""


_ENGINE_VIEW = SimpleNamespace(throttle_scope=ENGINE_SCOPE)


def engine_page_wait_s(request: Any) -> int | None:
    """An engine call from a page (a Django view, not DRF) counted against the user's engine rate, the one
    the API's engine endpoints share (``THROTTLE_ENGINE``): ``None`` when it may run, else the whole seconds
    to wait before the next one may (the Retry-After of a 429)."""
    throttle = ScopedRateThrottle()
    if throttle.allow_request(request, _ENGINE_VIEW):
        return None
    return max(1, math.ceil(throttle.wait() or 1))


def engine_rate() -> str:
    """The engine rate as a person reads it: "30 per minute"."""
    return api_settings.DEFAULT_THROTTLE_RATES[ENGINE_SCOPE].replace("/", " per ")


def engine_throttled_message(wait_s: int, *, then: str) -> str:
    """What a page says when its engine call was refused by the user's engine rate; ``then``: what to do
    after waiting ("press Compute again")."""
    return (
        f"Too many computations in a short time: at most {engine_rate()} for each user, on the pages and the "
        f"API together. Nothing was computed. Wait {wait_s} seconds, then {then}."
    )


def throttled_response(response: Any, wait_s: int | None) -> Any:
    """``response`` answered 429 with Retry-After when the engine rate refused the page's call."""
    if wait_s is not None:
        response.status_code = 429
        response["Retry-After"] = str(wait_s)
    return response


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
