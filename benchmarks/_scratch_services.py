"""Helpers shared by the benchmarks that need the real services: a scratch PostgreSQL database, Redis, the
published model library. Imported by the bench_*.py scripts that sit next to it."""

from __future__ import annotations

import warnings
from io import StringIO
from typing import Any


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
