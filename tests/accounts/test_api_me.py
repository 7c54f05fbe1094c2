import pytest
from django.test import Client
from knox.models import AuthToken

from accounts.roles import Role
from tests.auth import login
from tests.factories import UserFactory


@pytest.mark.django_db
def test_it_needs_authentication(client: Client) -> None:
    assert client.get("/api/v1/me/").status_code == 403


@pytest.mark.django_db
def test_it_tells_a_session_user_their_roles(client: Client) -> None:
    login(client, UserFactory(username="pharma", roles=[Role.PHARMACIST, Role.MODEL_CURATOR]))
    response = client.get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json() == {"username": "pharma", "roles": ["model_curator", "pharmacist"]}


@pytest.mark.django_db
def test_hospital_systems_authenticate_with_a_token(client: Client) -> None:
    _, token = AuthToken.objects.create(user=UserFactory(username="ehr-bridge"))
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 200
    assert response.json()["username"] == "ehr-bridge"
