"""Reading a Bundle: each entry is validated on its own with fhir.resources' R4B models, so that one invalid
resource is reported and the others still imported.

fhir.resources 8 implements R5 in its top-level package, R4B (4.3.0) and STU3 in sub-packages; there is no
4.0.1 package any more. R4B changed none of the elements read here (Patient, Observation,
MedicationAdministration, MedicationRequest, Bundle, Provenance): an R4 document is a valid R4B one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError as PydanticValidationError

FHIR_RELEASE = "4.3.0 (R4B models, reading R4 4.0.1 documents)"
SUPPORTED = ("Patient", "Observation", "MedicationAdministration", "MedicationRequest")


class BundleError(ValueError):
    """The document is not a FHIR Bundle at all (the whole import is refused)."""


@dataclass(frozen=True)
class Entry:
    resource_type: str
    resource_id: str
    full_url: str
    resource: Any  # the fhir.resources model, or None when invalid
    raw: dict[str, Any]
    content_sha256: str
    problem: str = ""

    @property
    def label(self) -> str:
        return f"{self.resource_type}/{self.resource_id or '(no id)'}"


def content_hash(raw: dict[str, Any]) -> str:
    # meta (versionId, lastUpdated) changes on every read of some servers: the content is what counts.
    body = {key: value for key, value in raw.items() if key not in ("meta", "text")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _first_error(exc: PydanticValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "__root__")
    return f"{where}: {error.get('msg', '')}" if where else str(error.get("msg", ""))


def read_bundle(document: bytes | str | dict[str, Any]) -> tuple[dict[str, Any], list[Entry]]:
    if isinstance(document, dict):
        data = document
    else:
        try:
            data = json.loads(document)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BundleError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        raise BundleError("not a FHIR Bundle (resourceType must be 'Bundle')")
    raw_entries = data.get("entry") or []
    if not isinstance(raw_entries, list):
        raise BundleError("Bundle.entry must be a list")
    entries = []
    for position, item in enumerate(raw_entries):
        raw = item.get("resource") if isinstance(item, dict) else None
        full_url = str(item.get("fullUrl") or "") if isinstance(item, dict) else ""
        if not isinstance(raw, dict):
            entries.append(Entry("?", "", full_url, None, {}, "", f"entry {position} has no resource"))
            continue
        kind, rid = str(raw.get("resourceType") or "?"), str(raw.get("id") or "")
        problem, model = "", None
        if kind not in SUPPORTED:
            problem = f"{kind} is not imported (the import reads {', '.join(SUPPORTED)})"
        else:
            try:
                model = get_fhir_model_class(kind).model_validate(raw)
            except PydanticValidationError as exc:
                problem = f"not a valid FHIR R4 {kind}: {_first_error(exc)}"
        if not problem and not rid:
            problem = "has no id: it could not be recognised when imported again"
        entries.append(Entry(kind, rid, full_url, model, raw, content_hash(raw), problem))
    return data, entries
