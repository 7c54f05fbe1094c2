"""Every label the subgroup bands can take fits its database column (PostgreSQL refuses a longer value;
SQLite would store it silently)."""

from performance import subgroups
from performance.models import ProspectiveScore


def test_every_band_label_fits_its_column() -> None:
    labels = {
        "age_band": [label for _, label in subgroups._AGE_BANDS],
        "weight_band": [label for _, label in subgroups._WEIGHT_BANDS],
        "bmi_band": [label for _, label in subgroups._BMI_BANDS],
        "renal_band": [label for _, label in subgroups._RENAL_BANDS] + [subgroups.ON_RENAL_REPLACEMENT],
        "sex": ["female", "male"],
        "care_setting": ["ICU", "ward"],
        "renal_support": ["CRRT", "dialysis", "none"],
        "renal_measure": ["CrCl (Cockcroft-Gault)", "eGFR (bedside Schwartz)"],
    }
    for field, values in labels.items():
        limit = ProspectiveScore._meta.get_field(field).max_length
        for value in [*values, subgroups.UNKNOWN]:
            assert len(value) <= limit, (field, value, limit)
