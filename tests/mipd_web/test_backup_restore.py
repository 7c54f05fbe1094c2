"""Backup and restore as docs/operations.md prescribes: ``pg_dump --format=custom`` of a populated database,
``pg_restore`` into a fresh one, and the copy holds every row of every table and an intact audit trail.

The database is the test database, committed (a transactional test: pg_dump reads from its own connection):
the demo users, the published library and the demo patients with their courses, doses, levels and updates,
and one recommendation signed by a pharmacist. Each table of the restored copy must have the same number of
rows and the same MD5 of its rows in a fixed order; ``manage.py audit_verify`` must pass on the copy in a
process of its own, with the keys of the original. A dump that leaves out the levels' rows must fail both
checks, which shows the comparison can see a missing table.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection

from dosing import services
from dosing.models import Recommendation
from tests.auth import next_totp_code
from tests.conftest import services_required
from tests.factories import PASSWORD

REPO_ROOT = Path(__file__).resolve().parents[2]
# The tables whose rows the negative check's dump leaves out: the levels, and the scores that refer to them
# (a restore re-creates the foreign keys, so leaving out the levels alone fails the restore itself).
LEFT_OUT = ["dosing_druglevel", "performance_prospectivescore"]
# Rows as text in byte order (COLLATE "C": the order does not depend on the server's locale), one MD5.
ROWS_DIGEST = (
    "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text COLLATE \"C\"), '')) "
    'FROM "{table}" t'
)

pytestmark = [
    pytest.mark.services("postgresql"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("celery_eager"),
]


def _libpq_env() -> dict[str, str]:
    """pg_dump and pg_restore reach the server the test database lives on, with its credentials."""
    db = connection.settings_dict
    env = {**os.environ, "PGHOST": db["HOST"] or "localhost", "PGPORT": str(db["PORT"] or 5432)}
    if db["USER"]:
        env["PGUSER"] = db["USER"]
    if db["PASSWORD"]:
        env["PGPASSWORD"] = db["PASSWORD"]
    return env


def _connect(name: str) -> psycopg.Connection[Any]:
    env = _libpq_env()
    return psycopg.connect(
        host=env["PGHOST"],
        port=env["PGPORT"],
        user=env.get("PGUSER"),
        password=env.get("PGPASSWORD"),
        dbname=name,
        autocommit=True,
    )


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=_libpq_env(), capture_output=True, text=True, timeout=300, check=False)


def _table_digests(name: str) -> dict[str, tuple[int, str]]:
    """Every table of the public schema: (row count, MD5 of its rows as text in byte order)."""
    with _connect(name) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
            )
        ]
        digests = {}
        for table in tables:
            count, digest = conn.execute(ROWS_DIGEST.format(table=table)).fetchone()
            digests[table] = (count, digest)
    return digests


def _sequences(name: str) -> dict[str, int | None]:
    """Where each id sequence stands: a restored database must not hand out an id already used."""
    with _connect(name) as conn:
        rows = conn.execute("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'")
        return dict(rows.fetchall())


def _audit_triggers(name: str) -> set[str]:
    with _connect(name) as conn:
        rows = conn.execute(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid::regclass::text LIKE 'audit_%'"
        )
        return {row[0] for row in rows}


def _audit_verify(name: str) -> subprocess.CompletedProcess[str]:
    """``manage.py audit_verify`` in a fresh process on database ``name``, with the original's keys."""
    db = connection.settings_dict
    user = f"{db['USER']}{':' + db['PASSWORD'] if db['PASSWORD'] else ''}@" if db["USER"] else ""
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {"DATABASE_URL", "REDIS_URL", "AUDIT_HMAC_KEY", "AUDIT_HMAC_KEY_FILE", "SECRET_KEY_FILE"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="mipd_web.settings",
        DATABASE_URL=f"postgres://{user}{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{name}",
        SECRET_KEY=settings.SECRET_KEY,  # the audit key derives from it unless AUDIT_HMAC_KEY is set
        DEBUG="0",
        ALLOWED_HOSTS="localhost",
    )
    for key in ("AUDIT_HMAC_KEY", "AUDIT_HMAC_KEY_FILE"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    return subprocess.run(
        [sys.executable, "manage.py", "audit_verify"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def populated() -> str:
    """The test database, committed: demo data, a signed review and their audit entries. Returns its name."""
    from tests.factories import role_groups_restore

    role_groups_restore()  # an earlier transactional test's flush removes what the migrations created
    call_command("seed_demo", force=True, stdout=StringIO())
    pharmacist = get_user_model().objects.get(username="demo-pharmacist")
    pharmacist.set_password(PASSWORD)  # the demo's password is printed, not known here
    pharmacist.save()
    pending = Recommendation.objects.filter(status=Recommendation.Status.PENDING_REVIEW).order_by("pk")
    recommendation = pending.first()
    assert recommendation is not None, "the demo courses left no recommendation to sign"
    services.recommendation_review(
        recommendation=recommendation,
        user=pharmacist,
        decision="reject",  # a rejection needs no red warning acknowledged, whatever the demo's figures
        password=PASSWORD,
        otp_code=next_totp_code(pharmacist),
        note="backup test: signed so that the dump holds a signature",
    )
    return connection.settings_dict["NAME"]


@pytest.fixture
def scratch_databases(populated: str) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    with _connect("postgres") as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _dump_and_restore(source: str, target: str, dump: Path, *extra: str) -> None:
    dumped = _run("pg_dump", "--format=custom", "--no-owner", f"--file={dump}", *extra, source)
    assert dumped.returncode == 0, dumped.stderr
    with _connect("postgres") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{target}"')
    restored = _run("pg_restore", "--no-owner", "--exit-on-error", f"--dbname={target}", str(dump))
    assert restored.returncode == 0, restored.stderr


@pytest.fixture
def client_tools() -> None:
    """pg_dump and pg_restore: without them the test is skipped, saying so; in CI it fails instead."""
    missing = [tool for tool in ("pg_dump", "pg_restore") if shutil.which(tool) is None]
    if missing:
        why = f"{' and '.join(missing)} not on PATH (install the PostgreSQL client tools)"
        if services_required():
            pytest.fail(f"MIPD_REQUIRE_SERVICES=1 but {why}")
        pytest.skip(why)


@pytest.mark.usefixtures("client_tools")
def test_a_restored_dump_holds_every_row_and_an_intact_audit_trail(
    populated: str, scratch_databases: list[str], tmp_path: Path
) -> None:
    # As at backup time: verify the trail (the run is itself an entry), then dump what it left.
    verified = _audit_verify(populated)
    assert verified.returncode == 0, verified.stderr
    original = _table_digests(populated)
    for table in (
        "audit_auditentry",
        "dosing_druglevel",
        "dosing_bayesianupdate",
        "dosing_electronicsignature",
        "performance_prospectivescore",
    ):
        assert original[table][0] > 0, f"the populated database has no rows in {table}"
    with _connect(populated) as conn:
        head = conn.execute("SELECT entry_hash FROM audit_auditentry ORDER BY seq DESC LIMIT 1").fetchone()[0]

    restored_name = f"{populated}_restore"
    scratch_databases.append(restored_name)
    _dump_and_restore(populated, restored_name, tmp_path / "full.dump")
    restored = _table_digests(restored_name)
    assert restored.keys() == original.keys()
    differing = [table for table in original if restored[table] != original[table]]
    assert differing == [], f"tables that differ after the restore: {differing}"
    assert _sequences(restored_name) == _sequences(populated)
    assert _audit_triggers(restored_name) == _audit_triggers(populated) != set()
    check = _audit_verify(restored_name)
    assert check.returncode == 0, check.stderr
    assert "Audit trail intact" in check.stdout
    assert f"Head: {head}" in check.stdout  # the same chain as dumped, not merely a consistent one

    # Negative check: a dump without the levels' rows is caught by both the comparison and audit_verify.
    partial_name = f"{populated}_partial"
    scratch_databases.append(partial_name)
    excluded = [f"--exclude-table-data={table}" for table in LEFT_OUT]
    _dump_and_restore(populated, partial_name, tmp_path / "partial.dump", *excluded)
    partial = _table_digests(partial_name)
    assert sorted(table for table in original if partial[table] != original[table]) == sorted(LEFT_OUT)
    assert all(partial[table][0] == 0 for table in LEFT_OUT)
    broken = _audit_verify(partial_name)
    assert broken.returncode == 1
    assert "Audit trail BROKEN" in broken.stderr
    assert "dosing.druglevel" in broken.stderr and "deleted outside the application" in broken.stderr
