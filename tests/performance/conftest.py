"""The dosing fixtures (a published test model, a consenting ICU patient, a course), for performance."""

from tests.dosing.conftest import (  # noqa: F401  (fixtures)
    clinician,
    course,
    dosed_course,
    patient,
    pharmacist,
    published_version,
)
