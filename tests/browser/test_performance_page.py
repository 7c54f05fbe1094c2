"""The model performance page in a real Chromium: the three plots drawn, the alert shown, no script error."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import expect

from tests.dosing.conftest import clinician, published_version  # noqa: F401  (fixtures)
from tests.factories import PASSWORD

if TYPE_CHECKING:
    from playwright.sync_api import Page
    from pytest_django.live_server_helper import LiveServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("role_groups", "celery_eager"),
    pytest.mark.timeout(300),
]


@pytest.fixture
def role_groups(transactional_db: None) -> None:
    from tests.factories import role_groups_restore

    role_groups_restore()


@pytest.fixture
def history(role_groups: None, published_version: Any, clinician: Any) -> Any:  # noqa: F811
    """A published test model with the demo history scored on it (its CRRT subgroup raises an alert)."""
    from performance.demo import demo_history_seed
    from performance.services import summary_refresh

    demo_history_seed(clinician=clinician, model_id=published_version.model_id)
    summary_refresh(model_version=published_version)
    return published_version


@pytest.fixture
def curator(role_groups: None) -> Any:
    from accounts.roles import Role
    from tests.auth import totp_device
    from tests.factories import UserFactory

    user = UserFactory(username="curator", first_name="Cora", last_name="Curator", roles=[Role.MODEL_CURATOR])
    totp_device(user)
    return user


def test_the_page_draws_the_plots_and_shows_the_crrt_alert(
    page: Page, live_server: LiveServer, history: Any, curator: Any, tmp_path: Path
) -> None:
    from tests.auth import next_totp_code

    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    url = f"{live_server.url}/performance/versions/{history.pk}/"
    page.goto(url)
    page.fill("input[name=username]", "curator")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/accounts/second-factor/\?next="))
    page.fill("input[name=code]", next_totp_code(curator))
    page.click("#second-factor button[type=submit]")
    expect(page).to_have_url(url)
    expect(page.locator("[role=alert]").first).to_contain_text("Dialysis or CRRT: CRRT")
    expect(page.locator("nav")).to_contain_text("Model performance")
    page.wait_for_load_state("load")
    shots = Path(os.environ.get("MIPD_SCREENSHOTS", tmp_path))  # set it to keep the picture
    page.screenshot(path=str(shots / "performance_page.png"), full_page=True)
    assert [url for url in missing if not url.endswith("/favicon.ico")] == []
    assert [e for e in errors if "Failed to load resource" not in e] == []
    for canvas in ("bias-plot", "coverage-plot", "pit-plot"):
        drawn = page.evaluate(
            "id => { const c = document.getElementById(id); return Chart.getChart(c) !== undefined"
            " && c.width > 0 && c.height > 0; }",
            canvas,
        )
        assert drawn, canvas
    bars = page.evaluate(
        "() => Chart.getChart(document.getElementById('pit-plot')).data.datasets[0].data.length"
    )
    assert bars == 10
    expect(page.locator("#performance-table")).to_contain_text("CRRT")
