"""Without redis-server or PostgreSQL's binaries the fault tests are skipped with the reason (the report
header says so), except in CI (MIPD_REQUIRE_SERVICES=1), where the run stops before any test, naming what is
missing."""

import os
import subprocess
import sys

import pytest

from tests.faults.processes import REPO_ROOT

pytestmark = pytest.mark.services("postgresql", "redis")  # CI mode probes them before collecting
A_FAULT_TEST = "tests/faults/test_worker_killed.py"
MISSING = {"MIPD_REDIS_SERVER": "/nonexistent/redis-server", "MIPD_POSTGRES_BIN": "/nonexistent/pg/bin"}


def run_a_fault_test(**env: str) -> subprocess.CompletedProcess[str]:
    child_env = {key: value for key, value in os.environ.items() if key != "PYTEST_ADDOPTS"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", A_FAULT_TEST],
        cwd=REPO_ROOT,
        env={**child_env, **MISSING, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_in_ci_missing_binaries_stop_the_run() -> None:
    result = run_a_fault_test(MIPD_REQUIRE_SERVICES="1")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert "MIPD_REQUIRE_SERVICES=1 but the fault tests cannot run" in result.stderr
    assert "/nonexistent/redis-server" in result.stderr and "/nonexistent/pg/bin/initdb" in result.stderr
