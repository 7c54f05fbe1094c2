"""Which published model fits this patient: one verdict per model of the library page.

The verdicts read the same checks that open a course (dosing.eligibility and the drug's routes), so the
library page never says "fits" for a model the course form would refuse:

- ``fits``: inside the hard domain and the studied (soft) ranges, and the record holds every covariate;
- ``warning``: inside the hard domain, outside a studied range (usable, with a warning to acknowledge);
- ``does_not_fit``: outside the hard domain (no recommendation would come from it);
- ``cannot_tell``: the record lacks a fact the hard domain or the covariates need;
- ``not_usable``: the model declares no domain or cannot represent how the drug is given here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from dosing import eligibility
from dosing.administration import allowed_routes
from mipd_engine.model import parse_model
from models_catalog.models import ModelVersion
from patients.models import ConsentRecord, Patient
from patients.selectors import consent_status

VERDICT_LABELS = {
    "fits": "fits",
    "warning": "usable with a warning",
    "does_not_fit": "does not fit",
    "cannot_tell": "cannot tell: record incomplete",
    "not_usable": "not usable",
}


@dataclass(frozen=True)
class LibraryFit:
    verdict: str
    reasons: tuple[str, ...]

    @property
    def label(self) -> str:
        return VERDICT_LABELS[self.verdict]


def library_fit(*, patient: Patient, version: ModelVersion, now: dt.datetime) -> LibraryFit:
    """The verdict for ``version`` and ``patient``, for a course that would start ``now``."""
    model = parse_model(version.document)
    if not allowed_routes(version.drug, model):
        return LibraryFit("not_usable", (f"cannot represent how {version.drug.display_name} is given here",))
    if model.domain is None:
        return LibraryFit("not_usable", ("declares no validity domain",))
    use_genotype = consent_status(patient=patient, scope=ConsentRecord.Scope.GENOTYPE_USE) == "granted"
    result = eligibility.eligibility(
        patient=patient, version=version, origin=now, now=now, use_genotype=use_genotype
    )
    outside = tuple(finding.message for finding in result.check.hard if not finding.missing)
    if outside:
        return LibraryFit("does_not_fit", outside)
    lacking = tuple(finding.message for finding in result.check.hard if finding.missing)
    if result.missing:
        lacking = (result.missing, *lacking)
    if lacking:
        return LibraryFit("cannot_tell", tuple(dict.fromkeys(lacking)))
    soft = tuple(finding.message for finding in result.check.soft)
    if soft:
        return LibraryFit("warning", soft)
    return LibraryFit("fits", ())
