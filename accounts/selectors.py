"""Reads about users and their roles."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from accounts.roles import Role


def user_roles(*, user: AbstractBaseUser | AnonymousUser) -> frozenset[Role]:
    """The roles of ``user``, read from its groups; empty for anonymous or inactive users.

    Group names that are not roles are ignored. Superusers get no implicit role: an administrator who also
    works clinically is put in the group like everyone else.
    """
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    names = user.groups.values_list("name", flat=True)  # type: ignore[union-attr]
    known = {role.value for role in Role}
    return frozenset(Role(name) for name in names if name in known)


def user_has_role(*, user: AbstractBaseUser | AnonymousUser, role: Role) -> bool:
    return role in user_roles(user=user)
