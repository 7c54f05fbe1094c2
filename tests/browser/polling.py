"""Waiting for the page's state under the Content-Security-Policy.

Playwright's ``wait_for_function`` polls by evaluating a string inside the page, which a CSP without
'unsafe-eval' refuses (the application's own scripts never need it). ``page.evaluate`` goes through the
DevTools protocol instead, which the CSP does not govern: poll with it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Page


def wait_for(
    page: Page, function_js: str, expected: Any = None, *, timeout_ms: float, step_ms: float = 100
) -> Any:
    """Evaluate ``function_js`` until it returns ``expected`` (or, with None, anything but null)."""
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        value = page.evaluate(function_js)
        if (value is not None) if expected is None else (value == expected):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the page did not reach the expected state in {timeout_ms:g} ms: last {value!r}"
            )
        page.wait_for_timeout(step_ms)
