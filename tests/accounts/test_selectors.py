import pytest
from django.contrib.auth.models import AnonymousUser, Group

from accounts.roles import Role
from accounts.selectors import user_has_role, user_roles
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
