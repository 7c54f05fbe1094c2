"""This site's absolute URLs as the EHR reaches them (EHR_PUBLIC_BASE_URL behind a proxy, else the request's
own)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def absolute(request: HttpRequest, path: str) -> str:
    base = settings.EHR_PUBLIC_BASE_URL
    return f"{base}{path}" if base else request.build_absolute_uri(path)
