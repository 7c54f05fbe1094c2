"""Reads from the catalog: what clinicians and curators may see, and the model card as one object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.http import Http404

from accounts.roles import Role
from accounts.selectors import user_has_role
from models_catalog.domain_summary import DomainSummary, summarise_domain
from models_catalog.labels import route_label
from models_catalog.models import CatalogChangeRequest, Drug, ModelVersion, PgxRuleTable, TargetProtocol


def is_curator(*, user: AbstractBaseUser | AnonymousUser) -> bool:
    return user_has_role(user=user, role=Role.MODEL_CURATOR)


def model_versions_visible(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[ModelVersion]:
    """Curators see every version; everyone else sees published and retired ones only."""
    versions = ModelVersion.objects.select_related("drug", "published_by", "created_by")
    if is_curator(user=user):
        return versions
    return versions.visible_to_clinicians()


def model_version_get(*, user: AbstractBaseUser | AnonymousUser, pk: int) -> ModelVersion:
    try:
        return model_versions_visible(user=user).get(pk=pk)
    except ModelVersion.DoesNotExist:
        raise Http404("no such model version") from None


def drugs_with_versions(*, user: AbstractBaseUser | AnonymousUser) -> list[tuple[Drug, list[ModelVersion]]]:
    versions = list(model_versions_visible(user=user).order_by("drug__name", "model_id", "-created_at"))
    by_drug: dict[int, list[ModelVersion]] = {}
    for version in versions:
        by_drug.setdefault(version.drug_id, []).append(version)
    return [(drug, by_drug.get(drug.pk, [])) for drug in Drug.objects.all()]


def target_protocols(*, drug: Drug | None = None, active_only: bool = True) -> QuerySet[TargetProtocol]:
    protocols = TargetProtocol.objects.select_related("drug")
    if drug is not None:
        protocols = protocols.filter(drug=drug)
    if active_only:
        protocols = protocols.filter(active=True)
    return protocols


def pgx_tables_current() -> list[PgxRuleTable]:
    """The latest loaded content of each PGx guideline table."""
    latest: dict[str, PgxRuleTable] = {}
    for table in PgxRuleTable.objects.order_by("table_id", "-loaded_at", "-pk"):
        latest.setdefault(table.table_id, table)
    return list(latest.values())


@dataclass(frozen=True)
class ModelCard:
    """What a clinician needs to judge whether a model fits the patient in front of them."""

    title: str
    model_id: str
    version: str
    status: str
    citation: str
    doi: str
    population: dict[str, Any]
    validity_ranges: list[dict[str, Any]]
    limitations: list[str]
    covariate_conventions: list[str]
    validity: str
    intended_use: str
    published_by: str
    published_at: Any
    retired_reason: str
    sha256: str


def _as_list(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, list | tuple):
        return [str(item) for item in value]
    return [str(value)]


def model_card(*, model_version: ModelVersion) -> ModelCard:
    document = model_version.document
    card = model_version.model_card or {}
    population = dict(document.get("population") or {})
    population.update(card.get("population") or {})
    limitations = _as_list(card.get("limitations")) or _as_list(population.pop("limitations", None))
    population.pop("limitations", None)
    ranges = [
        {
            "name": name,
            "unit": spec.get("unit", ""),
            "type": spec.get("type", "continuous"),
            "min": spec.get("min"),
            "max": spec.get("max"),
            "description": spec.get("description", ""),
        }
        for name, spec in (document.get("covariates") or {}).items()
    ]
    publisher = model_version.published_by
    return ModelCard(
        title=model_version.title,
        model_id=model_version.model_id,
        version=model_version.version,
        status=model_version.get_status_display(),
        citation=model_version.citation_text,
        doi=model_version.doi,
        population=population,
        validity_ranges=ranges,
        limitations=limitations,
        covariate_conventions=_as_list(card.get("covariate_conventions")),
        validity=str(card.get("validity", "")),
        intended_use=str(card.get("intended_use", "")),
        published_by=f"{publisher.get_full_name() or publisher.get_username()} ({publisher.get_username()})"
        if publisher
        else "",
        published_at=model_version.published_at,
        retired_reason=model_version.retired_reason,
        sha256=model_version.document_sha256,
    )


def declared_measurement_kinds() -> dict[str, str]:
    """Quantities that published models ask clinicians to enter directly (kind -> unit), e.g. haematocrit.

    Weight, creatinine and the other usual kinds have fixed units and are not listed here.
    """
    kinds: dict[str, str] = {}
    for sources in ModelVersion.objects.visible_to_clinicians().values_list("covariate_sources", flat=True):
        for spec in (sources or {}).values():
            if spec.get("from") == "measurement":
                kinds.setdefault(str(spec["kind"]), str(spec.get("unit", "")))
    return kinds


def change_requests_pending() -> list[CatalogChangeRequest]:
    """Changes to dosing rules waiting for a second curator, oldest first."""
    pending = CatalogChangeRequest.objects.filter(status=CatalogChangeRequest.Status.PENDING)
    return list(
        pending.select_related("drug", "model_version", "requested_by").order_by("requested_at", "pk")
    )


def change_lines(change_request: CatalogChangeRequest) -> list[tuple[str, Any, Any]]:
    """(name, now, proposed) for each value the change would alter."""
    current, proposed = change_request.current or {}, change_request.proposed or {}
    return [
        (name, current.get(name), proposed.get(name))
        for name in proposed
        if current.get(name) != proposed.get(name)
    ]


@dataclass(frozen=True)
class LibraryEntry:
    """One published model as a row of the library page."""

    version: ModelVersion
    setting: str
    n: str
    routes: tuple[str, ...]
    domain: DomainSummary


def library_models(*, drug_name: str = "") -> list[tuple[Drug, list[LibraryEntry]]]:
    """The newest published version of every model, by drug (drugs without a published model are left out)."""
    versions = ModelVersion.objects.published().select_related("drug").order_by("drug__name", "model_id")
    if drug_name:
        versions = versions.filter(drug__name=drug_name)
    newest: dict[tuple[int, str], ModelVersion] = {}
    for version in versions.order_by("drug__name", "model_id", "-published_at", "-pk"):
        newest.setdefault((version.drug_id, version.model_id), version)
    by_drug: dict[int, tuple[Drug, list[LibraryEntry]]] = {}
    for version in newest.values():
        card = model_card(model_version=version)
        routes = version.document.get("routes") or ()
        entry = LibraryEntry(
            version=version,
            setting=str(card.population.get("setting", "not reported")),
            n=str(card.population.get("n", "not reported")),
            routes=tuple(route_label(route) for route in routes),
            domain=summarise_domain(version.document),
        )
        by_drug.setdefault(version.drug_id, (version.drug, []))[1].append(entry)
    return sorted(by_drug.values(), key=lambda item: item[0].name)
