import pytest
from django.contrib.auth.models import AnonymousUser, Group

from accounts.roles import Role
from accounts.selectors import roles_cached_for_request, user_has_role, user_roles
from tests.factories import UserFactory


@pytest.mark.django_db
def test_roles_come_from_the_role_groups_only() -> None:
    user = UserFactory(roles=[Role.PHARMACIST])
    user.groups.add(Group.objects.create(name="coffee-club"))
    assert user_roles(user=user) == frozenset({Role.PHARMACIST})
    assert user_has_role(user=user, role=Role.PHARMACIST)
    assert not user_has_role(user=user, role=Role.CLINICIAN)


@pytest.mark.django_db
def test_inactive_and_anonymous_users_have_no_role() -> None:
    user = UserFactory(roles=[Role.CLINICIAN], is_active=False)
    assert user_roles(user=user) == frozenset()
    assert user_roles(user=AnonymousUser()) == frozenset()


@pytest.mark.django_db
def test_superusers_get_no_implicit_role() -> None:
    user = UserFactory(is_superuser=True, is_staff=True)
    assert user_roles(user=user) == frozenset()


def test_role_labels_read_well() -> None:
    assert Role.MODEL_CURATOR.label == "Model curator"


@pytest.mark.django_db
def test_a_request_reads_the_roles_once(django_assert_num_queries) -> None:
    user = UserFactory(roles=[Role.PHARMACIST])
    with roles_cached_for_request():
        with django_assert_num_queries(1):
            for _ in range(5):
                assert user_has_role(user=user, role=Role.PHARMACIST)


@pytest.mark.django_db
def test_a_changed_membership_shows_at_once_within_the_request() -> None:
    user = UserFactory(roles=[Role.PHARMACIST])
    clinicians, _ = Group.objects.get_or_create(name=Role.CLINICIAN.value)
    with roles_cached_for_request():
        assert not user_has_role(user=user, role=Role.CLINICIAN)
        user.groups.add(clinicians)
        assert user_has_role(user=user, role=Role.CLINICIAN)
        user.groups.clear()
        assert user_roles(user=user) == frozenset()
        clinicians.user_set.add(user)  # from the group's side
        assert user_has_role(user=user, role=Role.CLINICIAN)
        clinicians.user_set.remove(user)
        assert user_roles(user=user) == frozenset()


@pytest.mark.django_db
def test_a_renamed_group_shows_at_once_within_the_request() -> None:
    user = UserFactory(roles=[Role.PHARMACIST])
    group = user.groups.get(name=Role.PHARMACIST.value)
    with roles_cached_for_request():
        assert user_has_role(user=user, role=Role.PHARMACIST)
        group.name = "former-pharmacists"
        group.save()
        assert user_roles(user=user) == frozenset()


@pytest.mark.django_db
def test_roles_are_not_kept_between_requests(client) -> None:
    user = UserFactory(roles=[Role.CLINICIAN])
    client.force_login(user)
    assert client.get("/api/v1/me/").json()["roles"] == ["clinician"]
    user.groups.through.objects.filter(user=user).delete()  # sends no signal: the next request reads again
    assert client.get("/api/v1/me/").json()["roles"] == []
