"""A published model's validity domain as a row of the library page: who it may be used for, side by side.

The hard domain (who the model may be used for) and the soft ranges (who it was built on) of each model,
grouped into the columns a clinician compares across models of one drug: age, weight, kidney function with
renal replacement and ECMO, and any other bound. Values come from the model document as published; nothing is
inferred.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mipd_engine.domain import FACTS, DomainRule, ModelDomain, parse_domain
from mipd_engine.errors import ModelError

# Columns of the library table, in reading order, and the domain keys each one shows.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("age", "Age"),
    ("weight", "Weight"),
    ("kidney", "Kidney function, renal replacement, ECMO"),
    ("other", "Other bounds"),
)
_COLUMN_OF_FACT = {
    "age_years": "age",
    "postmenstrual_age_weeks": "age",
    "weight_kg": "weight",
    "height_cm": "other",
    "serum_creatinine_mg_per_dl": "kidney",
    "crcl_ml_per_min": "kidney",
    "renal_replacement": "kidney",
    "ecmo": "kidney",  # organ support, read with renal replacement
}
# Model covariates describing kidney function go to the kidney column (by name, as the library spells them).
_KIDNEY_WORDS = ("crcl", "clcr", "egfr", "gfr", "scr", "creat", "renal")


@dataclass(frozen=True)
class DomainCell:
    hard: tuple[str, ...]  # "may be used for" lines
    soft: tuple[str, ...]  # "studied" lines


@dataclass(frozen=True)
class DomainSummary:
    declared: bool
    source: str
    cells: dict[str, DomainCell]
    problem: str = ""  # the document's domain could not be read: shown, never hidden


def _column(key: str) -> str:
    if key in _COLUMN_OF_FACT:
        return _COLUMN_OF_FACT[key]
    lowered = key.lower()
    return "kidney" if any(word in lowered for word in _KIDNEY_WORDS) else "other"


# The fact a column is named after needs no words of its own in that column ("at least 18 years").
_OWN_FACT = {"age_years": "age", "weight_kg": "weight"}


def _line(rule: DomainRule, covariates: dict[str, Any]) -> str:
    if rule.key in ("renal_replacement", "ecmo"):
        return rule.describe()
    if rule.key in _OWN_FACT:
        return rule.describe(FACTS[rule.key][1])
    if rule.key in FACTS:
        words, unit = FACTS[rule.key]
    else:
        spec = covariates.get(rule.key) or {}
        words, unit = rule.key, str(spec.get("unit", ""))
    return f"{words} {rule.describe(unit)}"


def summarise_domain(document: dict[str, Any]) -> DomainSummary:
    """The domain of a ``mipd-model/1`` document, by column."""
    empty = {key: DomainCell((), ()) for key, _ in COLUMNS}
    block = document.get("domain")
    if block is None:
        return DomainSummary(False, "", empty)
    covariates = dict(document.get("covariates") or {})
    try:
        domain: ModelDomain = parse_domain(block, covariates=covariates)
    except ModelError as exc:
        return DomainSummary(False, "", empty, problem=str(exc))
    hard: dict[str, list[str]] = {key: [] for key, _ in COLUMNS}
    soft: dict[str, list[str]] = {key: [] for key, _ in COLUMNS}
    for rule in domain.hard:
        hard[_column(rule.key)].append(_line(rule, covariates))
    for rule in domain.soft:
        soft[_column(rule.key)].append(_line(rule, covariates))
    cells = {key: DomainCell(tuple(hard[key]), tuple(soft[key])) for key, _ in COLUMNS}
    return DomainSummary(True, domain.source, cells)
