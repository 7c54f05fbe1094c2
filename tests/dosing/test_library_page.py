"""The model library page: every published model with its domain by column, and per-patient verdicts that
agree with what the course form decides."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.roles import Role
from dosing import services as dosing_services
from dosing.library_fit import library_fit
from models_catalog.models import ModelVersion, TargetProtocol
from patients import services as patient_services
from tests.auth import login
from tests.factories import UserFactory, care_team

pytestmark = pytest.mark.django_db
URL = "/catalog/library/"


@pytest.fixture
def library() -> None:
    UserFactory(username="curator-a", roles=[Role.MODEL_CURATOR])
    UserFactory(username="curator-b", roles=[Role.MODEL_CURATOR])
    call_command("load_model_library", requested_by="curator-a", approved_by="curator-b", verbosity=0)


@pytest.fixture
def clinician() -> Any:
    user = UserFactory(username="library-clinician", roles=[Role.CLINICIAN])
    care_team(user)
    return user


def patient(user: Any, *, mrn: str, age_years: float, weight_kg: float | None, scr: float | None) -> Any:
    now = timezone.now()
    birth = (now - dt.timedelta(days=round(age_years * 365.25))).date()
    record = patient_services.patient_create(
        mrn=mrn, family_name="Library", given_name=mrn, birth_date=birth, sex="male", user=user, ward="ICU"
    )
    measured = now - dt.timedelta(hours=2)
    if weight_kg is not None:
        patient_services.measurement_record(
            patient=record, kind="weight", value=weight_kg, unit="kg", measured_at=measured, user=user
        )
        patient_services.measurement_record(
            patient=record, kind="height", value=175, unit="cm", measured_at=measured, user=user
        )
    if scr is not None:
        patient_services.measurement_record(
            patient=record, kind="serum_creatinine", value=scr, unit="mg/dL", measured_at=measured, user=user
        )
    patient_services.consent_record(
        patient=record, scope="model_based_dosing", status="granted", user=user, note="test"
    )
    return record


def goti() -> ModelVersion:
    return ModelVersion.objects.published().get(model_id="vancomycin-goti-2018")


def test_the_page_lists_every_published_model_with_its_domain(client, library, clinician) -> None:
    client.force_login(clinician)
    response = client.get(URL)
    assert response.status_code == 200
    page = response.content.decode()
    published = ModelVersion.objects.published()
    assert published.count() >= 9
    for version in published:
        assert f'id="library-row-{version.model_id}"' in page, version.model_id
    assert f"{published.count()} published models" in page
    # Goti 2018 may be used from 17 years (hard) and was built on 17-101 years (soft), both in the age column.
    row = page.split('id="library-row-vancomycin-goti-2018"')[1].split("</tr>")[0]
    assert "allowed:</span> at least 17 years" in row
    assert "studied:</span> 17-101 years" in row
    assert "intermittent haemodialysis" in row  # the renal replacement it allows, in the kidney column


def test_a_drug_filter_shows_that_drug_only_and_an_unknown_drug_shows_all(client, library, clinician) -> None:
    client.force_login(clinician)
    page = client.get(URL, {"drug": "vancomycin"}).content.decode()
    assert 'id="library-vancomycin"' in page and 'id="library-amikacin"' not in page
    page = client.get(URL, {"drug": "no-such-drug"}).content.decode()
    assert 'id="library-vancomycin"' in page and 'id="library-amikacin"' in page


def test_verdicts_for_an_adult_a_child_and_an_incomplete_record(client, library, clinician) -> None:
    adult = patient(clinician, mrn="LIB-ADULT", age_years=60, weight_kg=80, scr=1.0)
    child = patient(clinician, mrn="LIB-CHILD", age_years=8, weight_kg=25, scr=0.4)
    unweighed = patient(clinician, mrn="LIB-NOWEIGHT", age_years=60, weight_kg=None, scr=1.0)
    now = timezone.now()
    assert library_fit(patient=adult, version=goti(), now=now).verdict == "fits"
    child_fit = library_fit(patient=child, version=goti(), now=now)
    assert child_fit.verdict == "does_not_fit"
    assert any("age" in reason for reason in child_fit.reasons)
    assert library_fit(patient=unweighed, version=goti(), now=now).verdict == "cannot_tell"

    client.force_login(clinician)
    page = client.get(URL, {"patient": str(child.public_id), "drug": "vancomycin"}).content.decode()
    row = page.split('id="library-row-vancomycin-goti-2018"')[1].split("</tr>")[0]
    assert "verdict-does_not_fit" in row and "does not fit" in row


def test_a_does_not_fit_verdict_is_what_the_course_form_refuses(library, clinician) -> None:
    child = patient(clinician, mrn="LIB-CHILD2", age_years=8, weight_kg=25, scr=0.4)
    adult = patient(clinician, mrn="LIB-ADULT2", age_years=60, weight_kg=80, scr=1.0)
    protocol = TargetProtocol.objects.filter(drug__name="vancomycin", active=True).first()
    now = timezone.now()
    for record, expected in ((child, "does_not_fit"), (adult, "fits")):
        verdict = library_fit(patient=record, version=goti(), now=now).verdict
        assert verdict == expected
        try:
            dosing_services.course_open(
                patient=record,
                model_version=goti(),
                indication="library test",
                user=clinician,
                target_protocol=protocol,
                no_organ_support_confirmed=True,
            )
        except dosing_services.ModelNotApplicable:
            refused = True
        else:
            refused = False
        assert refused == (verdict == "does_not_fit")


def test_patient_verdicts_are_for_clinical_roles_and_the_care_team(client, library, clinician) -> None:
    record = patient(clinician, mrn="LIB-ADULT3", age_years=60, weight_kg=80, scr=1.0)
    curator = UserFactory(username="library-curator", roles=[Role.MODEL_CURATOR])
    login(client, curator)
    assert client.get(URL).status_code == 200  # the domains are for everyone signed in
    page = client.get(URL).content.decode()
    assert 'name="patient"' not in page  # no patient picker without a clinical role
    assert client.get(URL, {"patient": str(record.public_id)}).status_code == 403
    outsider = UserFactory(username="library-outsider", roles=[Role.CLINICIAN])
    care_team(outsider, wards=("Ward 7",))
    client.force_login(outsider)
    assert client.get(URL, {"patient": str(record.public_id)}).status_code == 403
    client.logout()
    assert client.get(URL).status_code == 302  # sign in first


def test_the_patient_page_links_to_its_verdicts(client, library, clinician) -> None:
    record = patient(clinician, mrn="LIB-ADULT4", age_years=60, weight_kg=80, scr=1.0)
    client.force_login(clinician)
    page = client.get(f"/patients/{record.public_id}/").content.decode()
    assert f"/catalog/library/?patient={record.public_id}" in page
