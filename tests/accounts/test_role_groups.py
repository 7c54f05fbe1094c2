import pytest
from django.contrib.auth.models import Group

from accounts.roles import Role


@pytest.mark.django_db
def test_every_role_has_its_group_after_migrate() -> None:
    names = set(Group.objects.values_list("name", flat=True))
    assert {"clinician", "pharmacist", "model_curator"} <= names
    assert {role.value for role in Role} <= names
