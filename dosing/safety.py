"""What stops a recommendation, and the red warnings a pharmacist must acknowledge before signing one.

Stops (no recommendation comes from the model; the page and the API say why and what to do instead):

* the patient is outside the model's hard validity domain (e.g. a child on an adult model, CRRT on a model
  that excludes it): the published models of the drug whose domain fits are listed; a model that declares
  no domain cannot be checked and stops too;
* a baseline covariate changed during the course (e.g. haemodialysis started on day 3 for a model whose
  dialysis flag is patient-level): a new course, or a model whose domain fits, is needed.

Alerts (the recommendation is made, with each alert named on it; signing needs each one acknowledged):

* the patient lies outside a soft range of the domain or a covariate range of the model (the studied
  population);
* renal function is unstable by KDIGO's creatinine criteria;
* a level is held as implausible (left out of the fit), or was drawn during an infusion;
* an app above dosing adds its own through :mod:`dosing.hooks` (performance: the model predicts the
  patient's subgroup poorly in this hospital, an open alert of its sequential test).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from dosing import hooks
from dosing.adapters import CourseCase
from dosing.models import DrugLevel, TherapyCourse
from dosing.orders import regimen_label
from mipd_engine.domain import DomainCheck
from mipd_engine.renal_stability import creatinine_stability
from models_catalog.models import ModelVersion

# The engine's covariate warning, at time 0 or at a change ("at 48 h: CRCL 160 lies outside ...").
_COVARIATE_RANGE = re.compile(r"^(?:at [0-9.eE+-]+ h: )?(?P<name>\w+) \S+ lies outside the model's range ")


@dataclass(frozen=True)
class Alert:
    code: str  # stable within an update: what the reviewer acknowledges
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass
class CaseStop(Exception):
    """No recommendation from this model for this patient now: why, and what to do instead."""

    code: str
    message: str
    action: str
    alternatives: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.message}. {self.action}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "action": self.action,
            "alternatives": self.alternatives,
        }


def alternatives_list(versions: list[ModelVersion]) -> list[dict[str, Any]]:
    return [{"id": v.pk, "label": str(v), "title": v.title} for v in versions]


def domain_stop(course_model: ModelVersion, check: DomainCheck, alternatives: list[ModelVersion]) -> CaseStop:
    if all(f.missing for f in check.hard):  # nothing lies outside: facts the bounds need are not recorded
        return CaseStop(
            "missing_data",
            f"{course_model.title}: {'; '.join(f.message for f in check.hard)}",
            "Record it on the patient's page; the update then runs again by itself",
        )
    reasons = "; ".join(f.message for f in check.hard if not f.missing)
    action = (
        "Open a course on a model whose domain fits: " + "; ".join(f"{v.title} ({v})" for v in alternatives)
        if alternatives
        else "No published model of this drug fits this patient: dose by protocol and levels, without "
        "model-based advice, or ask a curator for a model that covers this patient"
    )
    return CaseStop(
        "outside_domain",
        f"{course_model.title} may not be used for this patient: {reasons}",
        action,
        alternatives_list(alternatives),
    )


def no_domain_stop(version: ModelVersion) -> CaseStop:
    return CaseStop(
        "no_domain",
        f"{version.title} ({version}) declares no validity domain, so whether it fits this patient cannot be "
        "checked",
        "Use a version that declares its domain (the shipped library's versions from 1.1.0 do): a curator "
        "publishes one, and the course is opened on it",
    )


def baseline_stop(
    case: CourseCase, version: ModelVersion, alternatives: list[ModelVersion]
) -> CaseStop | None:
    conflicts = case.covariates.baseline_conflicts
    if not conflicts:
        return None
    first = conflicts[0]
    at = case.origin + dt.timedelta(hours=first.time_h)
    message = (
        f"{first.name} is a baseline covariate of {version.title}: fixed for the whole course at "
        f"{first.initial:g}, but from {timezone.localtime(at):%Y-%m-%d %H:%M} the record gives "
        f"{first.later:g} "
        f"({first.formula}). The model cannot switch it mid-course"
    )
    action = "Open a new course from now on (the model then uses the new value from the start)"
    if alternatives:
        action += ", or a course on a model whose domain fits: " + "; ".join(
            f"{v.title} ({v})" for v in alternatives
        )
    return CaseStop("baseline_changed", message, action, alternatives_list(alternatives))


def _level_time(level: DrugLevel) -> str:
    return f"{timezone.localtime(level.sampled_at):%Y-%m-%d %H:%M}"


def alerts_for(
    *,
    course: TherapyCourse,
    case: CourseCase,
    check: DomainCheck,
    engine_warnings: list[str],
    search: dict[str, Any] | None = None,
) -> list[Alert]:
    alerts: list[Alert] = []
    regimens = (search or {}).get("regimens") or []
    searched = (search or {}).get("recommendation") or {}
    if regimens and regimens[0].get("exceeds_toxicity"):
        best = regimens[0]
        limit = searched.get("target", {}).get("max_p_toxic") or 0.0
        alerts.append(
            Alert(
                "toxicity_limit",
                "every regimen within the hard limits exceeds the protocol's toxicity limit: the proposed "
                f"{regimen_label(best)} has P(toxic) {best['p_toxic'] * 100:.0f} % "
                f"(limit {limit * 100:.0f} %); consider another drug, a lower target or a new level first",
            )
        )
    elif regimens and searched.get("success") is False:  # the closest regimen falls short of the target
        best = regimens[0]
        alerts.append(
            Alert(
                "target_unreachable",
                "no regimen within the hard limits and the toxicity limit reaches the target with at least "
                f"{searched.get('min_pta', 0.5) * 100:.0f} % probability: the proposed {regimen_label(best)} "
                f"has P(target) {best['pta'] * 100:.0f} %; check the target and the MIC, consider another "
                "drug or interval, or draw a new level first",
            )
        )
    covered = set()
    for finding in check.soft:
        alerts.append(Alert(f"soft_domain:{finding.key}", finding.message))
        covered.add(finding.key)
    for warning in engine_warnings:  # covariate values outside the model's declared ranges
        match = _COVARIATE_RANGE.match(warning)
        if match and match["name"] not in covered:
            alerts.append(Alert(f"covariate:{match['name']}", warning))
            covered.add(match["name"])
    creatinine = case.facts.measurements.get("serum_creatinine") or []
    stability = creatinine_stability(creatinine, now_h=case.now_h)
    if not stability.stable:
        alerts.append(Alert("renal_unstable", stability.message))
    for level in course.levels.filter(
        entered_in_error=False, excluded=False, plausibility=DrugLevel.Plausibility.HELD
    ):
        reason = level.plausibility_score.get("reason", "")
        alerts.append(
            Alert(
                f"level_held:{level.public_id}",
                f"the level {level} ({_level_time(level)}) is held as implausible and left out of the "
                f"fit: {reason}. Confirm it with a reason, or mark it entered in error",
            )
        )
    for level in case.levels:
        for notice in level.notices:
            if notice.get("code") == "during_infusion":
                alerts.append(Alert(f"level_during_infusion:{level.pk}", notice["message"]))
    for code, message in hooks.recommendation_alerts_collect(course=course, case=case):
        alerts.append(Alert(code, message))  # e.g. the model predicts this patient's subgroup poorly here
    return alerts
