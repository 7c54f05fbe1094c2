"""The same JWT sent twice at the same moment to two web processes: PostgreSQL's unique row lets exactly one
through (the replay check is not a read-then-write race)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from django.db import connection

from ehr_integration.cds_auth import CdsAuthError, verify_request_jwt
from tests.ehr_integration.conftest import signed_jwt

pytestmark = [pytest.mark.services("postgresql"), pytest.mark.django_db(transaction=True)]
AUDIENCE = "http://testserver/cds-services/mipd-patient-view"


@pytest.fixture
def groups_put_back(transactional_db: None) -> Iterator[None]:
    yield
    from tests.factories import role_groups_restore

    role_groups_restore()  # the flush after this test removes them; later tests in this database need them


def test_two_simultaneous_uses_of_one_jti_let_one_through(groups_put_back, ehr_system, rsa_key) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (SQLite serialises writers)")
    token = signed_jwt(rsa_key, audience=AUDIENCE, jti="raced")
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def attempt() -> None:
        from django.db import connections

        try:
            barrier.wait(timeout=10)
            verify_request_jwt(authorization=f"Bearer {token}", audience=AUDIENCE)
            outcomes.append("accepted")
        except CdsAuthError as error:
            outcomes.append(error.message)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["accepted"] + ["this JWT (its jti) was already used: replay refused"] * 3
