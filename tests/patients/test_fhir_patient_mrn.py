"""Which identifier of a FHIR Patient is the MRN: the configured system first, then type MR; old and empty
identifiers never; two different MR values that the configured system does not settle are refused."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from patients.identifiers import fhir_patient_mrn

OURS, THEIRS = "urn:oid:1.2.3.4", "urn:oid:9.9.9"


def mr(value: str, system: str = "", **extra: Any) -> dict[str, Any]:
    kind = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}
    return {"type": kind, **({"system": system} if system else {}), "value": value, **extra}


def patient(*identifiers: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "identifier": list(identifiers)}


def test_the_configured_system_wins_over_an_earlier_mr() -> None:
    resource = patient(mr("T-1", THEIRS), mr("O-1", OURS))
    assert fhir_patient_mrn(resource, system=OURS) == "O-1"
    assert fhir_patient_mrn(resource, system=THEIRS) == "T-1"


def test_the_configured_system_needs_no_type() -> None:
    assert fhir_patient_mrn(patient({"system": OURS, "value": "O-2"}), system=OURS) == "O-2"


def test_type_mr_when_the_system_is_unset_or_absent() -> None:
    assert fhir_patient_mrn(patient({"system": "urn:ssn", "value": "1"}, mr("M-3"))) == "M-3"
    assert fhir_patient_mrn(patient(mr("M-3", THEIRS)), system=OURS) == "M-3"


def test_two_different_mr_values_are_refused_unless_the_system_settles_them() -> None:
    resource = patient(mr("T-1", THEIRS), mr("O-1", OURS))
    with pytest.raises(ValidationError, match="2 identifiers of type MR"):
        fhir_patient_mrn(resource)
    # the same MRN twice, in look-alike forms, is one MRN
    assert fhir_patient_mrn(patient(mr("abc-1", OURS), mr("ABC\u20101", THEIRS))) == "abc-1"


def test_old_empty_and_malformed_identifiers_are_never_the_mrn() -> None:
    resource = patient(mr("OLD-1", OURS, use="old"), mr("  ", OURS), "junk", {"value": 7}, mr("NEW-1"))
    assert fhir_patient_mrn(resource, system=OURS) == "NEW-1"
    assert fhir_patient_mrn({"resourceType": "Patient", "identifier": "x"}) == ""
    assert fhir_patient_mrn(None) == ""
