"""A model's validity domain: who it may be used for (hard domain) and who it was built on (soft ranges).

The ``domain`` block of a model file (mipd-model/1, optional; docs/model-format.md)::

    "domain": {
      "source": "Goti 2018 Table 1 (studied population), model card",
      "hard": {"age_years": [18, null], "renal_replacement": ["none", "intermittent_haemodialysis"]},
      "soft": {"age_years": [17, 101], "weight_kg": [33, 255], "CRCL": [4, 150]}
    }

Outside the **hard** domain the model must not be used for the patient: no recommendation comes from it.
Outside a **soft** range the patient lies beyond the studied population: the model may still be used, with a
warning that the reviewer must acknowledge.

Keys are patient facts (:data:`FACTS`: age, weight, height, postmenstrual age), the model's own covariates
(their values as the case gives them, e.g. ``CRCL``), and two set-valued settings: ``renal_replacement``
(the modalities the patient receives, ``"none"`` when none) and ``ecmo``. A range is ``[min, max]`` with
``null`` for an open end; a set lists the allowed values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ModelError

# Numeric patient facts a domain may bound, with the words and unit a person reads.
FACTS: dict[str, tuple[str, str]] = {
    "age_years": ("age", "years"),
    "weight_kg": ("weight", "kg"),
    "height_cm": ("height", "cm"),
    "postmenstrual_age_weeks": ("postmenstrual age", "weeks"),
    "serum_creatinine_mg_per_dl": ("serum creatinine", "mg/dL"),
    # Cockcroft-Gault with total body weight, no cap and no creatinine floor: a model-independent renal
    # fact for models without a renal covariate (a model's own CRCL covariate follows its conventions).
    "crcl_ml_per_min": ("creatinine clearance (Cockcroft-Gault, total body weight)", "mL/min"),
}
RENAL_REPLACEMENT = ("none", "intermittent_haemodialysis", "crrt", "peritoneal_dialysis")
RENAL_REPLACEMENT_LABELS = {
    "none": "no renal replacement therapy",
    "intermittent_haemodialysis": "intermittent haemodialysis",
    "crrt": "continuous renal replacement therapy (CRRT)",
    "peritoneal_dialysis": "peritoneal dialysis",
}
SETTINGS = ("renal_replacement", "ecmo")


@dataclass(frozen=True)
class DomainRule:
    """One bound: a numeric range (``low``/``high``, None for an open end) or a set of allowed values."""

    key: str
    low: float | None = None
    high: float | None = None
    allowed: tuple[Any, ...] | None = None

    @property
    def is_range(self) -> bool:
        return self.allowed is None

    def describe(self, unit: str = "") -> str:
        if self.allowed is not None:
            return ", ".join(_setting_label(self.key, value) for value in self.allowed)
        suffix = f" {unit}" if unit else ""
        if self.low is not None and self.high is not None:
            return f"{self.low:g}-{self.high:g}{suffix}"
        if self.low is not None:
            return f"at least {self.low:g}{suffix}"
        return f"at most {self.high:g}{suffix}"


@dataclass(frozen=True)
class ModelDomain:
    source: str
    hard: tuple[DomainRule, ...]
    soft: tuple[DomainRule, ...]

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(rule.key for rule in (*self.hard, *self.soft))


def parse_domain(document: Any, *, covariates: Mapping[str, Any], path: str = "domain") -> ModelDomain:
    """Validate a ``domain`` block; ``covariates`` are the model's covariate specs (names allowed as keys)."""
    if not isinstance(document, Mapping):
        raise ModelError(path, "expected an object with source, hard and soft")
    unknown = set(document) - {"source", "hard", "soft"}
    if unknown:
        raise ModelError(path, f"unknown field(s) {', '.join(sorted(unknown))}")
    source = document.get("source")
    if not isinstance(source, str) or not source.strip():
        raise ModelError(f"{path}.source", "say where the domain's numbers come from")
    parts = {}
    for part in ("hard", "soft"):
        block = document.get(part) or {}
        if not isinstance(block, Mapping):
            raise ModelError(f"{path}.{part}", "expected an object: key -> [min, max] or allowed values")
        parts[part] = tuple(
            _rule(key, value, f"{path}.{part}.{key}", covariates) for key, value in block.items()
        )
    if not parts["hard"] and not parts["soft"]:
        raise ModelError(path, "a domain needs at least one hard or soft bound")
    return ModelDomain(source.strip(), parts["hard"], parts["soft"])


def _rule(key: str, value: Any, path: str, covariates: Mapping[str, Any]) -> DomainRule:
    if key in SETTINGS:
        if not isinstance(value, list) or not value:
            raise ModelError(path, "expected a non-empty list of allowed values")
        if key == "renal_replacement":
            bad = [v for v in value if v not in RENAL_REPLACEMENT]
            if bad:
                raise ModelError(path, f"unknown modality {bad[0]!r} (one of {', '.join(RENAL_REPLACEMENT)})")
        elif any(not isinstance(v, bool) for v in value):
            raise ModelError(path, "expected a list of true/false")
        return DomainRule(key, allowed=tuple(dict.fromkeys(value)))
    if key not in FACTS and key not in covariates:
        known = ", ".join([*FACTS, *SETTINGS, *covariates])
        raise ModelError(path, f"unknown key '{key}' (patient facts, settings or covariates: {known})")
    if not isinstance(value, list) or len(value) != 2:
        raise ModelError(path, "expected [min, max] (null for an open end)")
    bounds = []
    for item in value:
        if item is None:
            bounds.append(None)
        elif isinstance(item, bool) or not isinstance(item, int | float) or not math.isfinite(item):
            raise ModelError(path, f"expected a number or null, got {item!r}")
        else:
            bounds.append(float(item))
    low, high = bounds
    if low is None and high is None:
        raise ModelError(path, "give at least one bound")
    if low is not None and high is not None and low > high:
        raise ModelError(path, f"range is inverted: min {low:g} > max {high:g}")
    return DomainRule(key, low, high)


def _setting_label(key: str, value: Any) -> str:
    if key == "renal_replacement":
        return RENAL_REPLACEMENT_LABELS.get(value, str(value))
    if key == "ecmo":
        return "on ECMO" if value else "no ECMO"
    return str(value)


@dataclass(frozen=True)
class DomainFacts:
    """What the patient's record says, at the time of the check.

    ``values``: numeric facts (:data:`FACTS`) and the model's covariates; a covariate may carry several values
    over the course (every value the case uses is checked). ``renal_replacement``: the modalities received
    during the course (``{"none"}`` when none); ``ecmo``: on ECMO during the course (None: not recorded).
    """

    values: Mapping[str, Sequence[float]] = field(default_factory=dict)
    renal_replacement: frozenset[str] = frozenset({"none"})
    ecmo: bool | None = False


@dataclass(frozen=True)
class DomainFinding:
    key: str
    hard: bool
    message: str  # a sentence a clinician reads: what lies outside and the bound
    missing: bool = False  # the fact is not recorded: the bound cannot be checked


@dataclass(frozen=True)
class DomainCheck:
    """``eligible`` is False when any hard bound is broken or cannot be checked (the fact is missing)."""

    eligible: bool
    findings: tuple[DomainFinding, ...]
    declared: bool  # the model declares a domain at all

    @property
    def hard(self) -> tuple[DomainFinding, ...]:
        return tuple(f for f in self.findings if f.hard)

    @property
    def soft(self) -> tuple[DomainFinding, ...]:
        return tuple(f for f in self.findings if not f.hard)


def _label(key: str, units: Mapping[str, str]) -> tuple[str, str]:
    if key in FACTS:
        return FACTS[key]
    return key, units.get(key, "")


def check_domain(
    domain: ModelDomain | None, facts: DomainFacts, *, covariate_units: Mapping[str, str] | None = None
) -> DomainCheck:
    """Compare the patient's facts with the model's hard domain and soft ranges."""
    if domain is None:
        return DomainCheck(True, (), False)
    units = covariate_units or {}
    findings: list[DomainFinding] = []
    for hard, rules in ((True, domain.hard), (False, domain.soft)):
        where = "the model's domain" if hard else "the population the model was built on"
        for rule in rules:
            message, missing = _finding(rule, facts, units, where)
            if message:
                findings.append(DomainFinding(rule.key, hard, message, missing))
    eligible = not any(f.hard for f in findings)
    return DomainCheck(eligible, tuple(findings), True)


def _finding(rule: DomainRule, facts: DomainFacts, units: Mapping[str, str], where: str) -> tuple[str, bool]:
    """(message, fact missing); an empty message when the patient lies within the bound."""
    if rule.key == "renal_replacement":
        outside = sorted(set(facts.renal_replacement) - set(rule.allowed or ()))
        if outside:
            received = ", ".join(RENAL_REPLACEMENT_LABELS.get(v, v) for v in outside)
            return f"the patient receives {received}; {where} covers {rule.describe()}", False
        return "", False
    if rule.key == "ecmo":
        if facts.ecmo is None:
            return f"ECMO status is not recorded; {where} covers {rule.describe()}", True
        if facts.ecmo not in (rule.allowed or ()):
            state = "on" if facts.ecmo else "not on"
            return f"the patient is {state} ECMO; {where} covers {rule.describe()}", False
        return "", False
    label, unit = _label(rule.key, units)
    values = [v for v in facts.values.get(rule.key, ()) if v is not None]
    if not values:
        return f"{label} is not recorded, so {where} ({rule.describe(unit)}) cannot be checked", True
    low_value, high_value = min(values), max(values)
    shown_unit = f" {unit}" if unit else ""
    if rule.low is not None and low_value < rule.low:
        return f"{label} {_number(low_value)}{shown_unit} lies below {where} ({rule.describe(unit)})", False
    if rule.high is not None and high_value > rule.high:
        return f"{label} {_number(high_value)}{shown_unit} lies above {where} ({rule.describe(unit)})", False
    return "", False


def _number(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
