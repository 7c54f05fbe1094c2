"""A clinician in a real Chromium against the live server: log in, open the patient and the course, record a
level, and see the update finish, the plot with its bands and the candidate regimens without reloading.

Celery runs in process (the embedded default, ``celery_eager``): the update of a level recorded through the
page runs in the request thread once its transaction commits. The polling path of ``course_page.js`` (an
update that finishes after the page has loaded) is driven by holding the task back and running the update
from the test.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

import pytest
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.polling import wait_for
from tests.dosing import conftest as dosing_fixtures
from tests.factories import PASSWORD

if TYPE_CHECKING:
    from playwright.sync_api import Page
    from pytest_django.live_server_helper import LiveServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("role_groups", "celery_eager"),
    pytest.mark.timeout(60),
]

# The dosing fixtures (tests/dosing/conftest.py): a clinician, a published test model, a consenting patient
# with a weight, and a course on that model with a trough target.
clinician = dosing_fixtures.clinician
published_version = dosing_fixtures.published_version
patient = dosing_fixtures.patient
course = dosing_fixtures.course
UPDATE_TIMEOUT_MS = 15_000
# The roles of the Chart instance drawn in #concentration-plot.
CHART_ROLES_JS = """() => {
    const canvas = document.querySelector('#concentration-plot canvas');
    const chart = canvas && Chart.getChart(canvas);
    return chart ? chart.data.datasets.map(d => d.mipdRole) : null;
}"""
# How many measured levels that chart draws.
CHART_LEVELS_JS = """() => {
    const canvas = document.querySelector('#concentration-plot canvas');
    const chart = canvas && Chart.getChart(canvas);
    const levels = chart && chart.data.datasets.find(d => d.mipdRole === 'levels');
    return levels ? levels.data.length : null;
}"""


@pytest.fixture
def role_groups(transactional_db: None) -> None:
    """The role groups: created by a migration, but a transactional test's flush empties the table."""
    from django.contrib.auth.models import Group

    from accounts.roles import Role

    for role in Role:
        Group.objects.get_or_create(name=role.value)


def local(moment: dt.datetime) -> str:
    """A moment as a datetime-local input wants it, in the hospital's zone."""
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def treated_course(course: Any, clinician: Any) -> Any:
    """Three 1000 mg infusions 12 h apart, the first 40 h ago, and a trough before the third; one update done.

    Recorded in one transaction, so the earlier requests are superseded and one update runs; the last entry
    is a dose, so the page says "Done: dose ..." until a level is recorded.
    """
    from dosing import services

    start = timezone.now() - dt.timedelta(hours=40)
    with transaction.atomic():
        for i in range(2):
            services.dose_record(
                course=course,
                given_at=start + dt.timedelta(hours=12 * i),
                amount_mg=1000,
                route="iv_infusion",
                infusion_duration_h=1,
                user=clinician,
            )
        services.level_record(
            course=course, sampled_at=start + dt.timedelta(hours=23.5), value=6.2, unit="mg/L", user=clinician
        )
        services.dose_record(
            course=course,
            given_at=start + dt.timedelta(hours=24),
            amount_mg=1000,
            route="iv_infusion",
            infusion_duration_h=1,
            user=clinician,
        )
    latest = course.updates.order_by("-pk").first()
    assert latest.status == latest.Status.SUCCEEDED, latest.error
    course.first_dose_at = start
    return course


def log_in_and_open_the_course(page: Page, live_server: LiveServer, course: Any) -> None:
    """Through the login page, the patient list and the patient record, as a clinician would."""
    page.goto(f"{live_server.url}/patients/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/patients/$"))
    page.fill("input[name=username]", "clinician")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/patients/")
    page.click("text=MARTIN, Alice")
    expect(page.locator("h1")).to_have_text("MARTIN, Alice")
    page.click(f"#courses a[href$='/courses/{course.public_id}/']")
    expect(page).to_have_url(f"{live_server.url}/courses/{course.public_id}/")


def submit_level(page: Page, *, sampled_at: dt.datetime, value: str) -> None:
    form = page.locator("#level-form")
    form.locator("input[name=sampled_at]").fill(local(sampled_at))
    form.locator("input[name=value]").fill(value)
    form.locator("input[name=unit]").fill("mg/L")
    form.locator("button[type=submit]").click()


def expect_plot_with_bands_and_candidates(page: Page) -> None:
    wait_for(page, CHART_ROLES_JS, timeout_ms=UPDATE_TIMEOUT_MS)
    roles = page.evaluate(CHART_ROLES_JS)
    assert {"band90", "band50", "map", "levels"} <= set(roles), roles
    assert page.locator("#candidates tbody tr td:nth-child(3)").count() >= 1  # a row with a P(target)
    expect(page.locator("#recommendation .order-text")).to_be_visible()


def test_a_recorded_level_updates_the_course_page_with_bands_and_candidates(
    page: Page, live_server: LiveServer, treated_course: Any
) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in_and_open_the_course(page, live_server, treated_course)
    state = page.locator("#update-state")
    expect(state).to_have_text(re.compile(r"^\s*Done: dose 1000 mg recorded\s*$"))
    shown_before = page.get_attribute("#update-status", "data-shown-update")

    submit_level(page, sampled_at=treated_course.first_dose_at + dt.timedelta(hours=35.5), value="7.1")

    expect(state).to_have_text(re.compile(r"^\s*Done: new level\s*$"), timeout=UPDATE_TIMEOUT_MS)
    expect(page).to_have_url(f"{live_server.url}/courses/{treated_course.public_id}/")
    assert page.get_attribute("#update-status", "data-shown-update") != shown_before
    expect(page.locator("#timeline")).to_contain_text("level 7.1 mg/L")
    expect_plot_with_bands_and_candidates(page)
    assert page.evaluate(CHART_LEVELS_JS) == 2
    assert errors == [], f"JavaScript errors on the page: {errors}"


def test_the_page_follows_an_update_that_finishes_after_it_loaded(
    page: Page,
    live_server: LiveServer,
    treated_course: Any,
    clinician: Any,
    monkeypatch: Any,
) -> None:
    from dosing import services
    from dosing.tasks import run_bayesian_update

    held: list[int] = []
    # The outbox hands the update to the broker after the commit: hold it there, as a busy worker would.
    monkeypatch.setattr(
        run_bayesian_update, "apply_async", lambda *, kwargs, **options: held.append(kwargs["update_id"])
    )
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in_and_open_the_course(page, live_server, treated_course)

    submit_level(page, sampled_at=treated_course.first_dose_at + dt.timedelta(hours=35.5), value="7.1")
    state = page.locator("#update-state")
    expect(state).to_have_text(re.compile(r"^\s*Queued: new level\s*$"))
    assert len(held) == 1
    assert page.evaluate(CHART_LEVELS_JS) == 1  # the plot of the previous update
    services.update_run(update_id=held[0])  # what the worker does, while the page polls

    expect(state).to_have_text(re.compile(r"^\s*Done: new level\s*$"), timeout=UPDATE_TIMEOUT_MS)
    from dosing.models import BayesianUpdate

    shown = str(BayesianUpdate.objects.get(pk=held[0]).public_id)
    expect(page.locator("#update-status")).to_have_attribute("data-shown-update", shown)
    # the new results are swapped in and drawn: the plot now has both levels
    wait_for(page, CHART_LEVELS_JS, 2, timeout_ms=UPDATE_TIMEOUT_MS)
    expect_plot_with_bands_and_candidates(page)
    assert errors == [], f"JavaScript errors on the page: {errors}"


def test_a_level_sampled_before_the_first_dose_shows_the_field_error_and_stores_nothing(
    page: Page, live_server: LiveServer, treated_course: Any
) -> None:
    from dosing.models import BayesianUpdate, DrugLevel

    levels_before = DrugLevel.objects.count()
    updates_before = BayesianUpdate.objects.count()
    log_in_and_open_the_course(page, live_server, treated_course)

    submit_level(page, sampled_at=treated_course.first_dose_at - dt.timedelta(hours=2), value="5")

    error = page.locator("#level-form .field-errors[data-field=sampled_at]")
    expect(error).to_contain_text("the level was sampled before the first dose")
    expect(page.locator("#level-form input[name=value]")).to_have_value("5")  # the entry is kept
    assert DrugLevel.objects.count() == levels_before
    assert BayesianUpdate.objects.count() == updates_before
