"""Settings read in a fresh process: production-safe defaults, Celery eager only without REDIS_URL."""

import json

from tests.mipd_web.conftest import PRODUCTION_ENV, RunInProcess

SHOW_SETTINGS = """
import json, django
from django.conf import settings
django.setup()
from mipd_web.celery import app
names = ["DEBUG", "ALLOWED_HOSTS", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SESSION_COOKIE_SECURE",
         "CSRF_COOKIE_SECURE", "SECURE_PROXY_SSL_HEADER"]
shown = {name: getattr(settings, name) for name in names}
shown["staticfiles"] = settings.STORAGES["staticfiles"]["BACKEND"]
shown["database"] = settings.DATABASES["default"]["ENGINE"]
shown["celery"] = {key: app.conf[key] for key in ("task_always_eager", "broker_url", "result_backend")}
print(json.dumps(shown))
"""


def show_settings(run_python: RunInProcess, env: dict[str, str]) -> dict:
    result = run_python(SHOW_SETTINGS, env={"DJANGO_SETTINGS_MODULE": "mipd_web.settings", **env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_production_defaults_are_secure(run_python: RunInProcess) -> None:
    shown = show_settings(run_python, PRODUCTION_ENV)
    assert shown["DEBUG"] is False
    assert shown["ALLOWED_HOSTS"] == ["mipd.example.org"]
    assert shown["SECURE_SSL_REDIRECT"] is True
    assert shown["SECURE_HSTS_SECONDS"] >= 365 * 24 * 60 * 60
    assert shown["SESSION_COOKIE_SECURE"] is True
    assert shown["CSRF_COOKIE_SECURE"] is True
    assert shown["SECURE_PROXY_SSL_HEADER"] is None
    assert shown["staticfiles"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"


def test_allowed_hosts_is_empty_in_production_unless_set(run_python: RunInProcess) -> None:
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != "ALLOWED_HOSTS"}
    assert show_settings(run_python, env)["ALLOWED_HOSTS"] == []


def test_debug_serves_localhost_over_plain_http(run_python: RunInProcess) -> None:
    shown = show_settings(run_python, {"DEBUG": "1"})
    assert shown["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1", "[::1]"]
    assert shown["SECURE_SSL_REDIRECT"] is False
    assert shown["database"] == "audit.backends.sqlite3"  # Django's SQLite backend, writing the audit chain


def test_tasks_run_in_process_without_redis_url(run_python: RunInProcess) -> None:
    celery = show_settings(run_python, PRODUCTION_ENV)["celery"]
    assert celery["task_always_eager"] is True
    assert celery["broker_url"] == "memory://"


def test_tasks_go_through_redis_when_redis_url_is_set(run_python: RunInProcess) -> None:
    redis_url = "redis://redis.example.org:6379/0"
    celery = show_settings(run_python, {**PRODUCTION_ENV, "REDIS_URL": redis_url})["celery"]
    assert celery["task_always_eager"] is False
    assert celery["broker_url"] == redis_url
    assert celery["result_backend"] == redis_url


def test_proxy_ssl_header_is_trusted_only_when_configured(run_python: RunInProcess) -> None:
    env = {**PRODUCTION_ENV, "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https"}
    assert show_settings(run_python, env)["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


SHOW_LIMITS = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({
    "rates": settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
    "budget_s": settings.ENGINE_REQUEST_BUDGET_S,
    "slots": settings.ENGINE_MAX_CONCURRENT_PER_PROCESS,
}))
"""


def test_the_request_limits_have_defaults_and_come_from_the_environment(run_python: RunInProcess) -> None:
    def shown(env: dict[str, str]) -> dict:
        result = run_python(SHOW_LIMITS, env={"DJANGO_SETTINGS_MODULE": "mipd_web.settings", **env})
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    assert shown(PRODUCTION_ENV) == {
        "rates": {"anon": "60/minute", "user": "2000/minute", "engine": "30/minute"},
        "budget_s": 10.0,
        "slots": 2,
    }
    configured = {
        "THROTTLE_ANON": "10/minute",
        "THROTTLE_USER": "500/hour",
        "THROTTLE_ENGINE": "5/minute",
        "ENGINE_REQUEST_BUDGET_S": "2.5",
        "ENGINE_MAX_CONCURRENT_PER_PROCESS": "4",
    }
    assert shown({**PRODUCTION_ENV, **configured}) == {
        "rates": {"anon": "10/minute", "user": "500/hour", "engine": "5/minute"},
        "budget_s": 2.5,
        "slots": 4,
    }
