"""Who is acting, for the entries written meanwhile: the request's user, a task, a management command."""

from __future__ import annotations

import contextlib
import contextvars
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    label: str
    context: dict[str, Any] = field(default_factory=dict)  # request path, method and address
    reason: str = ""  # the reason given for what is being done (e.g. a break-the-glass access)


def _process_label() -> str:
    """The system part acting when no user is: the management command, the worker or the server."""
    argv = [part for part in sys.argv if part]
    if len(argv) > 1 and argv[0].endswith("manage.py"):
        return f"system (manage.py {argv[1]})"
    if argv and "celery" in argv[0]:
        return "system (celery worker)"
    return "system"


_current: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("mipd_audit_actor", default=None)


def current() -> Actor:
    return _current.get() or Actor(user_id=None, label=_process_label())


def user_actor(user: Any, **context: Any) -> Actor:
    if user is None or not getattr(user, "is_authenticated", False):
        return Actor(user_id=None, label="anonymous", context=context)
    return Actor(user_id=user.pk, label=user.get_username(), context=context)


@contextlib.contextmanager
def acting(actor: Actor) -> Iterator[Actor]:
    token = _current.set(actor)
    try:
        yield actor
    finally:
        _current.reset(token)


@contextlib.contextmanager
def acting_as(user: Any, **context: Any) -> Iterator[Actor]:
    """Entries written inside are attributed to ``user`` (a service run outside a request)."""
    with acting(user_actor(user, **{**current().context, **context})) as actor:
        yield actor


@contextlib.contextmanager
def because(reason: str) -> Iterator[Actor]:
    """Entries written inside carry ``reason`` (unless a row's own reason field says more)."""
    with acting(replace(current(), reason=reason)) as actor:
        yield actor


def set_for_request(actor: Actor) -> contextvars.Token[Actor | None]:
    return _current.set(actor)


def reset(token: contextvars.Token[Actor | None]) -> None:
    _current.reset(token)
