"""Pharmacogenomics: CPIC genotype-to-phenotype and phenotype-to-starting-dose rules as versioned data tables.

Pure Python; never imports Django. See :mod:`mipd_engine.pgx.rules` for the hybrid strategy (genotype-based
starting dose first, Bayesian dosing once drug levels exist) and the tables in ``mipd_engine/pgx/tables``.
"""

from __future__ import annotations

from .rules import (
    BASIS_BAYESIAN,
    BASIS_GENOTYPE,
    NO_RECOMMENDATION,
    Basis,
    DoseSpec,
    DrugTable,
    GeneTable,
    GenotypeDoseRecommendation,
    Guideline,
    GuidelineSource,
    GuidelineTableError,
    PhenotypeCall,
    RecommendationRow,
    hybrid_basis,
    load_guidelines,
    phenotype,
    starting_dose,
)

__all__ = [
    "BASIS_BAYESIAN",
    "BASIS_GENOTYPE",
    "NO_RECOMMENDATION",
    "Basis",
    "DoseSpec",
    "DrugTable",
    "GeneTable",
    "GenotypeDoseRecommendation",
    "Guideline",
    "GuidelineSource",
    "GuidelineTableError",
    "PhenotypeCall",
    "RecommendationRow",
    "hybrid_basis",
    "load_guidelines",
    "phenotype",
    "starting_dose",
]
