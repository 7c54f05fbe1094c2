"""Events of the sign-in and of background work, as audit entries (receivers connected in audit.apps)."""

from __future__ import annotations

from typing import Any

from audit import context
from audit.models import AuditEntry
from audit.recorder import record_event

Action = AuditEntry.Action


def request_context(request: Any) -> dict[str, Any]:
    """What an auditor needs to place a request: path, method, client address (behind the proxy: its own)."""
    if request is None:
        return {}
    return {
        "path": request.path[:500],
        "method": request.method,
        "address": request.META.get("REMOTE_ADDR", ""),
    }


def on_logged_in(sender: Any, request: Any, user: Any, **_: Any) -> None:
    record_event(Action.SIGN_IN, user=user, object_type="auth.user", object_id=user.pk)


def on_logged_out(sender: Any, request: Any, user: Any, **_: Any) -> None:
    if user is not None:
        record_event(Action.SIGN_OUT, user=user, object_type="auth.user", object_id=user.pk)


def on_login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **_: Any) -> None:
    """A failed sign-in names the user name tried (never the password)."""
    from django.contrib.auth import get_user_model

    username = str(credentials.get("username", ""))[:150]
    user = get_user_model()._default_manager.filter(username=username).first()
    with context.acting(context.Actor(user_id=None, label="anonymous", context=request_context(request))):
        record_event(
            Action.SIGN_IN_FAILED,
            object_type="auth.user",
            object_id=user.pk if user else "",
            details={"username": username},
            reason="wrong user name or password" if user is None or user.is_active else "inactive account",
        )


def on_locked_out(
    sender: Any, request: Any = None, username: str = "", ip_address: str = "", **_: Any
) -> None:
    with context.acting(context.Actor(user_id=None, label="anonymous", context=request_context(request))):
        record_event(
            Action.SIGN_IN_LOCKED,
            object_type="auth.user",
            details={"username": str(username or "")[:150]},
            reason="too many failed sign-ins: locked for a while",
        )


_tokens: dict[str, Any] = {}


def connect_task_signals() -> None:
    """Entries written by a Celery task are the system's (the task's name says which)."""
    from axes.signals import user_locked_out
    from celery.signals import task_postrun, task_prerun

    user_locked_out.connect(on_locked_out, dispatch_uid="audit.locked_out")

    def prerun(task_id: str = "", task: Any = None, **_: Any) -> None:
        name = getattr(task, "name", "task")
        _tokens[task_id] = context.set_for_request(context.Actor(user_id=None, label=f"system (task {name})"))

    def postrun(task_id: str = "", **_: Any) -> None:
        token = _tokens.pop(task_id, None)
        if token is not None:
            context.reset(token)

    task_prerun.connect(prerun, weak=False, dispatch_uid="audit.task_prerun")
    task_postrun.connect(postrun, weak=False, dispatch_uid="audit.task_postrun")
