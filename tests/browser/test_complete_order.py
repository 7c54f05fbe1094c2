"""A complete, reviewable order, in a real Chromium: clock times above the fold, a pharmacist's change
forecast before signing and then shown to the clinician as decided, a rejection's reason, pages without
serious accessibility violations (axe-core) and without horizontal scrolling on a 390 px phone.

Screenshots for the record: /tmp/mipd-course-1366x900.png, /tmp/mipd-course-390.png,
/tmp/mipd-course-approved-with-changes.png.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.auth import next_totp_code
from tests.factories import PASSWORD

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page
    from pytest_django.live_server_helper import LiveServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("role_groups", "celery_eager"),
    pytest.mark.timeout(120),
]
AXE = (Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")
CLOCK = re.compile(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d\d [A-Z][a-z]{2} \d\d:\d\d")


@pytest.fixture
def role_groups(transactional_db: None) -> None:
    from django.contrib.auth.models import Group

    from accounts.roles import Role

    for role in Role:
        Group.objects.get_or_create(name=role.value)


@pytest.fixture
def users(role_groups: None) -> dict[str, Any]:
    from accounts.roles import Role
    from tests.auth import totp_device
    from tests.factories import UserFactory, care_team

    users = {
        "clinician": UserFactory(username="clinician", roles=[Role.CLINICIAN]),
        "pharmacist": UserFactory(username="pharmacist", roles=[Role.PHARMACIST]),
    }
    care_team(*users.values())  # the ICU team: both see the patient
    totp_device(users["pharmacist"])
    return users


@pytest.fixture
def vancomycin_course(users: dict[str, Any]) -> Any:
    """The shipped library; a 60-year-old on Goti 2018 with four doses and a trough: one recommendation."""
    from accounts.roles import Role
    from dosing import services
    from models_catalog.library import library_load
    from models_catalog.models import ModelVersion, TargetProtocol
    from patients import services as patients
    from patients.models import ConsentRecord
    from tests.factories import UserFactory

    library_load(
        requested_by=UserFactory(username="curator-a", roles=[Role.MODEL_CURATOR]),
        approved_by=UserFactory(username="curator-b", roles=[Role.MODEL_CURATOR]),
    )
    clinician = users["clinician"]
    now = timezone.now()
    patient = patients.patient_create(
        mrn="ORDER-1",
        family_name="Order",
        given_name="Test",
        birth_date=(now - dt.timedelta(days=round(365.25 * 60))).date(),
        sex="male",
        user=clinician,
    )
    for kind, value, unit in (("weight", 80, "kg"), ("serum_creatinine", 1.0, "mg/dL")):
        patients.measurement_record(
            patient=patient,
            kind=kind,
            value=value,
            unit=unit,
            measured_at=now - dt.timedelta(days=2),
            user=clinician,
        )
    patients.consent_record(
        patient=patient, scope=ConsentRecord.Scope.MODEL_BASED_DOSING, status="granted", user=clinician
    )
    course = services.course_open(
        patient=patient,
        model_version=ModelVersion.objects.published().get(model_id="vancomycin-goti-2018"),
        target_protocol=TargetProtocol.objects.get(drug__name="vancomycin", target__metric="auc24"),
        indication="MRSA bacteraemia",
        user=clinician,
        no_organ_support_confirmed=True,
    )
    first = now - dt.timedelta(hours=40)
    for i in range(4):
        services.dose_record(
            course=course,
            given_at=first + dt.timedelta(hours=12 * i),
            amount_mg=1000,
            route="iv_infusion",
            infusion_duration_h=2,
            user=clinician,
        )
    services.level_record(
        course=course, sampled_at=first + dt.timedelta(hours=35.5), value=14, unit="mg/L", user=clinician
    )
    assert course.recommendations.filter(status="pending_review").exists()
    return course


def log_in(page: Page, live_server: LiveServer, username: str) -> None:
    """Password, then (pharmacists) the authenticator code."""
    from django.contrib.auth import get_user_model

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    if "/accounts/second-factor/" in page.url:
        page.fill("input[name=code]", next_totp_code(get_user_model().objects.get(username=username)))
        with page.expect_navigation():
            page.click("#second-factor button[type=submit]")


def serious_violations(page: Page) -> list[str]:
    page.evaluate(AXE)  # through the DevTools protocol: the page's CSP refuses an injected inline script
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['impact']} {v['id']}: {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def no_horizontal_scroll(page: Page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def test_the_order_shows_clock_times_above_the_fold(
    page: Page, live_server: LiveServer, vancomycin_course: Any
) -> None:
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, live_server, "clinician")
    page.goto(f"{live_server.url}/courses/{vancomycin_course.public_id}/")
    order = page.locator("#recommendation .order-text")
    expect(order).to_contain_text(re.compile(r"Vancomycin \d+ mg \([0-9.]+ mg/kg\) IV infusion over"))
    expect(order).to_contain_text("mL/h at 5 mg/mL")
    box = order.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 900, box  # readable without scrolling
    first_dose = page.locator("#recommendation table.order").locator("tr", has_text="First dose")
    assert CLOCK.search(first_dose.inner_text()), first_dose.inner_text()
    expect(page.locator("#recommendation .figures")).to_contain_text("P(toxic)")
    expect(page.locator("#recommendation .figures")).to_contain_text("trough > 20 mg/L")
    page.screenshot(path="/tmp/mipd-course-1366x900.png")


def test_a_pharmacists_change_is_forecast_before_signing_and_is_what_the_clinician_then_sees(
    browser: Browser, live_server: LiveServer, vancomycin_course: Any, users: dict[str, Any]
) -> None:
    pharmacist = browser.new_page(viewport={"width": 1366, "height": 900})
    log_in(pharmacist, live_server, "pharmacist")
    pharmacist.goto(f"{live_server.url}/courses/{vancomycin_course.public_id}/")
    form = pharmacist.locator("#review-form")
    form.get_by_label("Approve with changes").check()
    form.locator("input[name=dose_mg]").fill("1250")
    form.locator("input[name=interval_h]").fill("12")
    form.locator("input[name=duration_h]").fill("2.5")
    form.locator("textarea[name=note]").fill("rounded to the vials on the ward")
    with pharmacist.expect_navigation():
        form.get_by_role("button", name="Forecast the change").click()
    preview = pharmacist.locator("#review-preview")
    expect(preview).to_contain_text("Vancomycin 1250 mg")
    expect(preview).to_contain_text("P(target)")
    expect(preview).to_contain_text("P(toxic)")
    form = pharmacist.locator("#review-form")
    for box in form.locator("input[name=acknowledged_alerts]").all():
        box.check()
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("input[name=otp_code]").fill(next_totp_code(users["pharmacist"]))
    with pharmacist.expect_navigation():
        form.get_by_role("button", name="Sign").click()
    expect(pharmacist.locator(".messages")).to_contain_text("Review signed")
    pharmacist.close()

    clinician = browser.new_page(viewport={"width": 1366, "height": 900})
    log_in(clinician, live_server, "clinician")
    clinician.goto(f"{live_server.url}/courses/{vancomycin_course.public_id}/")
    card = clinician.locator("#recommendation")
    expect(card.locator("#review-status")).to_contain_text("Approved with changes")
    expect(card.locator(".order-text")).to_contain_text("Vancomycin 1250 mg")
    expect(card.locator(".order-text")).to_contain_text("every 12 h")
    expect(card.locator("#proposal-changed")).to_contain_text("Changed from the proposal")
    plot = clinician.evaluate("() => JSON.parse(document.getElementById('plot-data').textContent)")
    assert plot["forecast"]["label"].startswith("approved: q12h 1250 mg")
    clinician.screenshot(path="/tmp/mipd-course-approved-with-changes.png", full_page=False)
    clinician.close()


def test_a_rejection_shows_its_reason_prominently(
    page: Page, live_server: LiveServer, vancomycin_course: Any, users: dict[str, Any]
) -> None:
    from dosing import services

    recommendation = vancomycin_course.recommendations.get(status="pending_review")
    services.recommendation_review(
        recommendation=recommendation,
        user=users["pharmacist"],
        decision="reject",
        password=PASSWORD,
        otp_code=next_totp_code(users["pharmacist"]),
        note="levels drawn from the line: repeat the trough",
    )
    log_in(page, live_server, "clinician")
    page.goto(f"{live_server.url}/courses/{vancomycin_course.public_id}/")
    rejection = page.locator("#rejection")
    expect(rejection).to_be_visible()
    expect(rejection).to_contain_text("Rejected by")
    expect(rejection).to_contain_text("Reason: levels drawn from the line: repeat the trough")


@pytest.mark.parametrize("username", ["clinician", "pharmacist"])
def test_the_pages_have_no_serious_accessibility_violations_and_fit_a_phone(
    page: Page, live_server: LiveServer, vancomycin_course: Any, username: str
) -> None:
    log_in(page, live_server, username)
    version = vancomycin_course.model_version
    paths = [
        "/patients/",
        f"/patients/{vancomycin_course.patient.public_id}/",
        f"/courses/{vancomycin_course.public_id}/",
        "/review/",
        "/catalog/",
        f"/catalog/versions/{version.pk}/",
    ]
    problems = {}
    for path in paths:
        page.set_viewport_size({"width": 1366, "height": 900})
        page.goto(f"{live_server.url}{path}")
        found = serious_violations(page)
        if found:
            problems[path] = found
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{live_server.url}{path}")
        if not no_horizontal_scroll(page):
            problems[f"{path} at 390 px"] = ["the page scrolls horizontally"]
        if path.startswith("/courses/") and username == "pharmacist":
            page.screenshot(path="/tmp/mipd-course-390.png", full_page=False)
    assert problems == {}, problems
