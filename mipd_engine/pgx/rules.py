"""Pharmacogenomic starting-dose rules kept as versioned CPIC data tables.

Pure Python (``json``, ``importlib.resources``); this module never imports Django. The clinical content lives
in JSON tables under ``mipd_engine/pgx/tables/`` (one per CPIC guideline), each carrying the guideline name,
version, citation, DOI, what was checked against which source, a diplotype-to-phenotype table per gene and
the phenotype-to-recommendation rows with the guideline's own numbers. The code only looks numbers up: it
never interpolates, extrapolates or guesses. Anything not in a table (an allele, a gene, a phenotype, a drug,
a combination of genes CPIC gives no number for) yields a result that says so and carries no dose.

The hybrid dosing strategy: before any drug level is available the starting dose comes from the genotype
(:func:`starting_dose`, ``basis="genotype"``, a fixed fraction of the standard starting dose); once levels
exist, Bayesian (MAP) dosing takes over and its recommendations say ``basis="bayesian"``
(:func:`hybrid_basis`). Every recommendation therefore states which of the two produced it.

Tables are validated when loaded (:func:`load_guidelines`): unknown or missing keys, fractions outside
[0, 2], a phenotype of a gene without a recommendation row, an allele function without a name... raise
:class:`GuidelineTableError` naming the file and the field path.
"""

from __future__ import annotations

import functools
import json
import math
import numbers
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, cast

from ..errors import InvalidInputError

Basis = Literal["genotype", "bayesian"]
#: Recommendation produced from the genotype alone (fixed fraction of the standard starting dose).
BASIS_GENOTYPE: Basis = "genotype"
#: Recommendation produced by Bayesian (MAP) dosing from measured drug levels.
BASIS_BAYESIAN: Basis = "bayesian"

#: Prefix of every message that reports the absence of a genotype-based recommendation.
NO_RECOMMENDATION = "no recommendation from genotype"

SCHEMA_VERSION = 1
FRACTION_MIN = 0.0
FRACTION_MAX = 2.0
STRENGTHS = ("strong", "moderate", "optional")
POPULATIONS = ("adult", "pediatric")
INDICATIONS = ("malignant", "nonmalignant")
DOSE_KINDS = ("fraction_of_standard", "mg_per_m2_day")
MG_PER_M2_DAY_MAX = 1000.0  # plausibility limit of an absolute dose in a table
MAX_MG_PER_KG_DAY_MAX = 50.0  # plausibility limit of a per-kg cap in a table
WEIGHT_MAX_KG = 400.0
BSA_MAX_M2 = 5.0

_TOP_REQUIRED = (
    "schema_version",
    "id",
    "guideline",
    "version",
    "year",
    "citation",
    "doi",
    "url",
    "sources_checked",
    "notes",
    "advisories",
    "genes",
    "drugs",
)
_TOP_OPTIONAL = ("pmid", "table_built")
_GENE_REQUIRED = ("alleles", "function_pairs", "phenotypes")
_GENE_OPTIONAL = ("phenotype_aliases", "alias_warnings", "notes")
_PAIR_KEYS = ("functions", "phenotype")
_DRUG_REQUIRED = ("genes", "recommendations")
_DRUG_OPTIONAL = ("reference_phenotypes", "notes")
_ROW_REQUIRED = (
    "id",
    "phenotypes",
    "dose",
    "alternative_recommended",
    "strength",
    "text",
    "source",
    "verified",
    "verification",
)
_ROW_OPTIONAL = ("population", "indication", "frequency", "max_mg_per_kg_day", "condition")
_DOSE_KEYS = ("kind", "low", "high")

_ALLELE_RE = re.compile(r"^\*(\d+)([A-Z]*)$")


class GuidelineTableError(InvalidInputError):
    """A PGx data table that is malformed or inconsistent; ``path`` is ``<file>:<field path>``."""


# -- table objects -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GuidelineSource:
    """Where a recommendation comes from: the guideline, its version and its citation.

    Attributes
    ----------
    table_id : str
        Identifier of the data table (its file name without ``.json``).
    guideline : str
        Title of the guideline.
    version : str
        Version of the guideline implemented by the table (publication and later website updates).
    year : int
        Year of publication.
    citation : str
        Bibliographic reference.
    doi : str
        DOI of the publication (without ``doi:``).
    pmid : str or None
        PubMed identifier.
    url : str
        Web page of the guideline.
    """

    table_id: str
    guideline: str
    version: str
    year: int
    citation: str
    doi: str
    pmid: str | None
    url: str


@dataclass(frozen=True)
class DoseSpec:
    """Dose of a recommendation row.

    Attributes
    ----------
    kind : {"fraction_of_standard", "mg_per_m2_day"}
        ``fraction_of_standard``: ``low``-``high`` times the standard starting daily dose;
        ``mg_per_m2_day``: an absolute dose per m² of body surface area per dosing day.
    low, high : float
        Range (equal for a single value).
    """

    kind: str
    low: float
    high: float


@dataclass(frozen=True)
class RecommendationRow:
    """One phenotype-to-recommendation row of a guideline table.

    Attributes
    ----------
    id : str
        Row identifier, unique within the table.
    phenotypes : Mapping[str, str]
        Gene -> phenotype this row applies to (one gene, or several for a combined row).
    population : {"any", "adult", "pediatric"}
        Patients the row applies to.
    indication : {"any", "malignant", "nonmalignant"}
        Indication the row applies to.
    dose : DoseSpec or None
        Dose, or None when the guideline gives no number (alternative agent, indeterminate phenotype...).
    frequency : str or None
        Change of dosing frequency stated by the guideline (e.g. thrice weekly instead of daily).
    max_mg_per_kg_day : float or None
        Maximum starting dose stated by the guideline, mg/kg/day.
    alternative_recommended : bool
        True when the guideline recommends an alternative agent.
    strength : {"strong", "moderate", "optional"} or None
        Classification of the recommendation; None when the source gives none or it could not be checked.
    text : str
        The guideline's recommendation, short.
    condition : str or None
        Condition or caution under which the guideline applies the numbers (starting-dose threshold, close
        monitoring when the other gene's phenotype is indeterminate); added to the warnings.
    source : str
        Table or update of the guideline the row comes from.
    verified : bool
        False when the row's numbers could not be checked against a source when the table was built.
    verification : str
        What was checked, and where.
    """

    id: str
    phenotypes: Mapping[str, str]
    population: str
    indication: str
    dose: DoseSpec | None
    frequency: str | None
    max_mg_per_kg_day: float | None
    alternative_recommended: bool
    strength: str | None
    text: str
    condition: str | None
    source: str
    verified: bool
    verification: str


@dataclass(frozen=True)
class GeneTable:
    """Diplotype-to-phenotype table of one gene.

    Attributes
    ----------
    gene : str
        HGNC symbol.
    alleles : Mapping[str, str]
        Star allele -> function (``"normal function"``, ``"no function"``...).
    function_pairs : Mapping[tuple[str, str], str]
        Sorted pair of allele functions -> phenotype. A pair not listed has no phenotype.
    phenotypes : tuple of str
        Phenotypes of the gene, as written in the guideline.
    phenotype_aliases : Mapping[str, str]
        Other accepted names (abbreviations, former names) -> phenotype.
    alias_warnings : Mapping[str, str]
        Alias -> warning added when the alias is used.
    notes : tuple of str
        Notes on the gene table.
    """

    gene: str
    alleles: Mapping[str, str]
    function_pairs: Mapping[tuple[str, str], str]
    phenotypes: tuple[str, ...]
    phenotype_aliases: Mapping[str, str]
    alias_warnings: Mapping[str, str]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class DrugTable:
    """Recommendation rows of one drug.

    Attributes
    ----------
    drug : str
        Drug name (lower case, INN).
    genes : tuple of str
        Genes the recommendation uses.
    reference_phenotypes : Mapping[str, str]
        For multi-gene drugs, the phenotype of each gene that leaves the other gene's row unchanged
        (normal metabolizer). Empty for single-gene drugs.
    rows : tuple of RecommendationRow
        The recommendation rows.
    notes : tuple of str
        Notes on the drug table.
    """

    drug: str
    genes: tuple[str, ...]
    reference_phenotypes: Mapping[str, str]
    rows: tuple[RecommendationRow, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Guideline:
    """One validated guideline data table.

    Attributes
    ----------
    source : GuidelineSource
        Guideline, version and citation.
    sources_checked : tuple of str
        What was checked against which source when the table was built.
    notes : tuple of str
        Notes, including every number that could not be verified.
    advisories : tuple of str
        Added to the warnings of every recommendation built from this table.
    genes : Mapping[str, GeneTable]
        Gene tables.
    drugs : Mapping[str, DrugTable]
        Drug tables.
    path : str
        File the table was read from.
    """

    source: GuidelineSource
    sources_checked: tuple[str, ...]
    notes: tuple[str, ...]
    advisories: tuple[str, ...]
    genes: Mapping[str, GeneTable]
    drugs: Mapping[str, DrugTable]
    path: str


# -- results -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhenotypeCall:
    """Phenotype assigned to a diplotype from a CPIC table (or the reason why none is).

    Attributes
    ----------
    gene : str
        Gene as normalised (upper case).
    diplotype_input : str
        Diplotype as given.
    diplotype : str or None
        Normalised diplotype (alleles sorted, e.g. ``"*1/*3"`` for ``"*3/*1"``), None if it could not be read.
    allele_functions : tuple of str
        Function of each allele of the normalised diplotype (empty when an allele is unknown).
    phenotype : str or None
        Phenotype as written in the guideline; None when the table does not give one (never guessed).
    reason : str
        How the phenotype was assigned, or why it was not (starting with ``"no recommendation from
        genotype"``).
    source : GuidelineSource or None
        The table used; None when the gene is in no table.
    """

    gene: str
    diplotype_input: str
    diplotype: str | None
    allele_functions: tuple[str, ...]
    phenotype: str | None
    reason: str
    source: GuidelineSource | None


@dataclass(frozen=True)
class GenotypeDoseRecommendation:
    """Genotype-based starting-dose recommendation (the ``"genotype"`` half of the hybrid strategy).

    Attributes
    ----------
    drug : str
        Drug as normalised (lower case).
    genes : tuple of str
        Genes whose phenotypes were used.
    phenotypes : Mapping[str, str]
        Gene -> phenotype used (guideline spelling).
    basis : {"genotype"}
        Always ``"genotype"``; Bayesian recommendations say ``"bayesian"``.
    dose_range_mg : tuple of float or None
        (low, high) starting dose in mg per dosing day (per day unless ``frequency`` says otherwise); None
        when the guideline gives no number for this case, when the drug or phenotype is not in a table, or
        when a needed body measure is missing.
    fraction_of_standard : tuple of float or None
        (low, high) fraction of the standard starting dose given by the guideline, when it is a fraction.
    capped : bool
        True when ``dose_range_mg`` was lowered to the guideline's maximum (e.g. 0.3 mg/kg/day).
    frequency : str or None
        Change of dosing frequency stated by the guideline.
    alternative_recommended : bool
        True when the guideline recommends an alternative agent.
    strength : str or None
        Classification of the recommendation (strong/moderate/optional), None if unknown.
    guideline_text : str
        The guideline's recommendation, short ('' when there is no matching row).
    message : str
        Summary; starts with ``"no recommendation from genotype"`` when no row applies.
    warnings : tuple of str
        Conditions, caps, unverified numbers, missing genes, guideline advisories.
    source : GuidelineSource or None
        Guideline, version and citation; None when the drug is in no table.
    row_ids : tuple of str
        Table rows used.
    """

    drug: str
    genes: tuple[str, ...]
    phenotypes: Mapping[str, str]
    basis: Basis
    dose_range_mg: tuple[float, float] | None
    fraction_of_standard: tuple[float, float] | None
    capped: bool
    frequency: str | None
    alternative_recommended: bool
    strength: str | None
    guideline_text: str
    message: str
    warnings: tuple[str, ...]
    source: GuidelineSource | None
    row_ids: tuple[str, ...] = field(default=())


# -- loading and validation --------------------------------------------------------------------------------


class _Reader:
    """Checks one decoded JSON document, field by field, raising with the field path."""

    def __init__(self, filename: str) -> None:
        self.filename = filename

    def fail(self, path: str, message: str) -> GuidelineTableError:
        return GuidelineTableError(f"{self.filename}:{path}", message)

    def obj(self, value: Any, path: str, required: Iterable[str], optional: Iterable[str] = ()) -> dict:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be an object, got {type(value).__name__}")
        required = tuple(required)
        allowed = set(required) | set(optional)
        for key in value:
            if key not in allowed:
                raise self.fail(f"{path}.{key}" if path else key, f"unknown key (allowed: {sorted(allowed)})")
        for key in required:
            if key not in value:
                raise self.fail(f"{path}.{key}" if path else key, "missing required key")
        return value

    def text(self, value: Any, path: str, *, optional: bool = False) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, "must be a non-empty string")
        return value

    def texts(self, value: Any, path: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fail(path, "must be a list of strings")
        return tuple(str(self.text(item, f"{path}[{i}]")) for i, item in enumerate(value))

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, "must be true or false")
        return value

    def number(self, value: Any, path: str, low: float, high: float) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(path, "must be a finite number")
        if not low <= value <= high:
            raise self.fail(path, f"{value} is outside [{low:g}, {high:g}]")
        return float(value)

    def choice(self, value: Any, path: str, choices: Iterable[str]) -> str:
        choices = tuple(choices)
        if value not in choices:
            raise self.fail(path, f"{value!r} is not one of {list(choices)}")
        return value


def _parse_guideline(document: Any, filename: str) -> Guideline:
    r = _Reader(filename)
    top = r.obj(document, "", _TOP_REQUIRED, _TOP_OPTIONAL)
    if top["schema_version"] != SCHEMA_VERSION:
        raise r.fail("schema_version", f"must be {SCHEMA_VERSION}, got {top['schema_version']!r}")
    year = top["year"]
    if isinstance(year, bool) or not isinstance(year, int) or not 1990 <= year <= 2100:
        raise r.fail("year", "must be an integer year")
    source = GuidelineSource(
        table_id=str(r.text(top["id"], "id")),
        guideline=str(r.text(top["guideline"], "guideline")),
        version=str(r.text(top["version"], "version")),
        year=year,
        citation=str(r.text(top["citation"], "citation")),
        doi=str(r.text(top["doi"], "doi")),
        pmid=r.text(top.get("pmid"), "pmid", optional=True),
        url=str(r.text(top["url"], "url")),
    )
    if not source.doi.startswith("10."):
        raise r.fail("doi", f"{source.doi!r} is not a DOI (10.xxxx/...)")
    genes = {name: _parse_gene(r, name, value) for name, value in _items(r, top["genes"], "genes")}
    drugs = {name: _parse_drug(r, name, value, genes) for name, value in _items(r, top["drugs"], "drugs")}
    if not drugs:
        raise r.fail("drugs", "must list at least one drug")
    for gene in genes:
        if not any(gene in drug.genes for drug in drugs.values()):
            raise r.fail(f"genes.{gene}", "gene used by no drug")
    return Guideline(
        source=source,
        sources_checked=r.texts(top["sources_checked"], "sources_checked"),
        notes=r.texts(top["notes"], "notes"),
        advisories=r.texts(top["advisories"], "advisories"),
        genes=MappingProxyType(genes),
        drugs=MappingProxyType(drugs),
        path=filename,
    )


def _items(r: _Reader, value: Any, path: str) -> list[tuple[str, Any]]:
    if not isinstance(value, dict):
        raise r.fail(path, "must be an object")
    for key in value:
        r.text(key, f"{path}.<key>")
    return list(value.items())


def _parse_gene(r: _Reader, gene: str, value: Any) -> GeneTable:
    path = f"genes.{gene}"
    if gene != gene.upper():
        raise r.fail(path, "gene symbols must be upper case")
    data = r.obj(value, path, _GENE_REQUIRED, _GENE_OPTIONAL)
    alleles: dict[str, str] = {}
    for allele, function in _items(r, data["alleles"], f"{path}.alleles"):
        if not _ALLELE_RE.match(allele):
            raise r.fail(f"{path}.alleles.{allele}", "allele names must look like *1, *3A, *17")
        alleles[allele] = str(r.text(function, f"{path}.alleles.{allele}"))
    if not alleles:
        raise r.fail(f"{path}.alleles", "must list at least one allele")
    phenotypes = r.texts(data["phenotypes"], f"{path}.phenotypes")
    if not phenotypes or len(set(phenotypes)) != len(phenotypes):
        raise r.fail(f"{path}.phenotypes", "must list distinct phenotypes")
    functions = set(alleles.values())
    pairs: dict[tuple[str, str], str] = {}
    if not isinstance(data["function_pairs"], list) or not data["function_pairs"]:
        raise r.fail(f"{path}.function_pairs", "must be a non-empty list")
    for i, item in enumerate(data["function_pairs"]):
        item_path = f"{path}.function_pairs[{i}]"
        pair = r.obj(item, item_path, _PAIR_KEYS)
        fns = pair["functions"]
        if not isinstance(fns, list) or len(fns) != 2:
            raise r.fail(f"{item_path}.functions", "must be a list of two allele functions")
        for j, fn in enumerate(fns):
            if fn not in functions:
                raise r.fail(f"{item_path}.functions[{j}]", f"{fn!r} is the function of no allele of {gene}")
        key = _pair_key(fns[0], fns[1])
        if key in pairs:
            raise r.fail(item_path, f"duplicate function pair {list(key)}")
        pairs[key] = r.choice(pair["phenotype"], f"{item_path}.phenotype", phenotypes)
    aliases: dict[str, str] = {}
    for alias, target in _items(r, data.get("phenotype_aliases", {}), f"{path}.phenotype_aliases"):
        aliases[alias] = r.choice(target, f"{path}.phenotype_aliases.{alias}", phenotypes)
    folded = [_fold(p) for p in phenotypes]
    for alias in aliases:
        if _fold(alias) in folded:
            raise r.fail(f"{path}.phenotype_aliases.{alias}", "alias equal to a phenotype name")
    alias_warnings: dict[str, str] = {}
    for alias, warning in _items(r, data.get("alias_warnings", {}), f"{path}.alias_warnings"):
        if alias not in aliases:
            raise r.fail(f"{path}.alias_warnings.{alias}", "warning for an alias that is not defined")
        alias_warnings[alias] = str(r.text(warning, f"{path}.alias_warnings.{alias}"))
    return GeneTable(
        gene=gene,
        alleles=MappingProxyType(alleles),
        function_pairs=MappingProxyType(pairs),
        phenotypes=phenotypes,
        phenotype_aliases=MappingProxyType(aliases),
        alias_warnings=MappingProxyType(alias_warnings),
        notes=r.texts(data.get("notes", []), f"{path}.notes"),
    )


def _parse_drug(r: _Reader, drug: str, value: Any, genes: Mapping[str, GeneTable]) -> DrugTable:
    path = f"drugs.{drug}"
    if drug != drug.strip().lower():
        raise r.fail(path, "drug names must be lower case")
    data = r.obj(value, path, _DRUG_REQUIRED, _DRUG_OPTIONAL)
    drug_genes = r.texts(data["genes"], f"{path}.genes")
    if not drug_genes or len(set(drug_genes)) != len(drug_genes):
        raise r.fail(f"{path}.genes", "must list distinct genes")
    for i, gene in enumerate(drug_genes):
        if gene not in genes:
            raise r.fail(f"{path}.genes[{i}]", f"{gene!r} has no entry under 'genes'")
    reference: dict[str, str] = {}
    if "reference_phenotypes" in data:
        for gene, pheno in _items(r, data["reference_phenotypes"], f"{path}.reference_phenotypes"):
            if gene not in drug_genes:
                raise r.fail(f"{path}.reference_phenotypes.{gene}", "gene not used by this drug")
            reference[gene] = r.choice(pheno, f"{path}.reference_phenotypes.{gene}", genes[gene].phenotypes)
    if len(drug_genes) > 1 and set(reference) != set(drug_genes):
        raise r.fail(f"{path}.reference_phenotypes", "required for every gene of a multi-gene drug")
    if not isinstance(data["recommendations"], list) or not data["recommendations"]:
        raise r.fail(f"{path}.recommendations", "must be a non-empty list")
    rows = tuple(
        _parse_row(r, f"{path}.recommendations[{i}]", item, drug_genes, genes)
        for i, item in enumerate(data["recommendations"])
    )
    _check_rows(r, path, rows, drug_genes, genes)
    return DrugTable(
        drug=drug,
        genes=drug_genes,
        reference_phenotypes=MappingProxyType(reference),
        rows=rows,
        notes=r.texts(data.get("notes", []), f"{path}.notes"),
    )


def _parse_row(
    r: _Reader, path: str, value: Any, drug_genes: tuple[str, ...], genes: Mapping[str, GeneTable]
) -> RecommendationRow:
    data = r.obj(value, path, _ROW_REQUIRED, _ROW_OPTIONAL)
    phenotypes: dict[str, str] = {}
    for gene, pheno in _items(r, data["phenotypes"], f"{path}.phenotypes"):
        if gene not in drug_genes:
            raise r.fail(f"{path}.phenotypes.{gene}", "gene not used by this drug")
        phenotypes[gene] = r.choice(pheno, f"{path}.phenotypes.{gene}", genes[gene].phenotypes)
    if not phenotypes:
        raise r.fail(f"{path}.phenotypes", "must name at least one gene")
    dose = None
    if data["dose"] is not None:
        d = r.obj(data["dose"], f"{path}.dose", _DOSE_KEYS)
        kind = r.choice(d["kind"], f"{path}.dose.kind", DOSE_KINDS)
        high_limit = FRACTION_MAX if kind == "fraction_of_standard" else MG_PER_M2_DAY_MAX
        low = r.number(d["low"], f"{path}.dose.low", FRACTION_MIN, high_limit)
        high = r.number(d["high"], f"{path}.dose.high", FRACTION_MIN, high_limit)
        if low > high:
            raise r.fail(f"{path}.dose", f"low {low:g} is above high {high:g}")
        if kind == "mg_per_m2_day" and low <= 0:
            raise r.fail(f"{path}.dose.low", "an absolute dose must be > 0")
        dose = DoseSpec(kind=kind, low=low, high=high)
    max_per_kg = None
    if data.get("max_mg_per_kg_day") is not None:
        max_per_kg = r.number(
            data["max_mg_per_kg_day"], f"{path}.max_mg_per_kg_day", 1e-6, MAX_MG_PER_KG_DAY_MAX
        )
        if dose is None or dose.kind != "fraction_of_standard":
            raise r.fail(
                f"{path}.max_mg_per_kg_day", "a cap needs a dose given as a fraction of the standard"
            )
    alternative = r.boolean(data["alternative_recommended"], f"{path}.alternative_recommended")
    strength = None
    if data["strength"] is not None:
        strength = r.choice(data["strength"], f"{path}.strength", STRENGTHS)
    verified = r.boolean(data["verified"], f"{path}.verified")
    return RecommendationRow(
        id=str(r.text(data["id"], f"{path}.id")),
        phenotypes=MappingProxyType(phenotypes),
        population=r.choice(data.get("population", "any"), f"{path}.population", ("any", *POPULATIONS)),
        indication=r.choice(data.get("indication", "any"), f"{path}.indication", ("any", *INDICATIONS)),
        dose=dose,
        frequency=r.text(data.get("frequency"), f"{path}.frequency", optional=True),
        max_mg_per_kg_day=max_per_kg,
        alternative_recommended=alternative,
        strength=strength,
        text=str(r.text(data["text"], f"{path}.text")),
        condition=r.text(data.get("condition"), f"{path}.condition", optional=True),
        source=str(r.text(data["source"], f"{path}.source")),
        verified=verified,
        verification=str(r.text(data["verification"], f"{path}.verification")),
    )


def _check_rows(
    r: _Reader,
    path: str,
    rows: tuple[RecommendationRow, ...],
    drug_genes: tuple[str, ...],
    genes: Mapping[str, GeneTable],
) -> None:
    """Row ids unique, no duplicate row, complete population/indication splits, no missing phenotype row."""
    ids: set[str] = set()
    groups: dict[tuple, list[RecommendationRow]] = {}
    for row in rows:
        if row.id in ids:
            raise r.fail(f"{path}.recommendations", f"duplicate row id {row.id!r}")
        ids.add(row.id)
        key = tuple(sorted(row.phenotypes.items()))
        groups.setdefault(key, []).append(row)
    for key, group in groups.items():
        label = ", ".join(f"{g} {p}" for g, p in key)
        combos = [(row.population, row.indication) for row in group]
        if len(set(combos)) != len(combos):
            raise r.fail(
                f"{path}.recommendations", f"two rows for {label} with the same population/indication"
            )
        populations = {row.population for row in group}
        indications = {row.indication for row in group}
        for values, name, full in (
            (populations, "population", set(POPULATIONS)),
            (indications, "indication", set(INDICATIONS)),
        ):
            if values != {"any"} and values != full:
                raise r.fail(
                    f"{path}.recommendations",
                    f"rows for {label} must cover {name} 'any' or all of {sorted(full)}, "
                    f"got {sorted(values)}",
                )
        if len(combos) != len(populations) * len(indications):
            raise r.fail(
                f"{path}.recommendations", f"rows for {label} do not cover every population/indication"
            )
    for gene in drug_genes:
        for pheno in genes[gene].phenotypes:
            if ((gene, pheno),) not in groups:
                raise r.fail(f"{path}.recommendations", f"missing row for {gene} {pheno}")


def _read_directory(directory: Traversable) -> dict[str, Guideline]:
    guidelines: dict[str, Guideline] = {}
    files = sorted(
        (item for item in directory.iterdir() if item.name.endswith(".json")), key=lambda t: t.name
    )
    if not files:
        raise GuidelineTableError(str(directory), "no .json guideline table found")
    gene_owner: dict[str, str] = {}
    drug_owner: dict[str, str] = {}
    for item in files:
        try:
            document = json.loads(item.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise GuidelineTableError(f"{item.name}:line {exc.lineno}", f"invalid JSON: {exc.msg}") from exc
        guideline = _parse_guideline(document, item.name)
        table_id = guideline.source.table_id
        if table_id != item.name[: -len(".json")]:
            raise GuidelineTableError(
                f"{item.name}:id", f"{table_id!r} must equal the file name without .json"
            )
        for gene in guideline.genes:
            if gene in gene_owner:
                raise GuidelineTableError(
                    f"{item.name}:genes.{gene}", f"gene also defined in {gene_owner[gene]}"
                )
            gene_owner[gene] = item.name
        for drug in guideline.drugs:
            if drug in drug_owner:
                raise GuidelineTableError(
                    f"{item.name}:drugs.{drug}", f"drug also defined in {drug_owner[drug]}"
                )
            drug_owner[drug] = item.name
        guidelines[table_id] = guideline
    return guidelines


def load_guidelines(*, directory: str | os.PathLike[str] | None = None) -> dict[str, Guideline]:
    """Load and validate every guideline table.

    Parameters
    ----------
    directory : path, optional
        Directory of ``*.json`` tables; default: the tables shipped in ``mipd_engine/pgx/tables``.

    Returns
    -------
    dict of str to Guideline
        Keyed by table id (file name without ``.json``), e.g. ``"cpic_thiopurines"``.

    Raises
    ------
    GuidelineTableError
        A table is malformed or inconsistent (unknown or missing key, fraction outside [0, 2], phenotype
        without a recommendation row, gene or drug defined in two tables...); ``path`` is
        ``<file>:<field path>``.
    """
    if directory is None:
        return dict(_default_guidelines())
    return _read_directory(Path(directory))


@functools.cache
def _default_guidelines() -> Mapping[str, Guideline]:
    return MappingProxyType(_read_directory(resources.files(__package__) / "tables"))


# -- phenotype from diplotype ------------------------------------------------------------------------------


def _fold(text: str) -> str:
    text = " ".join(text.replace("_", " ").split()).casefold()
    return text.replace("metaboliser", "metabolizer")


def _pair_key(a: str, b: str) -> tuple[str, str]:
    first, second = sorted((a, b))
    return (first, second)


def _allele_sort_key(allele: str) -> tuple[int, str]:
    match = _ALLELE_RE.match(allele)
    return (int(match.group(1)), match.group(2)) if match else (10**9, allele)


def _normalise_allele(token: str, gene: str) -> str | None:
    token = token.strip().upper()
    if token.startswith(gene):
        token = token[len(gene) :]
    return token if _ALLELE_RE.match(token) else None


def _gene_index(guidelines: Mapping[str, Guideline]) -> dict[str, tuple[Guideline, GeneTable]]:
    return {gene: (g, table) for g in guidelines.values() for gene, table in g.genes.items()}


def phenotype(*, gene: str, diplotype: str) -> PhenotypeCall:
    """Phenotype of a diplotype from the CPIC allele-function table of the gene.

    The diplotype is normalised first (whitespace and case ignored, an optional gene prefix such as
    ``CYP2C19*1`` removed, alleles sorted so that ``"*3/*1"`` reads ``"*1/*3"``). Each allele's function is
    looked up, then the pair of functions; an allele or a pair of functions absent from the table gives
    ``phenotype=None`` with a reason starting ``"no recommendation from genotype"``: nothing is guessed.

    Parameters
    ----------
    gene : str
        Gene symbol (``"TPMT"``, ``"NUDT15"``, ``"CYP3A5"``, ``"CYP2C19"``), any case.
    diplotype : str
        Star-allele diplotype, ``"*1/*3A"``.

    Returns
    -------
    PhenotypeCall
        The phenotype as written in the guideline, or None with the reason.

    Raises
    ------
    mipd_engine.errors.InvalidInputError
        ``gene`` or ``diplotype`` is not a string.
    """
    if not isinstance(gene, str):
        raise InvalidInputError("gene", f"must be a string, got {type(gene).__name__}")
    if not isinstance(diplotype, str):
        raise InvalidInputError("diplotype", f"must be a string, got {type(diplotype).__name__}")
    gene_key = gene.strip().upper()
    index = _gene_index(_default_guidelines())

    def call(
        reason: str,
        *,
        norm: str | None = None,
        fns: tuple[str, ...] = (),
        pheno: str | None = None,
        source: GuidelineSource | None = None,
    ) -> PhenotypeCall:
        return PhenotypeCall(gene_key, diplotype, norm, fns, pheno, reason, source)

    if gene_key not in index:
        return call(
            f"{NO_RECOMMENDATION}: gene {gene.strip()!r} is not in any CPIC table loaded "
            f"(genes: {', '.join(sorted(index))})"
        )
    guideline, table = index[gene_key]
    source = guideline.source
    compact = "".join(diplotype.split())
    parts = compact.split("/")
    alleles = [_normalise_allele(p, gene_key) for p in parts]
    if len(parts) != 2 or any(a is None for a in alleles):
        return call(
            f"{NO_RECOMMENDATION}: diplotype {diplotype!r} is not of the form '*A/*B' (two star alleles)",
            source=source,
        )
    first, second = sorted((str(a) for a in alleles), key=_allele_sort_key)
    norm = f"{first}/{second}"
    for allele in (first, second):
        if allele not in table.alleles:
            return call(
                f"{NO_RECOMMENDATION}: allele {allele} is not in CPIC table {source.table_id} "
                f"({gene_key} alleles: {', '.join(sorted(table.alleles, key=_allele_sort_key))})",
                norm=norm,
                source=source,
            )
    fns = (table.alleles[first], table.alleles[second])
    pheno = table.function_pairs.get(_pair_key(*fns))
    if pheno is None:
        return call(
            f"{NO_RECOMMENDATION}: CPIC table {source.table_id} assigns no {gene_key} phenotype to "
            f"{norm} ({fns[0]} + {fns[1]})",
            norm=norm,
            fns=fns,
            source=source,
        )
    return call(
        f"{gene_key} {norm}: {fns[0]} + {fns[1]} -> {pheno} (CPIC table {source.table_id})",
        norm=norm,
        fns=fns,
        pheno=pheno,
        source=source,
    )


# -- starting dose -----------------------------------------------------------------------------------------


def hybrid_basis(*, n_levels: int) -> Basis:
    """Which half of the hybrid strategy produces the dose recommendation.

    Parameters
    ----------
    n_levels : int
        Number of measured drug levels available for the patient (>= 0).

    Returns
    -------
    {"genotype", "bayesian"}
        ``"genotype"`` (fixed genotype-based starting dose, :func:`starting_dose`) while no level exists,
        ``"bayesian"`` (MAP dosing from the levels) from the first level on.
    """
    if isinstance(n_levels, bool) or not isinstance(n_levels, numbers.Integral) or n_levels < 0:
        raise InvalidInputError("n_levels", f"must be an integer >= 0, got {n_levels!r}")
    return BASIS_BAYESIAN if n_levels > 0 else BASIS_GENOTYPE


def _positive(name: str, value: Any, high: float, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise InvalidInputError(name, f"must be a finite number, got {value!r}")
    value = float(value)
    if not 0 < value <= high:
        raise InvalidInputError(name, f"{value:g} is outside (0, {high:g}]")
    return value


def _canonical_phenotype(table: GeneTable, value: str) -> tuple[str, str | None] | None:
    folded = _fold(value)
    for pheno in table.phenotypes:
        if _fold(pheno) == folded:
            return pheno, None
    for alias, pheno in table.phenotype_aliases.items():
        if _fold(alias) == folded:
            return pheno, table.alias_warnings.get(alias)
    return None


def _pct(low: float, high: float) -> str:
    a, b = f"{100 * low:.4g}%", f"{100 * high:.4g}%"
    return a if a == b else f"{a}-{b}"


def _equivalent(rows: list[RecommendationRow]) -> bool:
    first = rows[0]
    return all(
        (r.dose, r.frequency, r.max_mg_per_kg_day, r.alternative_recommended, r.strength)
        == (
            first.dose,
            first.frequency,
            first.max_mg_per_kg_day,
            first.alternative_recommended,
            first.strength,
        )
        for r in rows[1:]
    )


def _narrow(
    rows: list[RecommendationRow], population: str | None, indication: str | None
) -> tuple[list[RecommendationRow], str | None]:
    """Rows matching the population and indication; the missing argument's name if it is needed."""
    if population is not None:
        rows = [r for r in rows if r.population in ("any", population)]
    if indication is not None:
        rows = [r for r in rows if r.indication in ("any", indication)]
    if len(rows) <= 1 or _equivalent(rows):
        return rows[:1], None
    needs = [
        name
        for name, given in (("population", population), ("indication", indication))
        if given is None and len({getattr(r, name) for r in rows}) > 1
    ]
    # Validation guarantees one row per population/indication, so something is always missing here.
    return rows, " and ".join(needs) or "population and indication"


def starting_dose(
    *,
    drug: str,
    phenotypes: Mapping[str, str],
    standard_daily_dose_mg: float,
    weight_kg: float | None = None,
    body_surface_area_m2: float | None = None,
    indication: Literal["malignant", "nonmalignant"] | None = None,
    population: Literal["adult", "pediatric"] | None = None,
) -> GenotypeDoseRecommendation:
    """Genotype-based starting dose from the CPIC tables (the ``"genotype"`` half of the hybrid strategy).

    The dose is the guideline's fraction range times ``standard_daily_dose_mg`` (the starting dose the
    patient would get without genotype information), or the guideline's absolute dose in mg/m²/day times
    ``body_surface_area_m2``. When the row states a maximum in mg/kg/day (tacrolimus: 0.3) and ``weight_kg``
    is given, the range is lowered to it and ``capped`` is set.

    Two genes for one drug (TPMT and NUDT15 for thiopurines): a combined row of the table for the phenotype
    pair applies as such (thiopurines: both intermediate or possible intermediate, 20-50%; a poor metabolizer
    with a non-normal other gene, the poor-metabolizer gene's recommendation, TPMT's when both are poor; an
    indeterminate gene, the other gene's recommendation with CPIC's advice to monitor closely, stated in the
    warnings; each taken from the CPIC recommendation database). Without a combined row, when one gene is a
    normal metabolizer the other gene's row applies; any other combination gives no number (an alternative
    agent is still reported when a poor metabolizer row recommends one for the given indication) and a warning
    saying CPIC gives none. The code never combines two rows itself.

    A drug, gene phenotype or combination that is not in a table gives ``dose_range_mg=None`` and a message
    starting ``"no recommendation from genotype"``. Nothing is guessed.

    Parameters
    ----------
    drug : str
        Drug (INN, any case): ``"mercaptopurine"``, ``"azathioprine"``, ``"thioguanine"``, ``"tacrolimus"``,
        ``"voriconazole"``.
    phenotypes : Mapping[str, str]
        Gene -> phenotype, e.g. from :func:`phenotype` or written directly (``"Intermediate Metabolizer"``,
        any case, British "metaboliser" or the abbreviations of the table accepted). Genes the drug's table
        does not use are ignored with a warning.
    standard_daily_dose_mg : float
        Standard starting dose for this patient without genotype information, mg/day (> 0).
    weight_kg : float, optional
        Body weight, kg (0-400], for per-kg maxima (tacrolimus 0.3 mg/kg/day).
    body_surface_area_m2 : float, optional
        Body surface area, m² (0-5], for doses the guideline gives in mg/m²/day.
    indication : {"malignant", "nonmalignant"}, optional
        Needed when the guideline's recommendation depends on it (thiopurine poor metabolizers).
    population : {"adult", "pediatric"}, optional
        Needed when the guideline's recommendation depends on it (voriconazole rapid metabolizers).

    Returns
    -------
    GenotypeDoseRecommendation
        With ``basis="genotype"``.

    Raises
    ------
    mipd_engine.errors.InvalidInputError
        Impossible numbers, or arguments of the wrong type or value (path = argument name).
    """
    if not isinstance(drug, str):
        raise InvalidInputError("drug", f"must be a string, got {type(drug).__name__}")
    if not isinstance(phenotypes, Mapping):
        raise InvalidInputError("phenotypes", "must be a mapping gene -> phenotype")
    for gene, pheno in phenotypes.items():
        if not isinstance(gene, str) or not isinstance(pheno, str):
            raise InvalidInputError(f"phenotypes.{gene}", "genes and phenotypes must be strings")
    standard = cast(float, _positive("standard_daily_dose_mg", standard_daily_dose_mg, math.inf))
    weight = _positive("weight_kg", weight_kg, WEIGHT_MAX_KG, optional=True)
    bsa = _positive("body_surface_area_m2", body_surface_area_m2, BSA_MAX_M2, optional=True)
    if indication is not None and indication not in INDICATIONS:
        raise InvalidInputError("indication", f"{indication!r} is not one of {list(INDICATIONS)}")
    if population is not None and population not in POPULATIONS:
        raise InvalidInputError("population", f"{population!r} is not one of {list(POPULATIONS)}")

    drug_key = drug.strip().lower()
    guidelines = _default_guidelines()
    found = [(g, g.drugs[drug_key]) for g in guidelines.values() if drug_key in g.drugs]
    if not found:
        drugs = sorted(d for g in guidelines.values() for d in g.drugs)
        return _no_recommendation(
            drug_key,
            {},
            f"{NO_RECOMMENDATION}: drug {drug.strip()!r} is not in any CPIC table loaded "
            f"(drugs: {', '.join(drugs)})",
            [],
            None,
        )
    guideline, table = found[0]
    warnings: list[str] = list(guideline.advisories)
    given: dict[str, str] = {}
    for gene, value in phenotypes.items():
        gene_key = gene.strip().upper()
        if gene_key in given:
            raise InvalidInputError(f"phenotypes.{gene}", f"{gene_key} given twice")
        given[gene_key] = value
    used: dict[str, str] = {}
    for gene_key, value in sorted(given.items(), key=lambda kv: _gene_order(table, kv[0])):
        if gene_key not in table.genes:
            warnings.append(f"{gene_key} is not used by the CPIC table for {drug_key}; ignored.")
            continue
        canonical = _canonical_phenotype(guideline.genes[gene_key], value)
        if canonical is None:
            return _no_recommendation(
                drug_key,
                used,
                f"{NO_RECOMMENDATION}: phenotype {value.strip()!r} for {gene_key} is not in CPIC table "
                f"{guideline.source.table_id} ({gene_key} phenotypes: "
                f"{', '.join(guideline.genes[gene_key].phenotypes)})",
                warnings,
                guideline.source,
            )
        used[gene_key], alias_warning = canonical
        if alias_warning:
            warnings.append(alias_warning)
    if not used:
        return _no_recommendation(
            drug_key,
            used,
            f"{NO_RECOMMENDATION}: no phenotype given for {', '.join(table.genes)} (genes of the CPIC table "
            f"for {drug_key})",
            warnings,
            guideline.source,
        )
    for gene in table.genes:
        if gene not in used:
            warnings.append(
                f"{gene} phenotype not given: the recommendation uses {', '.join(used)} only; CPIC's "
                f"recommendation for {drug_key} also depends on {gene}."
            )

    rows, combination_message = _rows_for(table, used, indication)
    if not rows:
        return _no_recommendation(drug_key, used, str(combination_message), warnings, guideline.source)
    if combination_message:
        warnings.append(combination_message)
    rows, needs = _narrow(rows, population, indication)
    if not rows:  # cannot happen with a validated table; never fall through to a guess
        return _no_recommendation(
            drug_key, used, f"{NO_RECOMMENDATION}: no CPIC row for {_label(used)}", warnings, guideline.source
        )
    if needs:
        texts = "; ".join(f"[{r.population}/{r.indication}] {r.text}" for r in rows)
        return _no_recommendation(
            drug_key,
            used,
            f"{NO_RECOMMENDATION}: the CPIC recommendation for {_label(used)} depends on the {needs}; "
            f"give {needs}. CPIC rows: {texts}",
            warnings,
            guideline.source,
        )
    row = rows[0]
    return _recommend(drug_key, used, row, standard, weight, bsa, warnings, guideline.source)


def _gene_order(table: DrugTable, gene: str) -> tuple[int, str]:
    return (table.genes.index(gene), gene) if gene in table.genes else (len(table.genes), gene)


def _label(used: Mapping[str, str]) -> str:
    return " + ".join(f"{gene} {pheno}" for gene, pheno in used.items())


def _single_rows(table: DrugTable, gene: str, pheno: str) -> list[RecommendationRow]:
    return [r for r in table.rows if dict(r.phenotypes) == {gene: pheno}]


def _rows_for(
    table: DrugTable, used: Mapping[str, str], indication: str | None
) -> tuple[list[RecommendationRow], str | None]:
    """Rows applying to the phenotypes given, with a note on how genes were combined (or why not)."""
    # A row for exactly these phenotypes (single gene, or a combined row of the table) applies as such.
    exact = [r for r in table.rows if dict(r.phenotypes) == dict(used)]
    if exact:
        return exact, None
    # Several genes and no combined row: the genes at their reference phenotype leave the others' rows.
    abnormal = [g for g in used if used[g] != table.reference_phenotypes.get(g)]
    if not abnormal:
        gene = next(iter(used))
        return _single_rows(table, gene, used[gene]), None
    if len(abnormal) == 1:
        gene = abnormal[0]
        others = ", ".join(f"{g} {used[g]}" for g in used if g != gene)
        return (
            _single_rows(table, gene, used[gene]),
            f"{gene} {used[gene]} row applied ({others}: no change from that row).",
        )
    # Two or more non-reference genes without a combined row: only an alternative agent carries over.
    singles = {g: _single_rows(table, g, used[g]) for g in abnormal}
    if indication is not None:
        singles = {g: [r for r in rows if r.indication in ("any", indication)] for g, rows in singles.items()}
    for gene, rows in singles.items():
        if rows and all(r.alternative_recommended and r.dose is None for r in rows):
            return (
                rows,
                f"CPIC gives no combined recommendation for {_label(used)}; the {gene} {used[gene]} row "
                "recommends an alternative agent and is reported. No dose is given.",
            )
    texts = "; ".join(
        f"{g} {used[g]}" + "".join(f" [{r.indication}] {r.text}" for r in rows) for g, rows in singles.items()
    )
    return [], (
        f"{NO_RECOMMENDATION}: CPIC gives no number for the combination {_label(used)}"
        f"{'' if indication is None else f' ({indication})'}. Single-gene rows: {texts}"
    )


def _no_recommendation(
    drug: str,
    used: Mapping[str, str],
    message: str,
    warnings: list[str],
    source: GuidelineSource | None,
) -> GenotypeDoseRecommendation:
    return GenotypeDoseRecommendation(
        drug=drug,
        genes=tuple(used),
        phenotypes=MappingProxyType(dict(used)),
        basis=BASIS_GENOTYPE,
        dose_range_mg=None,
        fraction_of_standard=None,
        capped=False,
        frequency=None,
        alternative_recommended=False,
        strength=None,
        guideline_text="",
        message=message,
        warnings=tuple(warnings),
        source=source,
        row_ids=(),
    )


def _recommend(
    drug: str,
    used: Mapping[str, str],
    row: RecommendationRow,
    standard: float,
    weight: float | None,
    bsa: float | None,
    warnings: list[str],
    source: GuidelineSource,
) -> GenotypeDoseRecommendation:
    label = _label(used)
    if row.condition:
        warnings.append(row.condition)
    if not row.verified:
        warnings.append(
            f"Row {row.id} could not be verified against the guideline text when the table was built: "
            f"{row.verification}"
        )
    if row.strength is None:
        warnings.append(f"No classification of strength recorded for row {row.id}.")
    dose_range: tuple[float, float] | None = None
    fraction: tuple[float, float] | None = None
    capped = False
    dose = row.dose
    if dose is None:
        if row.alternative_recommended:
            message = f"CPIC ({label}): alternative agent recommended; no genotype-based dose."
        else:
            message = f"CPIC ({label}): no genotype-based dose in the guideline; see the guideline text."
    elif dose.kind == "fraction_of_standard":
        fraction = (dose.low, dose.high)
        low, high = dose.low * standard, dose.high * standard
        message = f"CPIC ({label}): {_pct(dose.low, dose.high)} of the standard starting dose"
        if row.max_mg_per_kg_day is not None:
            if weight is None:
                warnings.append(
                    f"CPIC maximum {row.max_mg_per_kg_day:g} mg/kg/day not applied: weight_kg not given."
                )
            else:
                cap = row.max_mg_per_kg_day * weight
                if high > cap:
                    capped = True
                    low, high = min(low, cap), cap
                    warnings.append(
                        f"Capped at the CPIC maximum {row.max_mg_per_kg_day:g} mg/kg/day x {weight:g} kg = "
                        f"{cap:g} mg/day."
                    )
                message += f", at most {row.max_mg_per_kg_day:g} mg/kg/day"
        dose_range = (low, high)
        message += "."
    else:  # mg_per_m2_day
        per_m2 = f"{dose.low:g}" if dose.low == dose.high else f"{dose.low:g}-{dose.high:g}"
        if bsa is None:
            message = (
                f"CPIC ({label}): {per_m2} mg/m2/day; no dose in mg computed: body_surface_area_m2 not given."
            )
        else:
            dose_range = (dose.low * bsa, dose.high * bsa)
            message = f"CPIC ({label}): {per_m2} mg/m2/day x {bsa:g} m2 (absolute dose, not a fraction)."
            if dose_range[1] > standard:
                warnings.append(
                    f"The genotype-based dose ({dose_range[1]:g} mg) exceeds the standard daily dose given "
                    f"({standard:g} mg): check the standard dose."
                )
    if row.frequency:
        message = message.rstrip(".") + f"; {row.frequency}."
    if row.alternative_recommended and dose is not None:
        warnings.append("CPIC also recommends considering an alternative agent.")
    return GenotypeDoseRecommendation(
        drug=drug,
        genes=tuple(used),
        phenotypes=MappingProxyType(dict(used)),
        basis=BASIS_GENOTYPE,
        dose_range_mg=dose_range,
        fraction_of_standard=fraction,
        capped=capped,
        frequency=row.frequency,
        alternative_recommended=row.alternative_recommended,
        strength=row.strength,
        guideline_text=row.text,
        message=message,
        warnings=tuple(warnings),
        source=source,
        row_ids=(row.id,),
    )
