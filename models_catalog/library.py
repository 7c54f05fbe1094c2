"""Load the shipped library (``models_catalog/library/``) and the engine's PGx tables into the catalog.

Idempotent: a model version already in the catalog with the same file is left alone; one with the same
version but a different file is reported as a conflict and never overwritten (published versions are
immutable). Drugs and target protocols the hospital already has keep their local edits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from models_catalog import engine_adapter, services
from models_catalog.models import Drug, ModelVersion, PgxRuleTable, TargetProtocol

LIBRARY_DIRECTORY = Path(__file__).resolve().parent / "library"
LIBRARY_FORMAT = "mipd-library/1"
DRUG_FIELDS = (*Drug.DESCRIPTION_FIELDS, *Drug.LIMIT_FIELDS)


class LibraryError(Exception):
    """The library files themselves are malformed (a packaging error, not a curator's input)."""


@dataclass
class LibraryLoadReport:
    drugs_created: list[str] = field(default_factory=list)
    targets_created: list[str] = field(default_factory=list)
    versions_created: list[str] = field(default_factory=list)
    versions_published: list[str] = field(default_factory=list)
    versions_unchanged: list[str] = field(default_factory=list)
    pgx_tables_loaded: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise LibraryError(f"{path}: {exc}") from None


def library_entries(directory: Path = LIBRARY_DIRECTORY) -> list[tuple[Path, dict[str, Any]]]:
    entries = []
    for path in sorted((directory / "models").glob("*.json")):
        entry = _read_json(path)
        if not isinstance(entry, dict) or entry.get("library_format") != LIBRARY_FORMAT:
            raise LibraryError(f"{path}: not a {LIBRARY_FORMAT} file")
        entries.append((path, entry))
    return entries


def _load_drugs(
    directory: Path,
    report: LibraryLoadReport,
    user: AbstractBaseUser | None,
    approver: AbstractBaseUser | None = None,
) -> None:
    document = _read_json(directory / "drugs.json")
    for item in document.get("drugs", []):
        drug = Drug.objects.filter(name=item["name"]).first()
        if drug is None:
            drug = Drug(name=item["name"], **{key: item[key] for key in DRUG_FIELDS if key in item})
            drug.full_clean()
            drug.save()
            report.drugs_created.append(drug.name)
        for protocol in item.get("target_protocols", []):
            if TargetProtocol.objects.filter(drug=drug, indication=protocol["indication"]).exists():
                continue
            if user is None:  # the system (IT's command without curators)
                services.target_protocol_save(
                    drug=drug,
                    indication=protocol["indication"],
                    target=protocol["target"],
                    source=protocol["source"],
                    user=None,
                )
            else:  # four-eyes, as for every target a curator sets
                proposal = services.target_protocol_propose(
                    drug=drug,
                    indication=protocol["indication"],
                    target=protocol["target"],
                    source=protocol["source"],
                    user=user,
                    reason="the shipped model library's target protocol",
                )
                services.change_request_approve(change_request=proposal, user=approver)
            report.targets_created.append(f"{drug.name}: {protocol['indication']}")


def _load_version(
    path: Path,
    entry: dict[str, Any],
    report: LibraryLoadReport,
    *,
    requested_by: AbstractBaseUser | None,
    approved_by: AbstractBaseUser | None,
) -> None:
    document = entry["model"]
    version = entry["version"]
    label = f"{document.get('id')} {version}"
    existing = ModelVersion.objects.filter(model_id=document.get("id"), version=version).first()
    if existing is not None:
        if existing.document_sha256 != engine_adapter.canonical_sha256(document):
            report.problems.append(
                f"{label}: the catalog holds a different file under this version; left unchanged "
                f"({path.name} needs a new version number)"
            )
        else:
            report.versions_unchanged.append(label)
        return
    try:
        model_version = services.model_version_create(
            document=document,
            version=version,
            user=requested_by,
            model_card=entry.get("model_card"),
            reference_checks=entry.get("reference_checks"),
            transcription=entry.get("transcription"),
            covariate_sources=entry.get("covariate_sources"),
        )
    except ValidationError as exc:
        report.problems.append(f"{path.name}: {'; '.join(exc.messages)}")
        return
    report.versions_created.append(label)
    run = services.model_version_validate(model_version=model_version, user=requested_by)
    if not run.success:
        report.problems.append(f"{label}: validation failed, left as draft: {run.message}")
        return
    if requested_by is not None and approved_by is not None:
        services.model_version_request_publication(model_version=model_version, user=requested_by)
        services.model_version_approve_publication(model_version=model_version, user=approved_by)
        report.versions_published.append(label)


def _load_pgx_tables(report: LibraryLoadReport) -> None:
    tables = resources.files("mipd_engine.pgx") / "tables"
    for item in sorted(tables.iterdir(), key=lambda t: t.name):
        if not item.name.endswith(".json"):
            continue
        document = json.loads(item.read_text(encoding="utf-8"))
        sha = engine_adapter.canonical_sha256(document)
        _, created = PgxRuleTable.objects.get_or_create(
            table_id=document["id"],
            document_sha256=sha,
            defaults={
                "guideline": document["guideline"],
                "guideline_version": str(document["version"]),
                "doi": document.get("doi", ""),
                "document": document,
            },
        )
        if created:
            report.pgx_tables_loaded.append(f"{document['id']} ({document['version']})")


@transaction.atomic
def library_load(
    *,
    directory: Path = LIBRARY_DIRECTORY,
    requested_by: AbstractBaseUser | None = None,
    approved_by: AbstractBaseUser | None = None,
) -> LibraryLoadReport:
    """Load drugs, targets, model versions (validated; published if two curators are named), PGx tables."""
    if (requested_by is None) != (approved_by is None):
        raise ValidationError("publishing the library needs both a requesting and an approving curator")
    report = LibraryLoadReport()
    _load_drugs(directory, report, requested_by, approved_by)
    for path, entry in library_entries(directory):
        _load_version(path, entry, report, requested_by=requested_by, approved_by=approved_by)
    _load_pgx_tables(report)
    return report
