"""A published model file is checked every time it is used for dosing.

At publication the version gets a *seal*: an HMAC (the audit chain's key, which is not in the database) of
its model id, version and the SHA-256 of its canonical document. Before a course is opened on a version and
before each Bayesian update, the document is hashed again and the seal recomputed: a document edited in the
database (TVCL 4.5 → 9, say), with or without its stored hash, no longer matches, and dosing with that
version stops with the reason. Each refusal is logged as CRITICAL (the alert for IT's log monitoring) and
written to the audit trail (action ``integrity_alert``); the version's catalog page says so in red, and the
audit verification reports the version's row as changed outside the application.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from audit.chain import chain_key
from audit.models import AuditEntry
from audit.recorder import record_event
from models_catalog.engine_adapter import canonical_sha256
from models_catalog.models import ModelVersion

logger = logging.getLogger("mipd.integrity")


class ModelIntegrityError(Exception):
    """The model file in the database is not the one that was published: do not dose with it."""


def seal_for(*, model_id: str, version: str, document_sha256: str) -> str:
    message = f"mipd-model-seal\0{model_id}\0{version}\0{document_sha256}".encode()
    return hmac.new(chain_key(), message, hashlib.sha256).hexdigest()


def seal(model_version: ModelVersion) -> None:
    """Set the seal of a version being published (saved by the caller)."""
    model_version.document_seal = seal_for(
        model_id=model_version.model_id,
        version=model_version.version,
        document_sha256=canonical_sha256(model_version.document),
    )


def problem(model_version: ModelVersion) -> str:
    """Why this version's document cannot be trusted, or "" when it is the published one."""
    actual = canonical_sha256(model_version.document)
    if actual != model_version.document_sha256:
        published = model_version.document_sha256[:16]
        return f"its model file hashes to {actual[:16]}…, not to the published {published}…"
    expected = seal_for(
        model_id=model_version.model_id, version=model_version.version, document_sha256=actual
    )
    if not hmac.compare_digest(model_version.document_seal or "", expected):
        return "its seal does not match its model file (changed outside the application, or never sealed)"
    return ""


def document_for_dosing(model_version: ModelVersion) -> Any:
    """The version's document after the check; ModelIntegrityError (logged, audited) when it fails."""
    reason = problem(model_version)
    if not reason:
        return model_version.document
    message = (
        f"{model_version}: {reason}. Dosing with this model version is stopped; a curator must publish a "
        "checked version and IT must find out who changed the database"
    )
    logger.critical("model integrity alert: %s", message)
    record_event(
        AuditEntry.Action.INTEGRITY_ALERT,
        object_type="models_catalog.modelversion",
        object_id=model_version.pk,
        details={"model_version": str(model_version), "stored_sha256": model_version.document_sha256},
        reason=message,
    )
    raise ModelIntegrityError(message)


def published_problem(model_version: ModelVersion) -> str:
    """The check for a catalog page: only published and retired versions are sealed."""
    return problem(model_version) if model_version.is_frozen else ""
