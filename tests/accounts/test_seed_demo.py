"""seed_demo: one demo user per role, idempotent, passwords printed once, embedded default only."""

import re
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

from accounts.roles import Role
from accounts.selectors import user_roles

PASSWORD_LINE = re.compile(r"^\s*(demo-\S+)\s+role (\S+)\s+password (\S+)", re.MULTILINE)


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def debug_on(settings) -> None:
    settings.DEBUG = True


@pytest.mark.django_db
@pytest.mark.usefixtures("debug_on")
def test_it_creates_one_user_per_role_two_curators_and_prints_working_passwords() -> None:
    printed = {username: (role, password) for username, role, password in PASSWORD_LINE.findall(seed())}
    assert printed.keys() == {"demo-clinician", "demo-pharmacist", "demo-curator", "demo-curator-2"}
    for username, (role, password) in printed.items():
        user = authenticate(username=username, password=password)
        assert user is not None
        assert user_roles(user=user) == frozenset({Role(role)})


@pytest.mark.django_db
@pytest.mark.usefixtures("debug_on")
def test_running_it_again_keeps_users_and_passwords() -> None:
    seed()
    hashes = dict(get_user_model().objects.values_list("username", "password"))
    output = seed()
    assert PASSWORD_LINE.findall(output) == []
    assert output.count("exists, password unchanged") == 4
    assert dict(get_user_model().objects.values_list("username", "password")) == hashes


@pytest.mark.django_db
@pytest.mark.usefixtures("debug_on")
def test_reset_passwords_prints_new_ones() -> None:
    first = {name: pw for name, _, pw in PASSWORD_LINE.findall(seed())}
    second = {name: pw for name, _, pw in PASSWORD_LINE.findall(seed("--reset-passwords"))}
    assert second.keys() == first.keys()
    for username, password in second.items():
        assert password != first[username]
        assert authenticate(username=username, password=password) is not None


@pytest.mark.django_db
@pytest.mark.usefixtures("debug_on")
def test_it_puts_a_demo_user_back_in_its_role() -> None:
    seed()
    curator = get_user_model().objects.get(username="demo-curator")
    curator.groups.clear()
    curator.is_active = False
    curator.save()
    seed()
    curator.refresh_from_db()
    assert curator.is_active
    assert user_roles(user=curator) == frozenset({Role.MODEL_CURATOR})


@pytest.mark.django_db
def test_it_refuses_to_run_with_debug_off(settings) -> None:
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG on"):
        seed()
    assert not get_user_model().objects.filter(username__startswith="demo-").exists()
    seed("--force")
    assert get_user_model().objects.filter(username__startswith="demo-").count() == 4
