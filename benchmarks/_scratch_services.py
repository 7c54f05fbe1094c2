"""Helpers shared by the benchmarks that need the real services: a scratch PostgreSQL database, Redis, the
published model library. Imported by the bench_*.py scripts that sit next to it."""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import subprocess
import warnings
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def add_service_options(parser: argparse.ArgumentParser) -> None:
    """``--postgres`` (a server, the scratch database is made on it) and ``--redis`` (a spare database)."""
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432",
        help="PostgreSQL server URL without a database name; a scratch database is created and dropped",
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13", help="a spare Redis database")


def skipped_without_services(args: argparse.Namespace) -> bool:
    """True, having printed why, when the ``--postgres`` or ``--redis`` of ``args`` cannot be reached."""
    missing = services_missing(args.postgres, args.redis)
    if missing:
        print(f"skipped: {missing}")
    return bool(missing)


def scratch_environment(
    database_url: str, redis_url: str, *, allowed_host: str = "testserver", **extra: str
) -> dict[str, str]:
    """Production settings (DEBUG off) on the scratch services, served over plain HTTP on the loopback (or
    to the Django test client: ``testserver``); ``extra`` variables on top."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mipd_web.settings",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": allowed_host,
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


@contextlib.contextmanager
def scratch_database(server_url: str, prefix: str, *, keep: bool = False) -> Iterator[str]:
    """A new database ``<prefix>_<pid>`` on the server, its URL yielded; this process's connections are
    closed and the database dropped at the end, whatever happened (``keep``: left, and its URL printed)."""
    database = f"{prefix}_{os.getpid()}"
    admin_execute(server_url, f'CREATE DATABASE "{database}"')
    try:
        yield f"{server_url}/{database}"
    finally:
        from django.db import connections

        connections.close_all()
        if keep:
            print(f"scratch database kept: {server_url}/{database}")
        else:
            admin_execute(server_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def stop(process: subprocess.Popen[bytes] | None, timeout_s: float = 30) -> None:
    """Terminate a server or worker the benchmark started; killed if it has not exited after ``timeout_s``."""
    if process is None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def admin_execute(server_url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as connection:
        connection.execute(statement)


def services_missing(postgres_url: str, redis_url: str | None) -> str:
    """Why the benchmark cannot run here ("" when it can): it needs the real services, not the defaults."""
    import psycopg

    try:
        with psycopg.connect(f"{postgres_url}/postgres", connect_timeout=3):
            pass
    except psycopg.Error as exc:
        return f"PostgreSQL at {postgres_url} is unreachable: {str(exc).strip().splitlines()[0]}"
    if redis_url:
        import redis

        client = redis.Redis.from_url(redis_url, socket_connect_timeout=3)
        try:
            client.ping()
        except redis.RedisError as exc:
            return f"Redis at {redis_url} is unreachable: {exc}"
        finally:
            client.close()
    return ""


def load_library_subset(model_files: tuple[str, ...]) -> None:
    """Only these files of the published library (with every drug and target): validating the whole library
    takes minutes on a busy machine, a benchmark that uses one model need not wait for it."""
    import shutil
    import tempfile
    from pathlib import Path

    from django.contrib.auth import get_user_model

    from models_catalog.library import LIBRARY_DIRECTORY, library_load

    users = get_user_model().objects
    with tempfile.TemporaryDirectory(prefix="mipd-library-") as directory:
        subset = Path(directory)
        (subset / "models").mkdir()
        shutil.copy(LIBRARY_DIRECTORY / "drugs.json", subset / "drugs.json")
        for name in model_files:
            shutil.copy(LIBRARY_DIRECTORY / "models" / name, subset / "models" / name)
        report = library_load(
            directory=subset,
            requested_by=users.get(username="demo-curator"),
            approved_by=users.get(username="demo-curator-2"),
        )
    for problem in report.problems:
        print(f"model library: {problem}")


def load_library() -> None:
    """The published model library; an entry that fails to load is reported, the others are used."""
    from django.core.management import CommandError, call_command

    err = StringIO()
    try:
        call_command(
            "load_model_library",
            requested_by="demo-curator",
            approved_by="demo-curator-2",
            stdout=StringIO(),
            stderr=err,
        )
    except CommandError as exc:
        print(f"model library: {exc}: {' '.join(err.getvalue().split())}")


# The manifest of collected static files is not built for a benchmark: plain static storage for templates.
PLAIN_STATIC_STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}


def django_with_library(model_files: tuple[str, ...] = ()) -> Any:
    """Django on the scratch database: migrated, demo users, the published library (or only ``model_files``
    of it); the demo clinician."""
    import django

    # collectstatic has not run: WhiteNoise warns that STATIC_ROOT is missing, which does not matter here.
    warnings.filterwarnings("ignore", message="No directory at")
    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from accounts.services import demo_users_seed

    call_command("migrate", verbosity=0)
    demo_users_seed()
    if model_files:
        load_library_subset(model_files)
    else:
        load_library()
    return get_user_model().objects.get(username="demo-clinician")
