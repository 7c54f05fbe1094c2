"""A pharmacist in a real Chromium: password, then the authenticator code; the course page and its plot under
the Content-Security-Policy (no violation reported); the review signed with the password and a fresh code."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import expect

from tests.auth import next_totp_code
from tests.browser import test_clinician_flow as flow
from tests.factories import PASSWORD

if TYPE_CHECKING:
    from playwright.sync_api import Page
    from pytest_django.live_server_helper import LiveServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("role_groups", "celery_eager"),
    pytest.mark.timeout(90),
]
role_groups = flow.role_groups
clinician, published_version, patient, course = (
    flow.clinician,
    flow.published_version,
    flow.patient,
    flow.course,
)
treated_course = flow.treated_course


@pytest.fixture
def pharmacist(role_groups: None) -> Any:
    from accounts.roles import Role
    from tests.auth import totp_device
    from tests.factories import UserFactory, care_team

    user = UserFactory(
        username="pharmacist", first_name="Paula", last_name="Pharmacist", roles=[Role.PHARMACIST]
    )
    care_team(user)
    totp_device(user)
    return user


def test_a_pharmacist_signs_in_with_a_code_and_signs_the_review(
    page: Page, live_server: LiveServer, treated_course: Any, pharmacist: Any
) -> None:
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.on("pageerror", lambda error: violations.append(str(error)))
    page.goto(f"{live_server.url}/courses/{treated_course.public_id}/")
    page.fill("input[name=username]", "pharmacist")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/accounts/second-factor/\?next="))
    page.fill("input[name=code]", next_totp_code(pharmacist))
    page.click("#second-factor button[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/courses/{treated_course.public_id}/")
    flow.expect_plot_with_bands_and_candidates(page)
    form = page.locator("#review-form")
    form.locator("input[name=decision][value=approve]").check()
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("input[name=otp_code]").fill(next_totp_code(pharmacist))
    form.get_by_role("button", name="Sign").click()
    expect(page.locator("#signature")).to_contain_text(
        "Electronically signed by Paula Pharmacist (pharmacist)"
    )
    expect(page.locator("#signature")).to_contain_text("the signed records are unchanged")
    page.screenshot(path="/tmp/mipd-signed-review.png", full_page=True)
    assert violations == []
