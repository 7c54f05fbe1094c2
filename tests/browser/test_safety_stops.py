"""Safe to act on, in a real Chromium: the vancomycin course offers no bolus, and a child on an adult model
meets the stop with the models whose domain fits.

The shipped library is loaded and published by two curators; a paediatric vancomycin test model (the library
has none yet) is published beside it so that the stop has an alternative to offer.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from typing import TYPE_CHECKING, Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

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


@pytest.fixture
def role_groups(transactional_db: None) -> None:
    from django.contrib.auth.models import Group

    from accounts.roles import Role

    for role in Role:
        Group.objects.get_or_create(name=role.value)


@pytest.fixture
def clinician(role_groups: None) -> Any:
    from accounts.roles import Role
    from tests.factories import UserFactory, care_team

    user = UserFactory(username="clinician", roles=[Role.CLINICIAN])
    care_team(user)
    return user


@pytest.fixture
def library(role_groups: None) -> Any:
    """The shipped library and a paediatric vancomycin model (Goti's structure, for children 1-16 y)."""
    from accounts.roles import Role
    from models_catalog import services
    from models_catalog.library import library_entries, library_load
    from tests.factories import UserFactory

    first = UserFactory(username="curator-a", roles=[Role.MODEL_CURATOR])
    second = UserFactory(username="curator-b", roles=[Role.MODEL_CURATOR])
    library_load(requested_by=first, approved_by=second)
    entry = copy.deepcopy(next(e for _, e in library_entries() if e["model"]["id"] == "vancomycin-goti-2018"))
    model = entry["model"]
    model.update(id="vancomycin-paediatric-test", title="Vancomycin, children (test model)")
    model["domain"] = {
        "source": "test model for children",
        "hard": {"age_years": [1, 17], "renal_replacement": ["none"]},
        "soft": {"age_years": [1, 16]},
    }
    version = services.model_version_create(
        document=model,
        version="1.0.0",
        user=first,
        reference_checks=entry["reference_checks"],
        covariate_sources=entry["covariate_sources"],
        model_card=entry["model_card"],
    )
    services.model_version_validate(model_version=version, user=first)
    services.model_version_request_publication(model_version=version, user=first)
    return services.model_version_approve_publication(model_version=version, user=second)


def patient_with_record(clinician: Any, *, mrn: str, family: str, age_years: float, weight_kg: float) -> Any:
    from patients import services
    from patients.models import ConsentRecord

    now = timezone.now()
    patient = services.patient_create(
        mrn=mrn,
        family_name=family,
        given_name="Test",
        birth_date=(now - dt.timedelta(days=round(365.25 * age_years))).date(),
        sex="male",
        user=clinician,
    )
    for kind, value, unit in (("weight", weight_kg, "kg"), ("serum_creatinine", 0.6, "mg/dL")):
        services.measurement_record(
            patient=patient,
            kind=kind,
            value=value,
            unit=unit,
            measured_at=now - dt.timedelta(hours=6),
            user=clinician,
        )
    services.consent_record(
        patient=patient, scope=ConsentRecord.Scope.MODEL_BASED_DOSING, status="granted", user=clinician
    )
    return patient


def log_in(page: Page, live_server: LiveServer) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "clinician")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def open_course_form(page: Page, live_server: LiveServer, patient: Any, model_label: str) -> None:
    page.goto(f"{live_server.url}/patients/{patient.public_id}/")
    form = page.locator("#course-open")
    form.locator("select[name=model_version]").select_option(label=model_label)
    protocol = next(
        text
        for text in form.locator("select[name=target_protocol] option").all_text_contents()
        if text.startswith("vancomycin:") and "AUC-guided" in text
    )
    form.locator("select[name=target_protocol]").select_option(label=protocol)
    form.locator("input[name=indication]").fill("MRSA bacteraemia")
    form.locator("input[name=no_organ_support_confirmed]").check()
    with page.expect_navigation():
        form.locator("button[type=submit]").click()


def test_a_new_vancomycin_course_offers_no_bolus(
    page: Page, live_server: LiveServer, library: Any, clinician: Any
) -> None:
    from dosing.models import TherapyCourse

    patient = patient_with_record(clinician, mrn="ADULT-1", family="Adult", age_years=60, weight_kg=80)
    log_in(page, live_server)
    open_course_form(page, live_server, patient, "vancomycin-goti-2018 1.1.0")
    course = TherapyCourse.objects.get(patient=patient)
    expect(page).to_have_url(f"{live_server.url}/courses/{course.public_id}/")
    expect(page.locator(".messages")).to_contain_text("a-priori recommendation is ready")
    routes = page.locator("#dose-form select[name=route] option").all_text_contents()
    assert routes == ["IV infusion"]
    duration = page.locator("#dose-form input[name=infusion_duration_h]")
    expect(duration).to_have_value("2")
    page.locator("#dose-form input[name=amount_mg]").fill("1500")
    expect(duration).to_have_value("2.5")  # 1500 mg at 600 mg/h at most
    expect(page.locator("#recommendation .order-text")).to_contain_text(re.compile(r"over [0-9.]+ h"))
    expect(page.locator("#recommendation")).not_to_contain_text("bolus")
    page.screenshot(path="/tmp/mipd-vancomycin-new-course.png", full_page=True)


def test_a_child_on_an_adult_model_sees_the_stop_and_the_models_that_fit(
    page: Page, live_server: LiveServer, library: Any, clinician: Any
) -> None:
    from dosing.models import TherapyCourse

    child = patient_with_record(clinician, mrn="CHILD-8", family="Child", age_years=8, weight_kg=25)
    log_in(page, live_server)
    open_course_form(page, live_server, child, "vancomycin-goti-2018 1.1.0")
    stop = page.locator("#course-stop")
    expect(stop).to_be_visible()
    expect(stop).to_contain_text("may not be used for this patient")
    expect(stop).to_contain_text("age 8 years lies below the model's domain (at least 17 years)")
    expect(stop.locator(".alternatives")).to_contain_text("Vancomycin, children (test model)")
    assert not TherapyCourse.objects.exists()
    page.screenshot(path="/tmp/mipd-child-stop.png", full_page=False)
    # The alternative is accepted.
    open_course_form(page, live_server, child, f"{library}")
    expect(page).to_have_url(re.compile(r"/courses/[0-9a-f-]{36}/$"))
    assert TherapyCourse.objects.get().model_version == library


def test_the_model_library_shows_which_models_fit_the_child(
    page: Page, live_server: LiveServer, library: Any, clinician: Any
) -> None:
    child = patient_with_record(clinician, mrn="CHILD-9", family="Child", age_years=8, weight_kg=25)
    log_in(page, live_server)
    page.goto(f"{live_server.url}/patients/{child.public_id}/")
    with page.expect_navigation():
        page.locator("#library-link").click()
    page.locator("select[name=drug]").select_option(label="Vancomycin")
    with page.expect_navigation():
        page.get_by_role("button", name="Show").click()
    goti = page.locator("#library-row-vancomycin-goti-2018")
    expect(goti.locator(".library-fit")).to_contain_text("does not fit")
    expect(goti.locator(".library-fit")).to_contain_text("age 8 years lies below")
    expect(page.locator("#library-row-vancomycin-paediatric-test .library-fit")).to_contain_text("fits")
    expect(page.locator("#library-amikacin")).to_have_count(0)
    page.set_viewport_size({"width": 1366, "height": 900})
    page.screenshot(path="/tmp/mipd-model-library.png", full_page=True)
