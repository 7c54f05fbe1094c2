"""Sign-in rules applied to every request: the idle timeout and the second factor."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from accounts.otp import second_factor_required
from accounts.selectors import roles_cached_for_request
from audit.models import AuditEntry
from audit.recorder import record_event

LAST_ACTIVITY = "mipd_last_activity"
TOUCH_EVERY_S = 30  # write the session at most this often (each request would be a database write)


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")


class RequestRoleCacheMiddleware:
    """The user's roles are read from the database once per request, not at each check."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with roles_cached_for_request():
            return self.get_response(request)


class SessionIdleTimeoutMiddleware:
    """A session unused for SESSION_IDLE_TIMEOUT seconds (15 min by default) is ended.

    On top of SESSION_COOKIE_AGE (the longest a login lasts): an unattended workstation does not stay signed
    in. The next page asks for the login again and says why; the API answers 401.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = time.time()
            last = request.session.get(LAST_ACTIVITY)
            if last is not None and now - float(last) > settings.SESSION_IDLE_TIMEOUT:
                record_event(
                    AuditEntry.Action.SESSION_TIMEOUT,
                    user=user,
                    object_type="auth.user",
                    object_id=user.pk,
                    reason=f"no request for {settings.SESSION_IDLE_TIMEOUT // 60} min",
                )
                logout(request)
                if _wants_json(request):
                    return JsonResponse(
                        {"detail": "the session ended after a time without activity"}, status=401
                    )
                query = urlencode({"next": request.get_full_path(), "idle": "1"})
                return redirect(f"{reverse('accounts:login')}?{query}")
            if last is None or now - float(last) > TOUCH_EVERY_S:
                request.session[LAST_ACTIVITY] = now
        return self.get_response(request)


class SecondFactorRequiredMiddleware:
    """Users who need a second factor reach nothing but the code page (and logging out) until they give it."""

    OPEN_PREFIXES = (
        "/accounts/second-factor/",
        "/accounts/logout/",
        "/accounts/login/",
        "/healthz",
        "/static/",
    )

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not user.is_verified()
            and not request.path.startswith(self.OPEN_PREFIXES)
            and second_factor_required(user=user)
        ):
            if _wants_json(request):
                return JsonResponse(
                    {"detail": "give your second factor (authenticator code) at /accounts/second-factor/"},
                    status=403,
                )
            return redirect(
                f"{reverse('accounts:second_factor')}?{urlencode({'next': request.get_full_path()})}"
            )
        return self.get_response(request)
