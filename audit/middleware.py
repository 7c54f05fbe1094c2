"""The request's user and where the request came from, for every audit entry written while it runs."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from audit import context
from audit.events import request_context


class AuditRequestMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # DRF authenticates token requests later, in the view: the API's views re-attribute (accounts.tokens).
        actor = context.user_actor(getattr(request, "user", None), **request_context(request))
        token = context.set_for_request(actor)
        try:
            return self.get_response(request)
        finally:
            context.reset(token)
