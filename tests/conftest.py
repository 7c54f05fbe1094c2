"""Configuration shared by the whole test suite.

* Test-only environment defaults, set before Django reads its settings (pytest-django loads them after the
  initial conftest files, in its trylast ``pytest_configure``).
* Real services. A test marked ``@pytest.mark.services("postgresql", "redis")`` runs when DATABASE_URL and
  REDIS_URL point at reachable services; otherwise it is skipped and the run says which and why. With
  ``MIPD_REQUIRE_SERVICES=1`` (set by .ci/run) a missing or unreachable service stops the run instead.
* Slow tests (``@pytest.mark.slow``) run only with ``MIPD_RUN_SLOW=1``, which .ci/run sets.
* Nothing here needs Django unless pytest-django is active: ``tests/engine/`` also runs with ``-p no:django``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from _pytest.terminal import TerminalReporter

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mipd_web.settings")
os.environ.setdefault("FAIL_INVALID_TEMPLATE_VARS", "true")  # pytest-django: an undefined variable fails
if not os.environ.get("SECRET_KEY") and not os.environ.get("SECRET_KEY_FILE"):
    os.environ["SECRET_KEY"] = "test-only-secret-key-never-used-outside-the-test-suite-0123456789"

SKIP_PREFIX = "service unavailable"
HOW_TO_RUN = "set DATABASE_URL and REDIS_URL (README, 'Tests') or run `make ci`"


@dataclass(frozen=True)
class Service:
    name: str
    available: bool
    detail: str


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def services_required() -> bool:
    return _env_flag("MIPD_REQUIRE_SERVICES")


def run_slow() -> bool:
    return _env_flag("MIPD_RUN_SLOW")


def _probe_postgresql() -> Service:
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        return Service("postgresql", False, "DATABASE_URL is not set: the suite runs on SQLite")
    scheme = url.split("://", 1)[0].lower()
    if scheme not in {"postgres", "postgresql", "pgsql"}:
        return Service("postgresql", False, f"DATABASE_URL is a {scheme} URL: the suite runs on it")
    import dj_database_url
    import psycopg

    config = dj_database_url.parse(url)
    where = f"{config['HOST'] or 'localhost'}:{config['PORT'] or 5432}"
    try:
        # Django creates the test database from the maintenance database, as this probe connects.
        with psycopg.connect(
            host=config["HOST"] or None,
            port=config["PORT"] or None,
            user=config["USER"] or None,
            password=config["PASSWORD"] or None,
            dbname="postgres",
            connect_timeout=3,
        ):
            pass
    except psycopg.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Service("postgresql", False, f"PostgreSQL at {where} is unreachable: {first_line}")
    return Service("postgresql", True, f"PostgreSQL at {where}, database test_{config['NAME']}")


def _probe_redis() -> Service:
    url = os.environ.get("REDIS_URL", "").strip()
    if not url:
        return Service("redis", False, "REDIS_URL is not set: Celery runs tasks in process")
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    where = client.connection_pool.connection_kwargs
    label = f"{where.get('host', 'localhost')}:{where.get('port', 6379)}/{where.get('db', 0)}"
    try:
        client.ping()
    except redis.RedisError as exc:
        return Service("redis", False, f"Redis at {label} is unreachable: {exc}")
    finally:
        client.close()
    return Service("redis", True, f"Redis at {label}")


_services_key = pytest.StashKey[dict[str, Service]]()


def pytest_configure(config: pytest.Config) -> None:
    services = {service.name: service for service in (_probe_postgresql(), _probe_redis())}
    config.stash[_services_key] = services
    missing = [service for service in services.values() if not service.available]
    if services_required() and missing:
        problems = "; ".join(service.detail for service in missing)
        raise pytest.UsageError(f"MIPD_REQUIRE_SERVICES=1 but a required service is missing: {problems}")
    if config.pluginmanager.hasplugin("django"):
        _use_test_settings()


def _use_test_settings() -> None:
    """The few settings that differ under test, on top of the production defaults."""
    from django.conf import settings

    # collectstatic does not run before the tests; CI checks the manifest storage with collectstatic.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # The test client speaks plain HTTP; tests/mipd_web/test_security.py checks the redirect itself.
    settings.SECURE_SSL_REDIRECT = False
    # Hashing passwords slowly is the point in production and only costs time here (Argon2 is checked in
    # tests/accounts/test_passwords.py).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Transactional tests empty the test database after each test: past the audit tables' triggers.
    # TestCase never commits: the audit chain is written where the code under test would commit.
    from audit.testing import allow_test_database_flush, flush_at_the_end_of_each_block

    allow_test_database_flush()
    flush_at_the_end_of_each_block()


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = []
    for service in config.stash[_services_key].values():
        state = "available" if service.available else "NOT available, its tests are skipped"
        lines.append(f"mipd service {service.name}: {state} ({service.detail})")
    if services_required():
        lines.append("MIPD_REQUIRE_SERVICES=1: a missing service fails the run")
    slow = "run (MIPD_RUN_SLOW=1)" if run_slow() else "skipped (set MIPD_RUN_SLOW=1 to run them)"
    lines.append(f"slow tests: {slow}")
    return lines


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    services = config.stash[_services_key]
    slow_skip = pytest.mark.skip(reason="slow test: set MIPD_RUN_SLOW=1 to run it (.ci/run does)")
    for item in items:
        if not run_slow() and item.get_closest_marker("slow"):
            item.add_marker(slow_skip)
        names = [name for marker in item.iter_markers("services") for name in marker.args]
        unknown = sorted(set(names) - services.keys())
        if unknown:
            raise pytest.UsageError(f"{item.nodeid}: unknown service(s) {unknown} in @pytest.mark.services")
        missing = [services[name] for name in dict.fromkeys(names) if not services[name].available]
        if missing:
            needs = "; ".join(f"needs {service.name}: {service.detail}" for service in missing)
            item.add_marker(pytest.mark.skip(reason=f"{SKIP_PREFIX}: {needs}. To run: {HOW_TO_RUN}"))


def pytest_terminal_summary(
    terminalreporter: TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if isinstance(report.longrepr, tuple) and SKIP_PREFIX in report.longrepr[2]
    ]
    services = config.stash[_services_key].values()
    terminalreporter.section("mipd services")
    for service in services:
        state = "used" if service.available else "not available"
        terminalreporter.write_line(f"{service.name}: {state} ({service.detail})")
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} test(s) skipped because a service is missing:", yellow=True
        )
        for report in skipped:
            reason = report.longrepr[2].split(f"{SKIP_PREFIX}: ", 1)[-1].split(". To run: ", 1)[0]
            terminalreporter.write_line(f"  {report.nodeid}: {reason}", yellow=True)
        terminalreporter.write_line(f"To run them: {HOW_TO_RUN}.")


@pytest.fixture(autouse=True)
def _no_throttle_counts_carried_over(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts with no request counted by the API's throttles (their cache, Redis with REDIS_URL)
    and an empty default cache: one test's requests never throttle the next test's. The process's parsed
    models are forgotten too (a rolled-back test's row id may come again with another document)."""
    if request.config.pluginmanager.hasplugin("django"):
        from django.core.cache import cache

        from models_catalog import engine_adapter
        from tests.throttle_counts import forget_throttle_counts

        cache.clear()
        forget_throttle_counts()
        engine_adapter._parsed_models.clear()
    yield


@pytest.fixture
def celery_eager() -> Iterator[None]:
    """Run Celery tasks in process for this test, whether or not REDIS_URL is set."""
    from mipd_web.celery import app

    previous = {key: app.conf[key] for key in ("task_always_eager", "task_eager_propagates")}
    app.conf.update(task_always_eager=True, task_eager_propagates=True)
    try:
        yield
    finally:
        app.conf.update(previous)
