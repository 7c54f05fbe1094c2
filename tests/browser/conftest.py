"""Browser tests: Playwright for Python driving Debian's Chromium (``apt-get install chromium``).

Playwright's own browser download does not work on our machines, so ``playwright install`` is never run:
the tests launch the system Chromium at ``/usr/bin/chromium`` (``MIPD_CHROMIUM`` overrides the path).
Tests marked ``@pytest.mark.browser`` are skipped when it is missing; with ``MIPD_REQUIRE_SERVICES=1``
(set by .ci/run, which installs Chromium first) a missing Chromium stops the run instead, as a missing
service does (tests/conftest.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import services_required

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser, Page

# Playwright's sync API runs an asyncio event loop in the main thread for as long as it is started. Django
# then takes every ORM call made meanwhile (live_server's database set-up and flush, the tests' own queries)
# for one made from async code and raises SynchronousOnlyOperation. Nothing here is async, so the browser
# fixture allows those calls while Playwright runs, one test module at a time, and restores the setting
# afterwards: the rest of the suite (and `check --deploy`, which refuses the variable) never sees it.
ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"

CHROMIUM = Path(os.environ.get("MIPD_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # we run as root in a container: Chromium's sandbox needs user namespaces
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOW_TO_INSTALL = "install it: apt-get install -y chromium (.ci/run does this in CI)"
SKIP_PREFIX = "browser unavailable"


def chromium_problem() -> str | None:
    """Why the browser tests cannot run, or None when they can."""
    if not CHROMIUM.is_file() or not os.access(CHROMIUM, os.X_OK):
        return f"Chromium not found at {CHROMIUM}"
    return None


def pytest_report_header(config: pytest.Config) -> list[str]:
    problem = chromium_problem()
    state = f"NOT available, browser tests are skipped ({problem})" if problem else f"{CHROMIUM}"
    return [f"mipd browser: {state}"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    browser_items = [item for item in items if item.get_closest_marker("browser")]
    problem = chromium_problem() if browser_items else None
    if problem is None:
        return
    if services_required():
        raise pytest.UsageError(f"MIPD_REQUIRE_SERVICES=1 but the browser tests cannot run: {problem}")
    skip = pytest.mark.skip(reason=f"{SKIP_PREFIX}: {problem}. To run: {HOW_TO_INSTALL}")
    for item in browser_items:
        item.add_marker(skip)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, for one test module."""
    problem = chromium_problem()
    if problem:
        if services_required():
            pytest.fail(f"MIPD_REQUIRE_SERVICES=1 but {problem}: {HOW_TO_INSTALL}")
        pytest.skip(f"{SKIP_PREFIX}: {problem}. To run: {HOW_TO_INSTALL}")
    from playwright.sync_api import sync_playwright

    previous = os.environ.get(ASYNC_UNSAFE)
    os.environ[ASYNC_UNSAFE] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                yield chromium
            finally:
                chromium.close()
    finally:
        if previous is None:
            os.environ.pop(ASYNC_UNSAFE, None)
        else:
            os.environ[ASYNC_UNSAFE] = previous


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh browser context (no cookies, storage or downloads shared between tests)."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1100, "height": 800})
    try:
        yield context.new_page()
    finally:
        context.close()
