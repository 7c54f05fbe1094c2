"""The environment helpers behind mipd_web.settings: every error names its variable on one line."""

from pathlib import Path

import pytest

from mipd_web.env import (
    ConfigurationError,
    env_bool,
    env_database,
    env_float,
    env_int,
    env_list,
    env_log_level,
    env_proxy_ssl_header,
    env_secret,
    env_time_zone,
)


def assert_one_line_naming(exc_info: pytest.ExceptionInfo[ConfigurationError], name: str) -> None:
    message = str(exc_info.value)
    assert message.startswith(f"Configuration error: {name} ")
    assert "\n" not in message
    assert exc_info.value.name == name


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("yes", True), ("ON", True), ("0", False), ("off", False)]
)
def test_env_bool_accepts_the_usual_spellings(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool
) -> None:
    monkeypatch.setenv("MIPD_FLAG", raw)
    assert env_bool("MIPD_FLAG", default=not expected) is expected


def test_env_bool_uses_the_default_when_unset_or_blank(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MIPD_FLAG", raising=False)
    assert env_bool("MIPD_FLAG", default=True) is True
    monkeypatch.setenv("MIPD_FLAG", "  ")
    assert env_bool("MIPD_FLAG", default=False) is False


def test_env_bool_rejects_anything_else(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBUG", "maybe")
    with pytest.raises(ConfigurationError) as exc_info:
        env_bool("DEBUG", default=False)
    assert_one_line_naming(exc_info, "DEBUG")


def test_env_int_rejects_text_and_values_below_the_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECURE_HSTS_SECONDS", "a year")
    with pytest.raises(ConfigurationError) as exc_info:
        env_int("SECURE_HSTS_SECONDS", default=0)
    assert_one_line_naming(exc_info, "SECURE_HSTS_SECONDS")
    monkeypatch.setenv("SECURE_HSTS_SECONDS", "-1")
    with pytest.raises(ConfigurationError):
        env_int("SECURE_HSTS_SECONDS", default=0, minimum=0)


def test_env_list_splits_on_commas_and_drops_blanks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_HOSTS", " mipd.example.org, ,localhost ")
    assert env_list("ALLOWED_HOSTS", default=[]) == ["mipd.example.org", "localhost"]


def test_env_secret_is_required_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("SECRET_KEY_FILE", raising=False)
    assert env_secret("SECRET_KEY", required=False) is None
    with pytest.raises(ConfigurationError) as exc_info:
        env_secret("SECRET_KEY", required=True)
    assert_one_line_naming(exc_info, "SECRET_KEY")


def test_env_secret_reads_the_file_named_by_name_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("s3cr3t-from-a-file\n", encoding="utf-8")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("SECRET_KEY_FILE", str(secret_file))
    assert env_secret("SECRET_KEY", required=True) == "s3cr3t-from-a-file"


def test_env_secret_rejects_a_missing_file_and_a_double_definition(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "absent"))
    with pytest.raises(ConfigurationError) as exc_info:
        env_secret("SECRET_KEY", required=True)
    assert_one_line_naming(exc_info, "SECRET_KEY_FILE")
    monkeypatch.setenv("SECRET_KEY", "also-set")
    with pytest.raises(ConfigurationError) as exc_info:
        env_secret("SECRET_KEY", required=True)
    assert_one_line_naming(exc_info, "SECRET_KEY")


def test_env_database_parses_postgresql_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://mipd:pw@db.example.org:5433/mipd")
    config = env_database("DATABASE_URL", default="sqlite:////tmp/unused.sqlite3", conn_max_age=60)
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db.example.org", 5433, "mipd")
    assert config["CONN_MAX_AGE"] == 60
    assert config["CONN_HEALTH_CHECKS"] is True


def test_env_database_defaults_to_a_sqlite_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    config = env_database("DATABASE_URL", default="sqlite:////srv/mipd/var/mipd.sqlite3", conn_max_age=60)
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == "/srv/mipd/var/mipd.sqlite3"
    assert config["CONN_MAX_AGE"] == 0


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "mysql://mipd:pw@db/mipd",
        "postgres://mipd:secret-password@db:notaport/mipd",
        "postgres://mipd:secret-password@db:5432",
    ],
)
def test_env_database_rejects_unparsable_urls_without_echoing_them(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(ConfigurationError) as exc_info:
        env_database("DATABASE_URL", default="sqlite:////tmp/unused.sqlite3", conn_max_age=0)
    assert_one_line_naming(exc_info, "DATABASE_URL")
    assert "secret-password" not in str(exc_info.value)


def test_env_time_zone_and_log_level_reject_unknown_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIME_ZONE", "Mars/Olympus_Mons")
    with pytest.raises(ConfigurationError) as exc_info:
        env_time_zone("TIME_ZONE", default="UTC")
    assert_one_line_naming(exc_info, "TIME_ZONE")
    monkeypatch.setenv("LOG_LEVEL", "chatty")
    with pytest.raises(ConfigurationError) as exc_info:
        env_log_level("LOG_LEVEL", default="INFO")
    assert_one_line_naming(exc_info, "LOG_LEVEL")


def test_env_proxy_ssl_header_is_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECURE_PROXY_SSL_HEADER", raising=False)
    assert env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER") is None
    monkeypatch.setenv("SECURE_PROXY_SSL_HEADER", "HTTP_X_FORWARDED_PROTO,https")
    assert env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER") == ("HTTP_X_FORWARDED_PROTO", "https")
    monkeypatch.setenv("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto")
    with pytest.raises(ConfigurationError) as exc_info:
        env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER")
    assert_one_line_naming(exc_info, "SECURE_PROXY_SSL_HEADER")


@pytest.mark.parametrize(("raw", "expected"), [("10", 10.0), ("2.5", 2.5), (" 0.1 ", 0.1)])
def test_env_float_reads_decimal_numbers(monkeypatch: pytest.MonkeyPatch, raw: str, expected: float) -> None:
    monkeypatch.setenv("ENGINE_REQUEST_BUDGET_S", raw)
    assert env_float("ENGINE_REQUEST_BUDGET_S", default=10.0, minimum=0.1) == pytest.approx(expected)


@pytest.mark.parametrize("raw", ["ten", "nan", "inf", "0.01", "-1"])
def test_env_float_refuses_words_non_finite_and_too_small(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("ENGINE_REQUEST_BUDGET_S", raw)
    with pytest.raises(ConfigurationError) as exc_info:
        env_float("ENGINE_REQUEST_BUDGET_S", default=10.0, minimum=0.1)
    assert_one_line_naming(exc_info, "ENGINE_REQUEST_BUDGET_S")
