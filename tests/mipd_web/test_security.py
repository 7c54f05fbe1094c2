"""HTTPS in production: the redirect, with /healthz exempt for load balancers."""

import pytest
from django.test import Client


@pytest.mark.django_db
def test_plain_http_is_redirected_to_https(client: Client, settings) -> None:
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/accounts/login/")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/accounts/login/"


@pytest.mark.django_db
def test_healthz_answers_plain_http_for_load_balancers(client: Client, settings, celery_eager: None) -> None:
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200


@pytest.mark.django_db
def test_pages_cannot_be_framed_and_sniffed(client: Client) -> None:
    response = client.get("/accounts/login/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
