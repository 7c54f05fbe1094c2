"""How the suite treats a missing Chromium: browser tests skipped and said why locally, a failure in CI."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
A_BROWSER_TEST = "tests/browser/test_concentration_plot.py::test_rendering_again_replaces_the_chart"
NO_CHROMIUM = "/nonexistent/chromium"


def run_pytest(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    child_env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"MIPD_REQUIRE_SERVICES", "MIPD_CHROMIUM", "PYTEST_ADDOPTS"}
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


def test_without_chromium_the_browser_tests_are_skipped_with_the_install_command() -> None:
    result = run_pytest(A_BROWSER_TEST, env={"MIPD_CHROMIUM": NO_CHROMIUM})

    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert f"Chromium not found at {NO_CHROMIUM}" in result.stdout
    assert "apt-get install -y chromium" in result.stdout


# CI mode needs the services too (tests/conftest.py stops the run without them): it runs where they are.
@pytest.mark.services("postgresql", "redis")
def test_ci_mode_fails_the_run_when_chromium_is_missing() -> None:
    result = run_pytest(A_BROWSER_TEST, env={"MIPD_REQUIRE_SERVICES": "1", "MIPD_CHROMIUM": NO_CHROMIUM})

    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert (
        f"MIPD_REQUIRE_SERVICES=1 but the browser tests cannot run: Chromium not found at {NO_CHROMIUM}"
        in (result.stderr)
    )
