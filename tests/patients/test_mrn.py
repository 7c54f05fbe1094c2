"""Patient identity: MRNs normalised (case, Unicode dashes and spaces, NFKC), look-alikes refused by name."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from patients import services
from patients.identifiers import normalize_mrn
from patients.models import Patient
from tests.auth import login


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("clean-01", "CLEAN-01"),
        ("CLEAN-01", "CLEAN-01"),
        ("CLEAN\u201001", "CLEAN-01"),  # U+2010 HYPHEN
        ("CLEAN\u201301", "CLEAN-01"),  # EN DASH
        ("CLEAN\u221201", "CLEAN-01"),  # MINUS SIGN
        ("\uff23\uff2c\uff25\uff21\uff2e\uff0d\uff10\uff11", "CLEAN-01"),  # full width
        ("CLEAN\u00a0-01", "CLEAN-01"),  # no-break space
        (" clean - 01 ", "CLEAN-01"),
        ("CLE\u200bAN-01", "CLEAN-01"),  # zero-width space
    ],
)
def test_look_alikes_normalise_to_one_identifier(raw: str, normal: str) -> None:
    assert normalize_mrn(raw) == normal


@pytest.mark.parametrize(
    "raw", ["\u0421LEAN-01", "CLEAN-0\u0661", "", "   ", "-CLEAN"]
)  # Cyrillic С, Arabic 1
def test_characters_that_only_look_latin_are_refused_with_their_name(raw: str) -> None:
    with pytest.raises(ValidationError) as refused:
        normalize_mrn(raw)
    if raw.startswith("\u0421"):
        assert "CYRILLIC CAPITAL LETTER ES" in str(refused.value)


def _register(user, mrn: str, family: str = "Martin"):
    return services.patient_create(
        mrn=mrn,
        family_name=family,
        given_name="Alice",
        birth_date=dt.date(1960, 5, 17),
        sex="female",
        ward="ICU",
        user=user,
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "look_alike", ["clean-01", "CLEAN\u201001", "CLEAN 01".replace(" ", "\u00a0-"), "\uff23LEAN-01"]
)
def test_a_look_alike_of_an_existing_mrn_is_refused_naming_the_patient(clinician, look_alike: str) -> None:
    _register(clinician, "CLEAN-01")
    with pytest.raises(ValidationError) as refused:
        _register(clinician, look_alike, family="Dupont")
    message = " ".join(refused.value.message_dict["mrn"])
    assert "MARTIN, Alice" in message and "1960-05-17" in message
    assert Patient.objects.count() == 1


@pytest.mark.django_db
def test_the_database_refuses_two_patients_with_one_normal_mrn(clinician) -> None:
    first = _register(clinician, "CLEAN-01")
    with pytest.raises(IntegrityError):
        Patient.objects.create(
            mrn="clean-01",
            mrn_key=first.mrn_key,
            family_name="X",
            given_name="Y",
            birth_date=dt.date(1980, 1, 1),
            sex="male",
            created_by=clinician,
        )


@pytest.mark.django_db
def test_a_search_finds_the_one_patient_whatever_the_spelling(client, clinician) -> None:
    _register(clinician, "CLEAN-01")
    login(client, clinician)
    for term in ("clean-01", "CLEAN\u201001", "CLEAN-01"):
        patients = client.get("/patients/", {"q": term}).context["patients"]
        assert [patient.mrn for patient in patients] == ["CLEAN-01"]


@pytest.mark.django_db
def test_the_api_refuses_a_look_alike_with_the_field(clinician) -> None:
    from rest_framework.test import APIClient

    _register(clinician, "CLEAN-01")
    api = APIClient()
    login(api, clinician)
    response = api.post(
        "/api/v1/patients/",
        {
            "mrn": "clean\u201001",
            "family_name": "Dupont",
            "given_name": "B",
            "birth_date": "1990-01-01",
            "sex": "male",
        },
        format="json",
    )
    assert response.status_code == 400
    assert "MARTIN, Alice" in response.data["mrn"][0]
