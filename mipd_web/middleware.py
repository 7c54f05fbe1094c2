"""Headers that every page and API answer carries (static files are served above this, by WhiteNoise), and
the answers to requests refused before or around a view."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

from mipd_web.engine_calls import EngineUnavailable

logger = logging.getLogger(__name__)


class NoStoreMiddleware:
    """``Cache-Control: no-store``: patient data never stays in a browser's or a proxy's cache.

    Pages and API answers are personal and change with every record; a shared workstation's back button or a
    caching proxy must not show them to the next person. A view that sets its own Cache-Control keeps it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not response.has_header("Cache-Control"):
            response["Cache-Control"] = "no-store"
            response["Pragma"] = "no-cache"  # HTTP/1.0 proxies
        return response


def query_problem(key: str, value: str) -> str | None:
    """Why a query parameter is refused: a control character (a NUL byte reaches PostgreSQL as an error), or
    a digit that is not ASCII (Python's ``int`` and ``isdigit`` accept '٣' and '²'; our ids and pages
    do not)."""
    for text in (key, value):
        for char in text:
            if ord(char) < 32 or ord(char) == 127:
                return "control characters (such as a NUL byte) are not allowed"
            if char.isdigit() and not char.isascii():
                return "digits must be ASCII 0-9"
    return None


class QueryStringGuardMiddleware:
    """Refuse, with 400, a query string no page or endpoint can mean (see :func:`query_problem`).

    Checked once, before any view parses a filter: every view's ``?search=``, ``?status=``, ``?page=`` is
    safe from these, whatever it does with the text afterwards.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        errors = {
            key: [problem]
            for key, values in request.GET.lists()
            for value in values
            if (problem := query_problem(key, value))
        }
        if errors:
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": "invalid query parameters", **errors}, status=400)
            text = "; ".join(f"{key}: {messages[0]}" for key, messages in errors.items())
            return HttpResponseBadRequest(f"Invalid query parameters ({text}).", content_type="text/plain")
        return self.get_response(request)


class EngineUnavailableMiddleware:
    """An engine call refused (no free slot) or stopped (its budget ran out): 503 with Retry-After, as JSON
    under /api/ and as a page for the browser (see ``mipd_web.engine_calls``), never a 500."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, EngineUnavailable):
            return None
        logger.warning("engine call refused on %s %s: %s", request.method, request.path, exception)
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse(
                {"detail": str(exception), "code": exception.code, "retry_after_s": exception.retry_after_s},
                status=503,
            )
        else:
            response = render(
                request,
                "engine_busy.html",
                {
                    "error": exception,
                    "retry_after_s": exception.retry_after_s,
                    "back": _same_site_referer(request),
                },
                status=503,
            )
        response["Retry-After"] = str(exception.retry_after_s)
        return response


DATABASE_RETRY_AFTER_S = 30
# Self-contained: rendering the site's template would itself query the database that just failed.
_DATABASE_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Database unavailable</title></head><body><main><h1>The database is unavailable</h1>
<p role="alert">The server could not reach its database, so nothing from this request was saved.
Wait {retry} seconds and send it again (the browser's back button returns to the form);
if it persists, call IT.</p></main></body></html>"""


class DatabaseUnavailableMiddleware:
    """The database unreachable or restarting mid-request (``OperationalError``, ``InterfaceError``): 503 with
    Retry-After, never a 500. The request's transaction was rolled back with the connection, so nothing of it
    is stored; an ``Idempotency-Key`` retry then records it once."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.error("database unavailable on %s %s: %s", request.method, request.path, exception)
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse(
                {
                    "detail": "the database is unavailable: nothing was saved; retry later",
                    "code": "database_unavailable",
                    "retry_after_s": DATABASE_RETRY_AFTER_S,
                },
                status=503,
            )
        else:
            response = HttpResponse(_DATABASE_PAGE.format(retry=DATABASE_RETRY_AFTER_S), status=503)
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
        return response


def _same_site_referer(request: HttpRequest) -> str | None:
    """The page the user came from, if it is ours (a link back to the form they were filling in)."""
    referer = request.headers.get("Referer", "")
    if referer and url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return referer
    return None


class ApiBodyMiddleware:
    """Under /api/, read the request body into memory before anything parses it.

    The Idempotency-Key's fingerprint and the catalog import's size limit read the raw body; once the CSRF
    check of a signed-in session has parsed a multipart form from the stream, Django refuses that (a 500).
    Read first, the form is parsed from the copy in memory (at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            try:
                request.body  # noqa: B018 (read for its side effect: the body is kept in memory)
            except RequestDataTooBig:
                return JsonResponse({"detail": "the request body is too large"}, status=400)
        return self.get_response(request)
