"""Throttles in tests: forget their counts between tests (without emptying the Redis database they share),
and set their rates for one test."""

from __future__ import annotations

from django.conf import settings
from django.test import override_settings


def rates(**changes: str) -> override_settings:
    """``with rates(engine="2/minute"):`` the throttles read these rates (they read them per request)."""
    current = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    return override_settings(
        REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {**current, **changes}}
    )


def forget_throttle_counts() -> None:
    """Every request counted so far by ``mipd_web.throttles`` is forgotten (a test starts with none).

    With Redis, only the throttles' own keys go: ``clear()`` would empty the whole database, the broker's
    queues with it.
    """
    from django.conf import settings
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    cache = caches[settings.THROTTLE_CACHE]
    if not isinstance(cache, RedisCache):
        cache.clear()
        return
    client = cache._cache.get_client(write=True)
    keys = list(client.scan_iter(match=cache.make_key("*"), count=1000))
    if keys:
        client.delete(*keys)
