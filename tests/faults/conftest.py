"""Fixtures of the fault tests (tests/faults/harness.py): our own Redis, the processes of the worker side,
the published test model and a clinician. Every process a fixture starts is stopped when the test ends."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import services_required
from tests.dosing import conftest as dosing_fixtures
from tests.faults.processes import HOW_TO_INSTALL, PostgresCluster, RedisServer, binary_problem

if TYPE_CHECKING:
    from rest_framework.test import APIClient

    from dosing.models import TherapyCourse
    from tests.faults.harness import Stack, UpdatesInFlight  # imported by the fixtures: needs Django set up

OWN_DATABASE = "mipd_faults"
clinician, published_version = dosing_fixtures.clinician, dosing_fixtures.published_version


SKIP_PREFIX = "fault test processes unavailable"


def pytest_report_header(config: pytest.Config) -> list[str]:
    problem = binary_problem()
    state = f"NOT available, the fault tests are skipped ({problem})" if problem else "available"
    return [f"mipd fault-test binaries (redis-server, PostgreSQL 15, runuser): {state}"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without the binaries: skipped with the reason locally; with MIPD_REQUIRE_SERVICES=1 (CI) the run stops
    before any test, as it does for a missing service (tests/conftest.py)."""
    fault_items = [item for item in items if item.get_closest_marker("faults")]
    problem = binary_problem() if fault_items else None
    if problem is None:
        return
    if services_required():
        raise pytest.UsageError(f"MIPD_REQUIRE_SERVICES=1 but the fault tests cannot run: {problem}")
    skip = pytest.mark.skip(reason=f"{SKIP_PREFIX}: {problem}. To run: {HOW_TO_INSTALL}")
    for item in fault_items:
        item.add_marker(skip)


@pytest.fixture
def role_groups(transactional_db: None) -> None:
    """The role groups: created by a migration, but a transactional test's flush empties the table."""
    from django.contrib.auth.models import Group

    from accounts.roles import Role

    for role in Role:
        Group.objects.get_or_create(name=role.value)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """Our own redis-server (started), and this process's Celery app sending to it."""
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory)
    from tests.faults.harness import sending_to

    server.start()
    try:
        with sending_to(server):
            yield server
    finally:
        server.kill()


@pytest.fixture
def stack(tmp_path: Path, redis_server: RedisServer, role_groups: None, settings: Any) -> Iterator[Stack]:
    """The worker side's processes, stopped at the end; this process configured as the web side of the same
    deployment (the short limits, the /healthz thresholds and token)."""
    from django.db import connection

    from tests.faults.harness import SHARED_SETTINGS, Stack, database_url

    for name, value in SHARED_SETTINGS.items():
        setattr(settings, name, value)

    assert connection.vendor == "postgresql"
    stack = Stack(directory=tmp_path, redis=redis_server, database_url=database_url())
    stack.marks.mkdir()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def own_postgresql(transactional_db: None) -> Iterator[PostgresCluster]:
    """Our own PostgreSQL cluster, holding a copy of the test database; for the test, this process's default
    connection (the web side) uses it, and so does every process the test starts (``database_url()``)."""
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection

    # Not under pytest's tmp_path: the cluster's files belong to user postgres, who cannot enter root's.
    directory = Path(tempfile.mkdtemp(prefix="mipd-faults-postgres-"))
    cluster = PostgresCluster(directory)
    saved = {key: connection.settings_dict[key] for key in ("NAME", "HOST", "PORT", "USER", "PASSWORD")}
    try:
        cluster.init()
        cluster.start()
        cluster.copy_database(source=connection.settings_dict, name=OWN_DATABASE)
        connection.close()
        connection.settings_dict.update(
            NAME=OWN_DATABASE, HOST="127.0.0.1", PORT=str(cluster.port), USER="postgres", PASSWORD=""
        )
        ContentType.objects.clear_cache()  # ids are per database
        yield cluster
    finally:
        connection.close()
        connection.settings_dict.update(saved)
        ContentType.objects.clear_cache()
        cluster.stop(mode="immediate")
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def clinician_api(clinician: Any) -> APIClient:
    """The API as the clinician (forced authentication), from this process: the web side."""
    from tests.faults.harness import api

    return api(clinician)


@pytest.fixture
def two_updates_queued(
    stack: Stack, clinician_api: APIClient, published_version: Any, clinician: Any
) -> list[TherapyCourse]:
    """Two courses, each with a dose and a level: their updates queued, before any worker runs."""
    from tests.faults.harness import courses_with_levels

    return courses_with_levels(
        clinician_api, count=2, with_level=2, version=published_version, user=clinician
    )


@pytest.fixture
def updates_in_flight(
    stack: Stack, clinician_api: APIClient, published_version: Any, clinician: Any
) -> UpdatesInFlight:
    """A worker and beat started, one update inside its engine run, one queued, one course without a level."""
    from tests.faults.harness import UpdatesInFlight, courses_with_levels, latest_update

    running, queued, third = courses_with_levels(
        clinician_api, count=3, with_level=2, version=published_version, user=clinician
    )
    stack.start_worker("worker")
    stack.start_beat()
    cut_short = latest_update(running)
    stack.wait_until_running(cut_short.pk)
    return UpdatesInFlight(running=running, queued=queued, third=third, cut_short=cut_short)
