"""Helpers shared by the benchmarks that need the real services: a scratch PostgreSQL database, Redis, the
published model library. Imported by the bench_*.py scripts that sit next to it."""

from __future__ import annotations

from io import StringIO


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
