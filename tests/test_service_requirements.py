"""How the suite treats missing services: skipped and reported locally, a failure in CI."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
A_FAST_TEST = "tests/accounts/test_selectors.py::test_role_labels_read_well"
A_SERVICE_TEST = "tests/mipd_web/test_database.py"


def run_pytest(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    child_env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "MIPD_REQUIRE_SERVICES", "PYTEST_ADDOPTS"}
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=REPO_ROOT,
        env={**child_env, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_ci_mode_fails_the_run_when_a_service_is_not_configured() -> None:
    result = run_pytest(A_FAST_TEST, env={"MIPD_REQUIRE_SERVICES": "1"})
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "MIPD_REQUIRE_SERVICES=1 but a required service is missing" in result.stderr
    assert "DATABASE_URL is not set" in result.stderr
    assert "REDIS_URL is not set" in result.stderr


def test_ci_mode_fails_the_run_when_a_service_is_unreachable() -> None:
    # Port 9 (discard) on localhost: nothing listens there, the connection is refused at once.
    env = {"MIPD_REQUIRE_SERVICES": "1", "REDIS_URL": "redis://127.0.0.1:9/0"}
    result = run_pytest(A_FAST_TEST, env=env)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "Redis at 127.0.0.1:9/0 is unreachable" in result.stderr


def test_without_services_their_tests_are_skipped_and_listed() -> None:
    result = run_pytest(A_SERVICE_TEST, env={})
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout
    assert "1 test(s) skipped because a service is missing" in result.stdout
    assert "DATABASE_URL is not set" in result.stdout
