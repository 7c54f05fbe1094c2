"""The throttles' counts are shared by every web process through Redis (REDIS_URL), kept in local memory
without it, and a Redis that cannot be reached lets requests through instead of failing them."""

from __future__ import annotations

import json
import logging
import os
import uuid

import pytest
from django.test import RequestFactory, override_settings

from mipd_web.throttles import UserRateThrottle
from tests.mipd_web.conftest import PRODUCTION_ENV, RunInProcess

# One web process: asks the user throttle (the settings' THROTTLE_USER) as many times as argv[2] says for
# the user whose primary key is argv[1], and prints whether each request was let through.
ASK_THE_USER_THROTTLE = """
import json, sys, types, django
django.setup()
from django.test import RequestFactory
from mipd_web.throttles import UserRateThrottle
request = RequestFactory().get("/api/v1/courses/")
request.user = types.SimpleNamespace(is_authenticated=True, pk=int(sys.argv[1]))
print(json.dumps([UserRateThrottle().allow_request(request, None) for _ in range(int(sys.argv[2]))]))
"""

SHOW_CACHE = """
import json, django
from django.conf import settings
django.setup()
from django.core.cache import caches
cache = caches[settings.THROTTLE_CACHE]
print(json.dumps({"backend": type(cache).__name__, "key": cache.make_key("k")}))
"""


def _env(**extra: str) -> dict[str, str]:
    return {"DJANGO_SETTINGS_MODULE": "mipd_web.settings", **PRODUCTION_ENV, **extra}


def _json(result) -> object:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.services("redis")
def test_two_web_processes_count_one_users_requests_together(run_python: RunInProcess) -> None:
    # Per hour: on a loaded machine each process takes many seconds to start, the count must outlast them.
    env = _env(REDIS_URL=os.environ["REDIS_URL"], THROTTLE_USER="3/hour")
    user_pk = str(uuid.uuid4().int % 10**12)  # a user no other test or run has counted
    first = _json(run_python(ASK_THE_USER_THROTTLE, user_pk, "2", env=env))
    second = _json(run_python(ASK_THE_USER_THROTTLE, user_pk, "2", env=env))
    assert first == [True, True]
    assert second == [True, False]  # the other process's two requests counted: the third is the last
    assert _json(run_python(ASK_THE_USER_THROTTLE, user_pk, "1", env=env)) == [False]
    another_user = str(int(user_pk) + 1)
    assert _json(run_python(ASK_THE_USER_THROTTLE, another_user, "1", env=env)) == [True]


def test_without_redis_each_process_counts_alone(run_python: RunInProcess) -> None:
    env = _env(THROTTLE_USER="3/minute")
    assert _json(run_python(SHOW_CACHE, env=env))["backend"] == "LocMemCache"
    for _ in range(2):  # a second process starts again from zero
        assert _json(run_python(ASK_THE_USER_THROTTLE, "7", "3", env=env)) == [True, True, True]


def test_with_redis_url_the_counts_go_to_redis_under_their_own_prefix(run_python: RunInProcess) -> None:
    shown = _json(run_python(SHOW_CACHE, env=_env(REDIS_URL="redis://redis.example.org:6379/0")))
    assert shown == {"backend": "RedisCache", "key": "mipd-throttle:1:k"}


UNREACHABLE = {
    "BACKEND": "django.core.cache.backends.redis.RedisCache",
    "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1: refused at once
    "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
}


def test_an_unreachable_redis_lets_the_request_through_and_says_so(caplog, settings) -> None:
    request = RequestFactory().get("/api/v1/courses/")
    request.user = type("User", (), {"is_authenticated": True, "pk": 1})()
    with override_settings(CACHES={**settings.CACHES, settings.THROTTLE_CACHE: UNREACHABLE}):
        with caplog.at_level(logging.WARNING, logger="mipd_web.throttles"):
            assert UserRateThrottle().allow_request(request, None) is True
    assert "request let through uncounted" in caplog.text
