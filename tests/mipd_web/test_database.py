import pytest
from django.db import connection


@pytest.mark.django_db
@pytest.mark.services("postgresql")
def test_the_suite_runs_on_postgresql_when_database_url_names_it() -> None:
    assert connection.vendor == "postgresql"
