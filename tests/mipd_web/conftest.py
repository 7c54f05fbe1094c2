"""Run manage.py or Python in a fresh process with a controlled environment: settings load once a process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# Every variable mipd_web.settings reads; a child process starts with none of them unless a test sets it.
CONFIG_VARIABLES = (
    "DJANGO_SETTINGS_MODULE",
    "DEBUG",
    "SECRET_KEY",
    "SECRET_KEY_FILE",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "DATABASE_URL",
    "DATABASE_CONN_MAX_AGE",
    "REDIS_URL",
    "TIME_ZONE",
    "LOG_LEVEL",
    "STATIC_ROOT",
    "SESSION_COOKIE_AGE",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER",
    "USE_X_FORWARDED_HOST",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SESSION_IDLE_TIMEOUT",
    "LOGIN_FAILURE_LIMIT",
    "LOGIN_LOCKOUT_MINUTES",
    "API_TOKEN_TTL_HOURS",
    "BREAK_GLASS_HOURS",
    "AUDIT_HMAC_KEY",
    "AUDIT_HMAC_KEY_FILE",
    "ENGINE_REQUEST_BUDGET_S",
    "ENGINE_MAX_CONCURRENT_PER_PROCESS",
    "THROTTLE_ANON",
    "THROTTLE_USER",
    "THROTTLE_ENGINE",
    "EHR_FRAME_ANCESTORS",
)

PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "k3y-for-tests-only-" + "0123456789abcdefghijklmnopqrstuvwxyz" * 2,
    "ALLOWED_HOSTS": "mipd.example.org",
    "DATABASE_URL": "sqlite:////tmp/mipd-settings-test-unused.sqlite3",
}

RunInProcess = Callable[..., subprocess.CompletedProcess[str]]


def _child_env(env: dict[str, str]) -> dict[str, str]:
    child = {key: value for key, value in os.environ.items() if key not in CONFIG_VARIABLES}
    child.update(env)
    return child


@pytest.fixture
def run_manage() -> RunInProcess:
    """``run_manage("check", env={...})`` runs ``manage.py check`` in a fresh process."""

    def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO_ROOT,
            env=_child_env(env),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run


@pytest.fixture
def run_python() -> RunInProcess:
    """``run_python("print(1)", *argv, env={...})`` runs Python in a fresh process at the repository root."""

    def run(code: str, *argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code, *argv],
            cwd=REPO_ROOT,
            env=_child_env(env),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run
