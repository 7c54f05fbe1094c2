"""Hospital identifiers (MRNs) in one normal form, so that look-alikes are the same identifier.

``clean-01``, ``CLEAN-01``, ``CLEAN‐01`` (U+2010 HYPHEN), ``ＣＬＥＡＮ－01`` (full width) and ``CLEAN 01``
with a no-break space all normalise to ``CLEAN-01``: NFKC folds compatibility forms (full width,
ligatures), every Unicode dash and minus becomes ``-``, spaces (any Unicode space) and invisible characters
go, and case is folded to upper. What remains must be ASCII letters, digits and ``-./_``: a letter from
another script that merely looks Latin (Cyrillic ``С``, Greek ``Ο``) is refused, named, rather than
allowed to make a second patient.

``fhir_patient_mrn`` is the one rule, for every FHIR channel (import, pull, CDS Hooks, SMART launch), that
says which identifier of a FHIR Patient is the MRN.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from django.core.exceptions import ValidationError

ALLOWED = re.compile(r"^[A-Z0-9][A-Z0-9\-./_]*$")
_DASHES = {"\u2212", "\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2015", "\ufe58", "\ufe63", "\uff0d"}


def _fold(character: str) -> str:
    if character in _DASHES or unicodedata.category(character) == "Pd":
        return "-"
    if character.isspace() or unicodedata.category(character) in ("Zs", "Zl", "Zp", "Cf", "Cc"):
        return ""
    return character


def normalize_mrn(raw: str) -> str:
    """The normal form of an MRN (see the module); raises ValidationError on ``mrn`` when it has none."""
    text = unicodedata.normalize("NFKC", raw or "")
    folded = "".join(_fold(character) for character in text).upper()
    if not folded:
        raise ValidationError({"mrn": ["give the hospital identifier"]})
    if not ALLOWED.match(folded):
        strange = [c for c in folded if not re.match(r"[A-Z0-9\-./_]", c)]
        if strange:
            names = ", ".join(
                f"'{c}' (U+{ord(c):04X} {unicodedata.name(c, 'unnamed')})" for c in dict.fromkeys(strange)
            )
            raise ValidationError(
                {"mrn": [f"an MRN has ASCII letters, digits and - . / _ only; this one has {names}"]}
            )
        raise ValidationError({"mrn": ["an MRN starts with a letter or a digit"]})
    if len(folded) > 64:
        raise ValidationError({"mrn": ["at most 64 characters"]})
    return folded


MRN_TYPE_CODE = "MR"  # Identifier.type from HL7 v2 table 0203: Medical record number


def fhir_patient_mrn(resource: Any, *, system: str = "") -> str:
    """Which identifier of a FHIR Patient is the hospital's MRN (docs/fhir.md, "Which identifier is the MRN").

    The one with the configured ``system`` (``FHIR_MRN_SYSTEM``, or the EHR system's own) first; else the one
    typed ``MR``. Identifiers with ``use: old`` or no value are never it. Two different ``MR`` values that
    the configured system does not settle raise ValidationError on ``mrn``: guessing could pick another
    hospital's number and so another patient. No MRN: ``""``. The value is as sent (``normalize_mrn`` it).
    """
    identifiers = resource.get("identifier") if isinstance(resource, dict) else None
    usable = [
        identifier
        for identifier in (identifiers if isinstance(identifiers, list) else [])
        if isinstance(identifier, dict)
        and identifier.get("use") != "old"
        and isinstance(identifier.get("value"), str)
        and identifier["value"].strip()
    ]
    if system:
        for identifier in usable:
            if identifier.get("system") == system:
                return str(identifier["value"])
    typed: dict[str, str] = {}  # normal form -> first value as sent: look-alikes are one MRN
    for identifier in usable:
        if _typed_mr(identifier):
            typed.setdefault(_key(identifier["value"]), identifier["value"])
    if len(typed) > 1:
        values = ", ".join(typed.values())
        raise ValidationError(
            {
                "mrn": [
                    f"the Patient has {len(typed)} identifiers of type MR ({values}) and none with "
                    f"the MRN system {system or '(FHIR_MRN_SYSTEM not set)'}: set FHIR_MRN_SYSTEM to the "
                    "system of this hospital's MRNs"
                ]
            }
        )
    return next(iter(typed.values()), "")


def _key(value: str) -> str:
    try:
        return normalize_mrn(value)
    except ValidationError:
        return value


def _typed_mr(identifier: dict[str, Any]) -> bool:
    kind = identifier.get("type")
    codings = kind.get("coding") if isinstance(kind, dict) else None
    return any(
        isinstance(coding, dict) and coding.get("code") == MRN_TYPE_CODE
        for coding in (codings if isinstance(codings, list) else [])
    )
