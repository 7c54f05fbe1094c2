"""Hospital identifiers (MRNs) in one normal form, so that look-alikes are the same identifier.

``clean-01``, ``CLEAN-01``, ``CLEAN‐01`` (U+2010 HYPHEN), ``ＣＬＥＡＮ－01`` (full width) and ``CLEAN 01``
with a no-break space all normalise to ``CLEAN-01``: NFKC folds compatibility forms (full width,
ligatures), every Unicode dash and minus becomes ``-``, spaces (any Unicode space) and invisible characters
go, and case is folded to upper. What remains must be ASCII letters, digits and ``-./_``: a letter from
another script that merely looks Latin (Cyrillic ``С``, Greek ``Ο``) is refused, named, rather than
allowed to make a second patient.
"""

from __future__ import annotations

import re
import unicodedata

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
