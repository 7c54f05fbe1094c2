"""The genotype-based starting dose on the patient page: CPIC tables, used only with consent."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from patients import services
from patients.models import ConsentRecord
from tests.auth import login
from tests.throttle_counts import rates

pytestmark = pytest.mark.django_db


@pytest.fixture
def child(clinician):
    patient = services.patient_create(
        mrn="MRN-CHILD",
        family_name="Petit",
        given_name="Léa",
        birth_date=dt.date(2018, 3, 1),
        sex="female",
        user=clinician,
    )
    services.genotype_record(
        patient=patient,
        gene="TPMT",
        diplotype="*1/*3A",
        lab="Lab",
        reported_on=dt.date(2026, 1, 5),
        user=clinician,
    )
    services.genotype_record(
        patient=patient,
        gene="NUDT15",
        diplotype="*1/*1",
        lab="Lab",
        reported_on=dt.date(2026, 1, 5),
        user=clinician,
    )
    return patient


def compute(client, patient):
    return client.get(
        reverse("patients:detail", args=[patient.public_id]),
        {"drug": "mercaptopurine", "standard_daily_dose_mg": "50", "indication": "malignant"},
    )


def test_a_tpmt_intermediate_child_gets_cpic_s_reduced_starting_dose(client, child, clinician) -> None:
    services.consent_record(
        patient=child, scope=ConsentRecord.Scope.GENOTYPE_USE, status="granted", user=clinician
    )
    login(client, clinician)
    result = compute(client, child).context["starting_dose"]
    assert child.genotypes.get(gene="TPMT").phenotype == "Intermediate Metabolizer"
    # CPIC 2018, mercaptopurine, TPMT intermediate: start at 30-80 % of the normal dose.
    assert result.dose_range_mg == pytest.approx((15.0, 40.0))


def test_without_consent_the_genotype_is_not_used(client, child, clinician) -> None:
    services.consent_record(
        patient=child, scope=ConsentRecord.Scope.GENOTYPE_USE, status="refused", user=clinician
    )
    login(client, clinician)
    result = compute(client, child).context["starting_dose"]
    assert result.used is False
    assert result.dose_range_mg is None
    assert "not consented" in result.message


def test_the_starting_dose_calculator_shares_the_engine_rate_with_the_api(client, child, clinician) -> None:
    services.consent_record(
        patient=child, scope=ConsentRecord.Scope.GENOTYPE_USE, status="granted", user=clinician
    )
    login(client, clinician)
    with rates(engine="1/minute"):
        assert compute(client, child).context["starting_dose"] is not None
        throttled = compute(client, child)
        assert throttled.status_code == 429 and 0 < int(throttled["Retry-After"]) <= 60
        assert throttled.context.get("starting_dose") is None  # nothing computed
        errors = " ".join(throttled.context["starting_dose_form"].non_field_errors())
        assert "at most 1 per minute for each user" in errors and "press Compute again" in errors
        assert "press Compute again" in throttled.content.decode()
