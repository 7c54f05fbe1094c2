"""The roles of mipd-web. Each role is a Django group of the same name, created by a migration."""

from enum import StrEnum


class Role(StrEnum):
    CLINICIAN = "clinician"  # opens therapy courses, records doses and levels, requests recommendations
    PHARMACIST = "pharmacist"  # reviews recommendations: approves, modifies or rejects them, with a signature
    MODEL_CURATOR = "model_curator"  # publishes population models and dosing rules in the catalog
    AUDITOR = "auditor"  # reads the audit trail and verifies it; changes nothing

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()
