"""Read configuration from environment variables, failing loudly and naming the variable.

Every setting of mipd-web comes from the environment (see README.md, "Environment variables"). A missing or
malformed value raises :class:`ConfigurationError`; ``manage.py``, the WSGI/ASGI entry points and the Celery
worker turn it into one line on stderr and a non-zero exit instead of a traceback.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_DATABASE_SCHEMES = {
    "postgres": "PostgreSQL",
    "postgresql": "PostgreSQL",
    "pgsql": "PostgreSQL",
    "sqlite": "SQLite",
}


class ConfigurationError(ImproperlyConfigured):
    """A configuration variable is missing or malformed; the message names it and fits on one line."""

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        super().__init__(f"Configuration error: {name} {problem}")


def _raw(name: str) -> str | None:
    """The stripped value of ``name``; ``None`` when unset or blank."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def env_str(name: str, *, default: str) -> str:
    value = _raw(name)
    return default if value is None else value


def env_bool(name: str, *, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigurationError(name, f"must be one of 1/0, true/false, yes/no, on/off (got {value!r})")


def env_int(name: str, *, default: int, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigurationError(name, f"must be a whole number (got {value!r})") from None
    if minimum is not None and number < minimum:
        raise ConfigurationError(name, f"must be at least {minimum} (got {number})")
    return number


def env_float(name: str, *, default: float, minimum: float | None = None) -> float:
    """A finite decimal number (``2.5``), at least ``minimum`` when given."""
    value = _raw(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigurationError(name, f"must be a number (got {value!r})") from None
    if not math.isfinite(number):
        raise ConfigurationError(name, f"must be a finite number (got {value!r})")
    if minimum is not None and number < minimum:
        raise ConfigurationError(name, f"must be at least {minimum:g} (got {number:g})")
    return number


_RATE_PERIODS = ("second", "minute", "hour", "day")


def env_rate(name: str, *, default: str) -> str:
    """A request rate as DRF's throttles read it: ``30/minute`` (per second, minute, hour or day)."""
    value = env_str(name, default=default)
    count, _, period = value.partition("/")
    if not (count.isascii() and count.isdigit() and int(count) >= 1 and period in _RATE_PERIODS):
        raise ConfigurationError(
            name,
            f"must be a number of requests per {', '.join(_RATE_PERIODS)} such as 30/minute (got {value!r})",
        )
    return value


def env_list(name: str, *, default: list[str]) -> list[str]:
    """A comma-separated list; blank items are dropped."""
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def env_origins(name: str) -> list[str]:
    """Web origins (``https://ehr.hospital.example`` or with a port), comma-separated; none when unset.

    HTTPS only, except a loopback host (a test EHR on this machine); no path, query or wildcard: each is
    written into a Content-Security-Policy source list as it is.
    """
    origins = env_list(name, default=[])
    for origin in origins:
        try:
            parts = urlsplit(origin)
            port = parts.port  # ValueError when not a number in range
        except ValueError:
            parts, port = None, None
        secure = parts is not None and (
            parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS)
        )
        well_formed = (
            parts is not None
            and bool(parts.hostname)
            and origin == f"{parts.scheme}://{parts.netloc}"  # no path, query, fragment or trailing slash
            and "@" not in parts.netloc
            and "*" not in origin
            and (port is None or f":{port}" in parts.netloc)
        )
        if not (secure and well_formed):
            raise ConfigurationError(
                name,
                "must list origins such as https://ehr.hospital.example or https://ehr.hospital.example:8443 "
                f"(https, no path, no wildcard; http only for localhost), got {origin!r}",
            )
    return origins


def env_secret(name: str, *, required: bool) -> str | None:
    """A secret from ``NAME`` or from the file named by ``NAME_FILE`` (Docker/Kubernetes secrets)."""
    file_name = f"{name}_FILE"
    value = _raw(name)
    path = _raw(file_name)
    if value is not None and path is not None:
        raise ConfigurationError(name, f"and {file_name} are both set; set only one of them")
    if path is not None:
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigurationError(
                file_name, f"names a file that cannot be read ({exc.strerror})"
            ) from None
        if not value:
            raise ConfigurationError(file_name, "names an empty file")
    if value is None and required:
        raise ConfigurationError(name, f"is not set; set {name} or {file_name} (required when DEBUG is off)")
    return value


def env_database(name: str, *, default: str, conn_max_age: int) -> dict[str, Any]:
    """A Django ``DATABASES`` entry parsed from a URL (PostgreSQL or SQLite).

    The URL itself never appears in an error message: it usually carries a password.
    """
    url = env_str(name, default=default)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in _DATABASE_SCHEMES:
        raise ConfigurationError(
            name,
            "is not a valid database URL: expected postgres://USER:PASSWORD@HOST:PORT/NAME "
            "or sqlite:////ABSOLUTE/PATH",
        )
    try:
        config: dict[str, Any] = dj_database_url.parse(
            url, conn_max_age=conn_max_age, conn_health_checks=conn_max_age > 0
        )
    except ValueError as exc:
        raise ConfigurationError(
            name, f"is not a valid database URL ({type(exc).__name__}; check quoting and the port)"
        ) from None
    if not config.get("NAME"):
        raise ConfigurationError(name, "names no database (the path after the host is empty)")
    if _DATABASE_SCHEMES[scheme] == "SQLite":
        # Several runserver threads and an eager Celery task may write at once: wait for the lock instead of
        # failing, and take the write lock when a transaction starts (no upgrade deadlocks).
        config["CONN_MAX_AGE"] = 0
        config["CONN_HEALTH_CHECKS"] = False
        config["OPTIONS"] = {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    return config


def env_time_zone(name: str, *, default: str) -> str:
    value = env_str(name, default=default)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(name, f"is not a known IANA time zone (got {value!r})") from None
    return value


def env_log_level(name: str, *, default: str) -> str:
    value = env_str(name, default=default).upper()
    if value not in _LOG_LEVELS:
        raise ConfigurationError(name, f"must be one of {', '.join(_LOG_LEVELS)} (got {value!r})")
    return value


def env_proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """``HTTP_X_FORWARDED_PROTO,https`` → ``("HTTP_X_FORWARDED_PROTO", "https")``; unset → ``None``.

    Set it only when a reverse proxy that you control strips or overwrites this header.
    """
    value = _raw(name)
    if value is None:
        return None
    header, _, expected = (part.strip() for part in value.partition(","))
    if not header.startswith("HTTP_") or not expected:
        raise ConfigurationError(name, f"must look like HTTP_X_FORWARDED_PROTO,https (got {value!r})")
    return header, expected


@contextlib.contextmanager
def exit_on_configuration_error(exit_code: int = 2) -> Iterator[None]:
    """Turn a :class:`ConfigurationError` into its one-line message on stderr and ``SystemExit``."""
    try:
        yield
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(exit_code) from None
