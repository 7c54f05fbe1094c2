"""Logging in and out through the HTML pages."""

import pytest
from django.test import Client

from accounts.roles import Role
from tests.factories import PASSWORD, UserFactory


@pytest.mark.django_db
def test_home_sends_anonymous_users_to_the_login_page(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


@pytest.mark.django_db
def test_login_page_renders_a_csrf_protected_form(client: Client) -> None:
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b'name="csrfmiddlewaretoken"' in response.content
    assert b'name="username"' in response.content


@pytest.mark.django_db
def test_a_user_logs_in_and_sees_their_name_and_role() -> None:
    UserFactory(username="dr-house", first_name="Gregory", last_name="House", roles=[Role.CLINICIAN])
    client = Client(enforce_csrf_checks=True)
    login_page = client.get("/accounts/login/")
    token = login_page.cookies["csrftoken"].value
    response = client.post(
        "/accounts/login/",
        {"username": "dr-house", "password": PASSWORD, "csrfmiddlewaretoken": token},
        follow=True,
    )
    assert response.redirect_chain == [("/", 302)]
    page = response.content.decode()
    assert "Gregory House" in page
    assert "dr-house" in page
    assert "Clinician" in page


@pytest.mark.django_db
def test_a_wrong_password_is_refused(client: Client) -> None:
    UserFactory(username="dr-house")
    response = client.post("/accounts/login/", {"username": "dr-house", "password": "wrong"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert b"Please enter a correct username and password" in response.content


@pytest.mark.django_db
def test_a_user_without_role_is_told_so(client: Client) -> None:
    client.force_login(UserFactory())
    assert b"no role yet" in client.get("/").content


@pytest.mark.django_db
def test_logout_needs_a_post(client: Client) -> None:
    client.force_login(UserFactory())
    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert "_auth_user_id" not in client.session
