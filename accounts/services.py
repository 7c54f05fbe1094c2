"""Writes about users: the demo accounts of the embedded default."""

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from accounts.roles import Role

DEMO_USERS: dict[Role, str] = {
    Role.CLINICIAN: "demo-clinician",
    Role.PHARMACIST: "demo-pharmacist",
    Role.MODEL_CURATOR: "demo-curator",
}


@dataclass(frozen=True)
class SeededUser:
    username: str
    role: Role
    created: bool
    password: str | None  # the new password when one was set, else None (it is never stored in clear)


def _new_password() -> str:
    return secrets.token_urlsafe(12)


@transaction.atomic
def demo_users_seed(*, reset_passwords: bool = False) -> list[SeededUser]:
    """Create one demo user per role, or bring existing ones back into their role's group.

    Idempotent: an existing user keeps its password unless ``reset_passwords`` is set.
    """
    user_model = get_user_model()
    seeded = []
    for role, username in DEMO_USERS.items():
        group = Group.objects.get(name=role.value)  # created by accounts.0001_role_groups
        user, created = user_model.objects.get_or_create(
            username=username, defaults={"first_name": "Demo", "last_name": role.label}
        )
        password = None
        if created or reset_passwords:
            password = _new_password()
            user.set_password(password)
        if password is not None or not user.is_active:
            user.is_active = True
            user.save(update_fields=["password", "is_active"])
        user.groups.add(group)
        seeded.append(SeededUser(username=username, role=role, created=created, password=password))
    return seeded
