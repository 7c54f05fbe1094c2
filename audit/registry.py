"""Which models the audit trail covers, and how: each app registers its own models in ``AppConfig.ready``.

    audit.registry.register(DrugLevel, patient="course__patient__public_id")

Every create, change, mark and delete of a registered model leaves an entry (``audit.recorder``), and the
verification (``audit.verify``) checks that each row in the table is exactly the state its latest entry
recorded: a row changed, added or removed outside the application is reported.

* ``patient``: the lookup path from the row to its patient's public id (``"public_id"`` for the patient),
  so that the auditor can filter by patient.
* ``digest``: large fields shown in the entry by their SHA-256 only (they are still hashed with the row).
* ``redact``: secret fields (password hashes, TOTP keys): covered by the row hash, never shown.
* ``ignore``: volatile bookkeeping (``last_login``, a TOTP device's counters) left out of hash and entry.
* ``reason_fields``: a change that sets one of these fields records its text as the entry's reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import models

DEFAULT_REASON_FIELDS = (
    "error_reason",
    "exclusion_reason",
    "review_note",
    "retired_reason",
    "consent_override_reason",
    "decision_note",
    "reason",
    "note",
)


@dataclass(frozen=True)
class AuditSpec:
    model: type[models.Model]
    patient: str | None
    digest: frozenset[str]
    redact: frozenset[str]
    ignore: frozenset[str]
    reason_fields: tuple[str, ...]

    @property
    def label(self) -> str:
        return self.model._meta.label_lower

    @property
    def attnames(self) -> tuple[str, ...]:
        """The concrete columns covered by the row hash, in model order."""
        return tuple(
            field.attname
            for field in self.model._meta.concrete_fields
            if field.attname not in self.ignore and field.name not in self.ignore
        )


_SPECS: dict[type[models.Model], AuditSpec] = {}


def register(
    model: type[models.Model],
    *,
    patient: str | None = None,
    digest: tuple[str, ...] = (),
    redact: tuple[str, ...] = (),
    ignore: tuple[str, ...] = (),
    reason_fields: tuple[str, ...] = DEFAULT_REASON_FIELDS,
) -> AuditSpec:
    names = {field.attname for field in model._meta.concrete_fields} | {
        field.name for field in model._meta.concrete_fields
    }
    unknown = (set(digest) | set(redact) | set(ignore)) - names
    if unknown:
        raise ValueError(f"{model._meta.label}: no field(s) {sorted(unknown)} to audit")
    spec = AuditSpec(
        model=model,
        patient=patient,
        digest=frozenset(digest),
        redact=frozenset(redact),
        ignore=frozenset(ignore),
        reason_fields=tuple(name for name in reason_fields if name in names),
    )
    _SPECS[model] = spec
    return spec


def spec_for(model: type[models.Model] | Any) -> AuditSpec | None:
    """The spec of a registered model (proxy models share their concrete model's); None otherwise."""
    spec = _SPECS.get(model)
    if spec is None and isinstance(model, type) and issubclass(model, models.Model):
        concrete = model._meta.concrete_model
        if concrete is not model:
            spec = _SPECS.get(concrete)
    return spec


def specs() -> list[AuditSpec]:
    return sorted(_SPECS.values(), key=lambda spec: spec.label)
