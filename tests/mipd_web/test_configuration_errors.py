"""Bad configuration stops start-up with one line naming the variable, never a traceback."""

import subprocess

import pytest

from tests.mipd_web.conftest import PRODUCTION_ENV, RunInProcess


def assert_one_line_error(result: subprocess.CompletedProcess[str], variable: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Configuration error: {variable} "), lines[0]


def test_it_refuses_to_start_without_secret_key_when_debug_is_off(run_manage: RunInProcess) -> None:
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != "SECRET_KEY"}
    assert_one_line_error(run_manage("check", env=env), "SECRET_KEY")


def test_it_refuses_an_unparsable_database_url(run_manage: RunInProcess) -> None:
    env = {**PRODUCTION_ENV, "DATABASE_URL": "postgres://mipd:hunter2@db:port/mipd"}
    result = run_manage("check", env=env)
    assert_one_line_error(result, "DATABASE_URL")
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DEBUG", "maybe"),
        ("REDIS_URL", "localhost:6379"),
        ("TIME_ZONE", "Europe/Atlantis"),
        ("LOG_LEVEL", "loud"),
        ("THROTTLE_ENGINE", "30 per minute"),
        ("THROTTLE_USER", "0/minute"),
        ("ENGINE_REQUEST_BUDGET_S", "0"),
        ("ENGINE_MAX_CONCURRENT_PER_PROCESS", "0"),
    ],
)
def test_it_names_any_malformed_variable(run_manage: RunInProcess, variable: str, value: str) -> None:
    assert_one_line_error(run_manage("check", env={**PRODUCTION_ENV, variable: value}), variable)


def test_every_management_command_reports_bad_configuration_the_same_way(run_manage: RunInProcess) -> None:
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != "SECRET_KEY"}
    assert_one_line_error(run_manage("seed_demo", env=env), "SECRET_KEY")


def test_the_wsgi_entry_point_exits_with_gunicorns_boot_error_code(run_python: RunInProcess) -> None:
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != "SECRET_KEY"}
    result = run_python("import mipd_web.wsgi", env=env)
    assert_one_line_error(result, "SECRET_KEY")
    assert result.returncode == 3


def test_the_celery_worker_reports_bad_configuration_in_one_line(run_python: RunInProcess) -> None:
    env = {**PRODUCTION_ENV, "DATABASE_URL": "nonsense"}
    result = run_python("from celery.bin.celery import main; main()", "-A", "mipd_web", "report", env=env)
    assert_one_line_error(result, "DATABASE_URL")


def test_debug_runs_without_secret_key(run_manage: RunInProcess) -> None:
    result = run_manage("check", env={"DEBUG": "1", "DATABASE_URL": PRODUCTION_ENV["DATABASE_URL"]})
    assert result.returncode == 0, result.stderr


def test_check_deploy_passes_with_production_variables(run_manage: RunInProcess) -> None:
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
