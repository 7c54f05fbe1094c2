"""Reads about users and their roles."""

import contextlib
import contextvars
from collections.abc import Iterator

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from accounts.roles import Role

# Roles read once per request (a page asks six to eight times: access rule, navigation, forms); the
# cache lives only while a request runs and is emptied whenever a group or a membership changes (a
# queryset delete of memberships sends no signal: that shows from the next request on).
_request_roles: contextvars.ContextVar[dict[int, frozenset[Role]] | None] = contextvars.ContextVar(
    "mipd_request_roles", default=None
)


@contextlib.contextmanager
def roles_cached_for_request() -> Iterator[None]:
    token = _request_roles.set({})
    try:
        yield
    finally:
        _request_roles.reset(token)


def forget_cached_roles() -> None:
    """A group or a membership changed: the roles are read again (signals in ``accounts.signals``)."""
    cache = _request_roles.get()
    if cache is not None:
        cache.clear()


def user_roles(*, user: AbstractBaseUser | AnonymousUser) -> frozenset[Role]:
    """The roles of ``user``, read from its groups; empty for anonymous or inactive users.

    Group names that are not roles are ignored. Superusers get no implicit role: an administrator who also
    works clinically is put in the group like everyone else.
    """
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    cache = _request_roles.get()
    if cache is not None and user.pk in cache:
        return cache[user.pk]
    names = user.groups.values_list("name", flat=True)  # type: ignore[union-attr]
    known = {role.value for role in Role}
    roles = frozenset(Role(name) for name in names if name in known)
    if cache is not None:
        cache[user.pk] = roles
    return roles


def user_has_role(*, user: AbstractBaseUser | AnonymousUser, role: Role) -> bool:
    return role in user_roles(user=user)
