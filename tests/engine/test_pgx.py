"""Tests of mipd_engine.pgx: CPIC genotype-to-phenotype and phenotype-to-starting-dose tables.

Every expected number below is typed here from the guideline (CPIC thiopurines 2018 update with the CPIC
website updates of 2020 and 2024, CPIC CYP3A5/tacrolimus 2015, CPIC CYP2C19/voriconazole 2016-17); none is
read back from the JSON tables. No Django.

Thiopurine single-gene rows: every number and classification was checked against the CPIC recommendation
database as exported in PharmGKB/PharmCAT src/main/resources/org/pharmgkb/pharmcat/reporter/drugs.json (commit
d604652f819a6d192a9fd844563c1e920926ae6a, "TPMT, NUDT15 and Thiopurines", PMID 30447069), in the row where the
other gene is "Normal Metabolizer"; the comments quote that row ("PharmCAT drugs.json" below). The combined
TPMT/NUDT15 rows (a poor metabolizer with a non-normal other gene; an indeterminate gene with any other
phenotype) were read in the same file and commit, in the row of that phenotype pair.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from mipd_engine.errors import InvalidInputError
from mipd_engine.pgx import (
    BASIS_BAYESIAN,
    BASIS_GENOTYPE,
    NO_RECOMMENDATION,
    GenotypeDoseRecommendation,
    GuidelineTableError,
    hybrid_basis,
    load_guidelines,
    phenotype,
    rules,
    starting_dose,
)

NM = "Normal Metabolizer"
IM = "Intermediate Metabolizer"
PIM = "Possible Intermediate Metabolizer"
PM = "Poor Metabolizer"
IND = "Indeterminate"
EM = "Extensive Metabolizer"
RM = "Rapid Metabolizer"
UM = "Ultrarapid Metabolizer"

STANDARD_MG = 100.0
BSA_M2 = 1.5
REL = 1e-12

TABLES = Path(str(resources.files("mipd_engine.pgx") / "tables"))


def approx(value: float) -> Any:
    return pytest.approx(value, rel=REL)


def assert_range(rec: GenotypeDoseRecommendation, low_mg: float, high_mg: float) -> None:
    assert rec.dose_range_mg is not None, rec.message
    assert rec.dose_range_mg == (approx(low_mg), approx(high_mg))


# -- guideline sources ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table_id", "doi", "pmid", "year", "journal_ref", "first_author"),
    [
        ("cpic_thiopurines", "10.1002/cpt.1304", "30447069", 2019, "2019;105(5):1095-1105", "Relling MV"),
        ("cpic_tacrolimus_cyp3a5", "10.1002/cpt.113", "25801146", 2015, "2015;98(1):19-24", "Birdwell KA"),
        ("cpic_voriconazole_cyp2c19", "10.1002/cpt.583", "27981572", 2017, "2017;102(1):45-51", "Moriyama B"),
    ],
)
def test_tables_carry_guideline_citation_doi_and_version(
    table_id: str, doi: str, pmid: str, year: int, journal_ref: str, first_author: str
) -> None:
    guideline = load_guidelines()[table_id]
    source = guideline.source
    assert source.table_id == table_id
    assert source.doi == doi
    assert source.pmid == pmid
    assert source.year == year
    assert journal_ref in source.citation
    assert source.citation.startswith(first_author)
    assert "Clin Pharmacol Ther" in source.citation
    assert source.version and source.guideline and source.url.startswith("https://cpicpgx.org/")
    assert guideline.sources_checked and guideline.notes


def test_load_guidelines_returns_the_three_shipped_tables() -> None:
    guidelines = load_guidelines()
    assert set(guidelines) == {"cpic_thiopurines", "cpic_tacrolimus_cyp3a5", "cpic_voriconazole_cyp2c19"}
    assert set(guidelines["cpic_thiopurines"].drugs) == {"mercaptopurine", "azathioprine", "thioguanine"}
    assert set(guidelines["cpic_thiopurines"].genes) == {"TPMT", "NUDT15"}
    assert set(guidelines["cpic_tacrolimus_cyp3a5"].drugs) == {"tacrolimus"}
    assert set(guidelines["cpic_voriconazole_cyp2c19"].drugs) == {"voriconazole"}


def test_tables_are_package_data_files() -> None:
    names = {p.name for p in TABLES.iterdir()}
    assert {"cpic_thiopurines.json", "cpic_tacrolimus_cyp3a5.json", "cpic_voriconazole_cyp2c19.json"} <= names


def test_thiopurine_table_flags_the_2025_update_it_does_not_implement() -> None:
    rec = starting_dose(
        drug="azathioprine", phenotypes={"TPMT": NM, "NUDT15": NM}, standard_daily_dose_mg=150
    )
    assert any("41618934" in w and "2025 update" in w for w in rec.warnings)
    assert any("41618934" in n for n in load_guidelines()["cpic_thiopurines"].notes)


# -- thiopurines: every CPIC phenotype row ----------------------------------------------------------------

OTHER_GENE = {"TPMT": "NUDT15", "NUDT15": "TPMT"}

# (drug, gene, phenotype, indication, expected)
# expected: ("fraction", low, high, thrice_weekly, strength) | ("per_m2", mg/m2/day, strength)
#           | ("alternative", strength) | ("no_dose", text fragment)
THIOPURINE_ROWS: list[tuple[str, str, str, str | None, tuple]] = [
    # mercaptopurine, TPMT (2018 Table 2). PharmCAT drugs.json: NM "Start with normal starting dose (e.g., 75
    # mg/m2/day or 1.5 mg/kg/day)" Strong; IM and possible IM "reduced starting doses (30%-80% of normal
    # dose)" Strong; PM "For malignancy, start with drastically reduced doses (reduce daily dose by 10-fold
    # and reduce frequency to thrice weekly instead of daily ...). For non-malignant conditions, consider
    # alternative non-thiopurine immunosuppressant therapy" Strong.
    ("mercaptopurine", "TPMT", NM, None, ("fraction", 1.0, 1.0, False, "strong")),
    ("mercaptopurine", "TPMT", IM, None, ("fraction", 0.3, 0.8, False, "strong")),
    ("mercaptopurine", "TPMT", PIM, None, ("fraction", 0.3, 0.8, False, "strong")),
    ("mercaptopurine", "TPMT", PM, "malignant", ("fraction", 0.1, 0.1, True, "strong")),
    ("mercaptopurine", "TPMT", PM, "nonmalignant", ("alternative", "strong")),
    ("mercaptopurine", "TPMT", IND, None, ("no_dose", "erythrocyte activity")),
    # mercaptopurine, NUDT15 (2018 Table 3). PharmCAT drugs.json: NM as TPMT NM, Strong; IM and possible IM
    # "30%-80% of normal dose" Strong; PM "For malignancy, initiate dose at 10 mg/m2/day ... For non-malignant
    # conditions, consider alternative non-thiopurine immunosuppressant therapy" Strong.
    ("mercaptopurine", "NUDT15", NM, None, ("fraction", 1.0, 1.0, False, "strong")),
    ("mercaptopurine", "NUDT15", IM, None, ("fraction", 0.3, 0.8, False, "strong")),
    ("mercaptopurine", "NUDT15", PIM, None, ("fraction", 0.3, 0.8, False, "strong")),
    ("mercaptopurine", "NUDT15", PM, "malignant", ("per_m2", 10.0, "strong")),
    ("mercaptopurine", "NUDT15", PM, "nonmalignant", ("alternative", "strong")),
    ("mercaptopurine", "NUDT15", IND, None, ("no_dose", "monitor closely")),
    # azathioprine, TPMT. PharmCAT drugs.json: NM "normal starting dose (e.g., 2-3 mg/kg/day)" Strong; IM and
    # possible IM "reduced starting doses (30%-80% of normal dose) if normal starting dose is 2-3 mg/kg/day"
    # Strong; PM "For non-malignant conditions, consider alternative ... For malignancy, ... reduce daily dose
    # by 10-fold and dose thrice weekly instead of daily" Strong.
    ("azathioprine", "TPMT", NM, None, ("fraction", 1.0, 1.0, False, "strong")),
    ("azathioprine", "TPMT", IM, None, ("fraction", 0.3, 0.8, False, "strong")),
    ("azathioprine", "TPMT", PIM, None, ("fraction", 0.3, 0.8, False, "strong")),
    ("azathioprine", "TPMT", PM, "malignant", ("fraction", 0.1, 0.1, True, "strong")),
    ("azathioprine", "TPMT", PM, "nonmalignant", ("alternative", "strong")),
    ("azathioprine", "TPMT", IND, None, ("no_dose", "erythrocyte activity")),
    # azathioprine, NUDT15. PharmCAT drugs.json: IM and possible IM "30%-80% of normal dose" Strong; PM "For
    # non-malignant conditions, consider alternative non-thiopurine immunosuppressant therapy. For malignant
    # conditions, start with drastically reduced normal daily doses (reduce daily dose by 10-fold)" Strong (no
    # change of frequency, unlike the TPMT row).
    ("azathioprine", "NUDT15", NM, None, ("fraction", 1.0, 1.0, False, "strong")),
    ("azathioprine", "NUDT15", IM, None, ("fraction", 0.3, 0.8, False, "strong")),
    ("azathioprine", "NUDT15", PIM, None, ("fraction", 0.3, 0.8, False, "strong")),
    ("azathioprine", "NUDT15", PM, "malignant", ("fraction", 0.1, 0.1, False, "strong")),
    ("azathioprine", "NUDT15", PM, "nonmalignant", ("alternative", "strong")),
    ("azathioprine", "NUDT15", IND, None, ("no_dose", "monitor closely")),
    # thioguanine, TPMT. PharmCAT drugs.json: NM "normal starting dose (e.g., 40-60 mg/m2/day)" Strong; IM and
    # possible IM "reduced doses (50% to 80% of normal dose)" Moderate; PM "reduce daily dose by 10-fold and
    # dose thrice weekly instead of daily ... For non-malignant conditions, consider alternative" Strong.
    ("thioguanine", "TPMT", NM, None, ("fraction", 1.0, 1.0, False, "strong")),
    ("thioguanine", "TPMT", IM, None, ("fraction", 0.5, 0.8, False, "moderate")),
    ("thioguanine", "TPMT", PIM, None, ("fraction", 0.5, 0.8, False, "moderate")),
    ("thioguanine", "TPMT", PM, "malignant", ("fraction", 0.1, 0.1, True, "strong")),
    ("thioguanine", "TPMT", PM, "nonmalignant", ("alternative", "strong")),
    ("thioguanine", "TPMT", IND, None, ("no_dose", "erythrocyte activity")),
    # thioguanine, NUDT15. PharmCAT drugs.json: IM and possible IM "50% to 80% of normal dose" Moderate; PM
    # "Reduce starting doses to 25% of normal dose ... For non-malignant conditions, consider alternative"
    # Strong.
    ("thioguanine", "NUDT15", NM, None, ("fraction", 1.0, 1.0, False, "strong")),
    ("thioguanine", "NUDT15", IM, None, ("fraction", 0.5, 0.8, False, "moderate")),
    ("thioguanine", "NUDT15", PIM, None, ("fraction", 0.5, 0.8, False, "moderate")),
    ("thioguanine", "NUDT15", PM, "malignant", ("fraction", 0.25, 0.25, False, "strong")),
    ("thioguanine", "NUDT15", PM, "nonmalignant", ("alternative", "strong")),
    ("thioguanine", "NUDT15", IND, None, ("no_dose", "monitor closely")),
]


# Each row alone, and with the other gene "Normal Metabolizer" (which leaves it unchanged), except the
# indeterminate rows: with the other gene known, CPIC gives that gene's dose (indeterminate tests below).
SINGLE_GENE_CASES = [
    pytest.param(*row, other_normal, id=f"{row[0]}-{row[1]}-{row[2]}-{row[3]}-{label}")
    for other_normal, label in ((False, "gene-alone"), (True, "other-gene-normal"))
    for row in THIOPURINE_ROWS
    if not (other_normal and row[2] == IND)
]


@pytest.mark.parametrize(
    ("drug", "gene", "pheno", "indication", "expected", "other_gene_normal"), SINGLE_GENE_CASES
)
def test_thiopurine_single_gene_rows(
    drug: str, gene: str, pheno: str, indication: str | None, expected: tuple, other_gene_normal: bool
) -> None:
    phenotypes = {gene: pheno}
    if other_gene_normal:
        phenotypes[OTHER_GENE[gene]] = NM
    rec = starting_dose(
        drug=drug,
        phenotypes=phenotypes,
        standard_daily_dose_mg=STANDARD_MG,
        body_surface_area_m2=BSA_M2,
        indication=indication,  # type: ignore[arg-type]
    )
    assert rec.basis == BASIS_GENOTYPE
    assert rec.drug == drug
    assert rec.phenotypes[gene] == pheno
    assert rec.source is not None and rec.source.doi == "10.1002/cpt.1304"
    assert rec.guideline_text
    missing_gene_warned = any(f"{OTHER_GENE[gene]} phenotype not given" in w for w in rec.warnings)
    assert missing_gene_warned is not other_gene_normal
    kind = expected[0]
    if kind == "fraction":
        _, low, high, thrice_weekly, strength = expected
        assert rec.fraction_of_standard == (approx(low), approx(high))
        assert_range(rec, low * STANDARD_MG, high * STANDARD_MG)
        assert rec.alternative_recommended is False
        assert rec.strength == strength
        assert (rec.frequency is not None and "thrice weekly" in rec.frequency) is thrice_weekly
    elif kind == "per_m2":
        _, mg_per_m2, strength = expected
        assert_range(rec, mg_per_m2 * BSA_M2, mg_per_m2 * BSA_M2)
        assert rec.fraction_of_standard is None
        assert rec.strength == strength
    elif kind == "alternative":
        assert rec.dose_range_mg is None
        assert rec.alternative_recommended is True
        assert rec.strength == expected[1]
        assert "alternative nonthiopurine immunosuppressant" in rec.guideline_text
    else:
        assert rec.dose_range_mg is None
        assert rec.alternative_recommended is False
        assert expected[1] in rec.guideline_text


@pytest.mark.parametrize("drug", ["mercaptopurine", "azathioprine", "thioguanine"])
@pytest.mark.parametrize(("tpmt", "nudt15"), [(IM, IM), (IM, PIM), (PIM, IM), (PIM, PIM)])
def test_thiopurine_compound_intermediate_is_20_to_50_percent(drug: str, tpmt: str, nudt15: str) -> None:
    # CPIC website update of March 2024: TPMT and NUDT15 (possible) intermediate -> 20-50% of normal dose.
    rec = starting_dose(
        drug=drug, phenotypes={"TPMT": tpmt, "NUDT15": nudt15}, standard_daily_dose_mg=STANDARD_MG
    )
    assert rec.fraction_of_standard == (approx(0.2), approx(0.5))
    assert_range(rec, 20.0, 50.0)
    assert rec.genes == ("TPMT", "NUDT15")
    assert rec.alternative_recommended is False


def test_thiopurine_one_intermediate_gene_with_other_normal_is_30_to_80_percent() -> None:
    rec = starting_dose(
        drug="mercaptopurine", phenotypes={"TPMT": NM, "NUDT15": IM}, standard_daily_dose_mg=STANDARD_MG
    )
    assert_range(rec, 30.0, 80.0)
    assert any("NUDT15 Intermediate Metabolizer row applied" in w for w in rec.warnings)


# Malignant-indication dose of each drug's poor-metabolizer recommendation, by gene (PharmCAT drugs.json):
# TPMT PM "reduce daily dose by 10-fold and ... thrice weekly instead of daily" (all three drugs); NUDT15 PM
# mercaptopurine "initiate dose at 10 mg/m2/day", azathioprine "reduce daily dose by 10-fold" (frequency
# unchanged), thioguanine "Reduce starting doses to 25% of normal dose". All Strong.
POOR_MALIGNANT: dict[tuple[str, str], tuple] = {
    ("mercaptopurine", "TPMT"): ("fraction", 0.1, True),
    ("azathioprine", "TPMT"): ("fraction", 0.1, True),
    ("thioguanine", "TPMT"): ("fraction", 0.1, True),
    ("mercaptopurine", "NUDT15"): ("per_m2", 10.0),
    ("azathioprine", "NUDT15"): ("fraction", 0.1, False),
    ("thioguanine", "NUDT15"): ("fraction", 0.25, False),
}
THIOPURINES = ["mercaptopurine", "azathioprine", "thioguanine"]
PHENOTYPES = [NM, IM, PIM, PM, IND]
_SHORT = {NM: "NM", IM: "IM", PIM: "PossibleIM", PM: "PM", IND: "Indeterminate"}  # row-id spelling


def _thiopurine(drug: str, tpmt: str, nudt15: str, indication: str | None) -> GenotypeDoseRecommendation:
    return starting_dose(
        drug=drug,
        phenotypes={"TPMT": tpmt, "NUDT15": nudt15},
        standard_daily_dose_mg=STANDARD_MG,
        body_surface_area_m2=BSA_M2,
        indication=indication,  # type: ignore[arg-type]
    )


def _assert_poor_malignant(rec: GenotypeDoseRecommendation, drug: str, gene: str) -> None:
    expected = POOR_MALIGNANT[(drug, gene)]
    if expected[0] == "per_m2":
        assert_range(rec, expected[1] * BSA_M2, expected[1] * BSA_M2)
        assert rec.fraction_of_standard is None
        assert rec.frequency is None
    else:
        _, fraction, thrice_weekly = expected
        assert rec.fraction_of_standard == (approx(fraction), approx(fraction))
        assert_range(rec, fraction * STANDARD_MG, fraction * STANDARD_MG)
        assert (rec.frequency is not None and "thrice weekly" in rec.frequency) is thrice_weekly
    assert rec.alternative_recommended is False
    assert rec.strength == "strong"


# PharmCAT drugs.json, a poor metabolizer with the other gene intermediate, possible intermediate or poor: the
# poor-metabolizer gene's text, word for word as with the other gene normal, e.g. mercaptopurine TPMT
# Intermediate + NUDT15 Poor: "For malignancy, initiate dose at 10 mg/m2/day ... For non-malignant conditions,
# consider alternative non-thiopurine immunosuppressant therapy" (Strong); TPMT Poor + NUDT15 Poor: the TPMT
# text "reduce daily dose by 10-fold and reduce frequency to thrice weekly" (Strong).
POOR_WITH_OTHER_NOT_NORMAL = [
    # (tpmt, nudt15, gene whose recommendation applies)
    (PM, IM, "TPMT"),
    (PM, PIM, "TPMT"),
    (PM, PM, "TPMT"),
    (IM, PM, "NUDT15"),
    (PIM, PM, "NUDT15"),
]


@pytest.mark.parametrize("drug", THIOPURINES)
@pytest.mark.parametrize(("tpmt", "nudt15", "gene"), POOR_WITH_OTHER_NOT_NORMAL)
def test_thiopurine_poor_with_other_gene_not_normal_follows_the_poor_gene(
    drug: str, tpmt: str, nudt15: str, gene: str
) -> None:
    malignant = _thiopurine(drug, tpmt, nudt15, "malignant")
    _assert_poor_malignant(malignant, drug, gene)
    assert malignant.genes == ("TPMT", "NUDT15")
    assert malignant.row_ids == (f"{drug}-TPMT-{_SHORT[tpmt]}-NUDT15-{_SHORT[nudt15]}-malignant",)
    assert f"CPIC applies the {gene} poor-metabolizer recommendation" in malignant.guideline_text
    assert not any("no combined recommendation" in w for w in malignant.warnings)
    nonmalignant = _thiopurine(drug, tpmt, nudt15, "nonmalignant")
    assert nonmalignant.dose_range_mg is None
    assert nonmalignant.alternative_recommended is True
    assert nonmalignant.strength == "strong"
    assert "alternative nonthiopurine immunosuppressant" in nonmalignant.guideline_text
    assert not nonmalignant.message.startswith(NO_RECOMMENDATION)


def test_mercaptopurine_tpmt_intermediate_nudt15_poor_is_10_mg_per_m2() -> None:
    # The brief's example. PharmCAT drugs.json, mercaptopurine TPMT Intermediate + NUDT15 Poor: "For
    # malignancy, initiate dose at 10 mg/m2/day ... For non-malignant conditions, consider alternative
    # non-thiopurine immunosuppressant therapy" (Strong).
    rec = starting_dose(
        drug="mercaptopurine",
        phenotypes={"TPMT": IM, "NUDT15": PM},
        standard_daily_dose_mg=120,
        body_surface_area_m2=1.2,
        indication="malignant",
    )
    assert_range(rec, 12.0, 12.0)
    assert "10 mg/m2/day" in rec.message


def test_thiopurine_poor_metabolizer_pair_still_needs_the_indication() -> None:
    rec = starting_dose(
        drug="azathioprine", phenotypes={"TPMT": PM, "NUDT15": IM}, standard_daily_dose_mg=STANDARD_MG
    )
    assert rec.dose_range_mg is None
    assert rec.message.startswith(NO_RECOMMENDATION)
    assert "indication" in rec.message


# PharmCAT drugs.json, one gene Indeterminate: the other gene's recommendation followed by, e.g. azathioprine
# TPMT Indeterminate + NUDT15 Intermediate, "TPMT phenotype could not be assigned based on genotyping
# performed. Consider evaluating erythrocyte TPMT activity to assess TPMT phenotype. If thiopurines are
# required and TPMT status is unknown, monitor closely for toxicity." (Strong), or azathioprine TPMT Normal
# + NUDT15 Indeterminate "Based on TPMT status, start with normal starting dose (e.g., 2-3 mg/kg/day) ...
# NUDT15 status could not be determined based on genotyping. If thiopurines are required and NUDT15 status is
# unknown, monitor closely for toxicity." (Strong). Thioguanine with an intermediate or possible intermediate
# other gene: "reduced doses (50% to 80% of normal dose)" (Moderate).
INTERMEDIATE_FRACTION = {
    "mercaptopurine": (0.3, 0.8, "strong"),
    "azathioprine": (0.3, 0.8, "strong"),
    "thioguanine": (0.5, 0.8, "moderate"),
}


@pytest.mark.parametrize("drug", THIOPURINES)
@pytest.mark.parametrize(
    ("tpmt", "nudt15"), [(IND, NM), (NM, IND), (IND, IM), (IND, PIM), (IM, IND), (PIM, IND)]
)
def test_thiopurine_indeterminate_with_other_gene_known_gives_the_other_gene_dose_and_monitoring(
    drug: str, tpmt: str, nudt15: str
) -> None:
    rec = _thiopurine(drug, tpmt, nudt15, None)
    other = nudt15 if tpmt == IND else tpmt
    indeterminate_gene = "TPMT" if tpmt == IND else "NUDT15"
    if other == NM:
        low, high, strength = 1.0, 1.0, "strong"
    else:
        low, high, strength = INTERMEDIATE_FRACTION[drug]
    assert rec.fraction_of_standard == (approx(low), approx(high))
    assert_range(rec, low * STANDARD_MG, high * STANDARD_MG)
    assert rec.strength == strength
    assert rec.alternative_recommended is False
    assert rec.row_ids == (f"{drug}-TPMT-{_SHORT[tpmt]}-NUDT15-{_SHORT[nudt15]}",)
    monitoring = [w for w in rec.warnings if f"{indeterminate_gene} indeterminate" in w]
    assert monitoring and all("monitor closely for toxicity" in w for w in monitoring)
    assert "monitor closely for toxicity" in rec.guideline_text
    assert (indeterminate_gene == "TPMT") is ("erythrocyte" in rec.guideline_text)


@pytest.mark.parametrize("drug", THIOPURINES)
@pytest.mark.parametrize(("tpmt", "nudt15", "gene"), [(IND, PM, "NUDT15"), (PM, IND, "TPMT")])
def test_thiopurine_indeterminate_with_other_gene_poor_gives_the_poor_gene_recommendation(
    drug: str, tpmt: str, nudt15: str, gene: str
) -> None:
    # PharmCAT drugs.json, e.g. mercaptopurine TPMT Indeterminate + NUDT15 Poor: "Based on NUDT15 status, for
    # malignancy, initiate dose at 10 mg/m2/day ... If thiopurines are required and TPMT status is unknown,
    # monitor closely for toxicity." (Strong).
    malignant = _thiopurine(drug, tpmt, nudt15, "malignant")
    _assert_poor_malignant(malignant, drug, gene)
    assert any("monitor closely for toxicity" in w for w in malignant.warnings)
    nonmalignant = _thiopurine(drug, tpmt, nudt15, "nonmalignant")
    assert nonmalignant.dose_range_mg is None
    assert nonmalignant.alternative_recommended is True
    assert any("monitor closely for toxicity" in w for w in nonmalignant.warnings)


@pytest.mark.parametrize("drug", THIOPURINES)
def test_thiopurine_both_indeterminate_gives_no_number(drug: str) -> None:
    # PharmCAT drugs.json, TPMT Indeterminate + NUDT15 Indeterminate: "Neither TPMT or NUDT15 phenotype could
    # be assigned based on genotyping performed. Consider evaluating TPMT erythrocyte activity to assess TPMT
    # phenotype. If thiopurines are required and either TPMT or NUDT15 status is unknown, monitor closely for
    # toxicity." (Strong) -- no dose.
    rec = _thiopurine(drug, IND, IND, "malignant")
    assert rec.dose_range_mg is None
    assert rec.fraction_of_standard is None
    assert rec.alternative_recommended is False
    assert rec.row_ids == (f"{drug}-TPMT-Indeterminate-NUDT15-Indeterminate",)
    assert "no genotype-based dose" in rec.message
    assert "monitor closely for toxicity" in rec.guideline_text


@pytest.mark.parametrize("drug", THIOPURINES)
@pytest.mark.parametrize("indication", ["malignant", "nonmalignant"])
def test_every_thiopurine_phenotype_pair_has_a_cpic_row(drug: str, indication: str) -> None:
    # CPIC's database has a row for every TPMT/NUDT15 phenotype pair; none falls to the no-number fallback.
    for tpmt in PHENOTYPES:
        for nudt15 in PHENOTYPES:
            rec = _thiopurine(drug, tpmt, nudt15, indication)
            assert len(rec.row_ids) == 1, (tpmt, nudt15, rec.message)
            assert not any("no combined recommendation" in w for w in rec.warnings), (tpmt, nudt15)


def _table_without_combined_database_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    document = json.loads((TABLES / "cpic_thiopurines.json").read_text(encoding="utf-8"))
    for drug in document["drugs"].values():
        drug["recommendations"] = [
            r for r in drug["recommendations"] if not r["source"].startswith("CPIC recommendation database")
        ]
    (tmp_path / "cpic_thiopurines.json").write_text(json.dumps(document), encoding="utf-8")
    monkeypatch.setattr(rules, "_default_guidelines", lambda: load_guidelines(directory=tmp_path))


@pytest.mark.parametrize(("tpmt", "nudt15"), [(PM, IM), (IM, PM), (PM, PM), (PM, PIM)])
def test_combination_without_a_row_still_gives_no_number(
    tpmt: str, nudt15: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The conservative fallback, on a copy of the table without the combined rows read from CPIC's database:
    # the engine never combines two single-gene rows itself.
    _table_without_combined_database_rows(tmp_path, monkeypatch)
    malignant = _thiopurine("mercaptopurine", tpmt, nudt15, "malignant")
    assert malignant.dose_range_mg is None
    assert malignant.message.startswith(NO_RECOMMENDATION)
    assert "CPIC gives no number for the combination" in malignant.message
    nonmalignant = _thiopurine("mercaptopurine", tpmt, nudt15, "nonmalignant")
    assert nonmalignant.dose_range_mg is None
    assert nonmalignant.alternative_recommended is True
    assert any("no combined recommendation" in w for w in nonmalignant.warnings)


@pytest.mark.parametrize(("tpmt", "nudt15"), [(IND, IM), (IM, IND), (IND, IND), (IND, PM)])
def test_indeterminate_combination_without_a_row_still_gives_no_number(
    tpmt: str, nudt15: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _table_without_combined_database_rows(tmp_path, monkeypatch)
    rec = _thiopurine("azathioprine", tpmt, nudt15, "malignant")
    assert rec.dose_range_mg is None
    assert rec.message.startswith(NO_RECOMMENDATION)


def test_thiopurine_poor_metabolizer_needs_the_indication() -> None:
    rec = starting_dose(
        drug="mercaptopurine", phenotypes={"TPMT": PM, "NUDT15": NM}, standard_daily_dose_mg=75
    )
    assert rec.dose_range_mg is None
    assert rec.message.startswith(NO_RECOMMENDATION)
    assert "indication" in rec.message


def test_thiopurine_mg_per_m2_row_without_bsa_gives_no_mg() -> None:
    rec = starting_dose(
        drug="mercaptopurine", phenotypes={"NUDT15": PM}, standard_daily_dose_mg=120, indication="malignant"
    )
    assert rec.dose_range_mg is None
    assert "body_surface_area_m2" in rec.message
    assert "10 mg/m2/day" in rec.message


# Rows that carried "verified": false until they were checked against PharmCAT drugs.json (commit d604652f).
FORMERLY_UNVERIFIED: list[tuple[str, dict[str, str], str | None, str]] = [
    # "For malignancy, initiate dose at 10 mg/m2/day" (TPMT NM + NUDT15 PM, Strong)
    ("mercaptopurine", {"NUDT15": PM}, "malignant", "mercaptopurine-NUDT15-PM-malignant"),
    # "reduced starting doses (30%-80% of normal dose) if normal starting dose is 2-3 mg/kg/day" (Strong)
    ("azathioprine", {"NUDT15": IM}, None, "azathioprine-NUDT15-IM"),
    ("azathioprine", {"NUDT15": PIM}, None, "azathioprine-NUDT15-PossibleIM"),
    # "For malignant conditions, ... reduce daily dose by 10-fold" (Strong)
    ("azathioprine", {"NUDT15": PM}, "malignant", "azathioprine-NUDT15-PM-malignant"),
    # "For non-malignant conditions, consider alternative non-thiopurine immunosuppressant therapy" (Strong)
    ("azathioprine", {"NUDT15": PM}, "nonmalignant", "azathioprine-NUDT15-PM-nonmalignant"),
    # "reduced doses (50% to 80% of normal dose)" (Moderate)
    ("thioguanine", {"TPMT": IM}, None, "thioguanine-TPMT-IM"),
    ("thioguanine", {"TPMT": PIM}, None, "thioguanine-TPMT-PossibleIM"),
]


@pytest.mark.parametrize(("drug", "phenotypes", "indication", "row_id"), FORMERLY_UNVERIFIED)
def test_verified_rows_carry_no_unverified_warning(
    drug: str, phenotypes: dict[str, str], indication: str | None, row_id: str
) -> None:
    rec = starting_dose(
        drug=drug,
        phenotypes={**phenotypes, OTHER_GENE[next(iter(phenotypes))]: NM},
        standard_daily_dose_mg=120,
        body_surface_area_m2=1.2,
        indication=indication,  # type: ignore[arg-type]
    )
    assert rec.row_ids == (row_id,)
    assert not any("could not be verified" in w for w in rec.warnings)


def test_mercaptopurine_nudt15_poor_malignant_is_10_mg_per_m2() -> None:
    # PharmCAT drugs.json, TPMT NM + NUDT15 PM: "For malignancy, initiate dose at 10 mg/m2/day" (Strong).
    rec = starting_dose(
        drug="mercaptopurine",
        phenotypes={"NUDT15": PM, "TPMT": NM},
        standard_daily_dose_mg=120,
        body_surface_area_m2=1.2,
        indication="malignant",
    )
    assert_range(rec, 12.0, 12.0)
    assert rec.strength == "strong"
    assert rec.frequency is None


def test_every_thiopurine_row_is_verified_and_names_its_source() -> None:
    guideline = load_guidelines()["cpic_thiopurines"]
    for drug in guideline.drugs.values():
        for row in drug.rows:
            assert row.verified, row.id
            pair = set(row.phenotypes.values())
            from_database = len(row.phenotypes) == 1 and IND not in pair
            # combined rows read in CPIC's database: a poor metabolizer or an indeterminate gene in the pair
            from_database |= len(row.phenotypes) == 2 and bool(pair & {PM, IND})
            if from_database:
                assert "PharmGKB/PharmCAT" in row.verification, row.id
                assert "d604652f819a6d192a9fd844563c1e920926ae6a" in row.verification, row.id
            if len(row.phenotypes) == 2 and bool(pair & {PM, IND}):
                assert "classification" in row.verification and row.strength is not None, row.id
    assert any("drugs.json" in s and "d604652f" in s for s in guideline.sources_checked)


def test_unverified_row_is_flagged_in_the_warnings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The mechanism for rows that could not be checked: a copy of the table with one row marked unverified.
    document = json.loads((TABLES / "cpic_thiopurines.json").read_text(encoding="utf-8"))
    rows = document["drugs"]["thioguanine"]["recommendations"]
    row = next(r for r in rows if r["id"] == "thioguanine-TPMT-IM")
    row.update(verified=False, verification="NOT VERIFIED: test copy.")
    (tmp_path / "cpic_thiopurines.json").write_text(json.dumps(document), encoding="utf-8")
    monkeypatch.setattr(rules, "_default_guidelines", lambda: load_guidelines(directory=tmp_path))
    rec = starting_dose(drug="thioguanine", phenotypes={"TPMT": IM}, standard_daily_dose_mg=STANDARD_MG)
    assert_range(rec, 50.0, 80.0)
    assert any("could not be verified" in w and "NOT VERIFIED: test copy." in w for w in rec.warnings)


def test_intermediate_row_states_the_starting_dose_condition() -> None:
    rec = starting_dose(drug="mercaptopurine", phenotypes={"TPMT": IM}, standard_daily_dose_mg=STANDARD_MG)
    assert any("75 mg/m2/day" in w and "1.5 mg/kg/day" in w for w in rec.warnings)


# -- tacrolimus (CPIC CYP3A5, 2015) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pheno", "low", "high"),
    [(EM, 1.5, 2.0), (IM, 1.5, 2.0), (PM, 1.0, 1.0)],
)
def test_tacrolimus_rows(pheno: str, low: float, high: float) -> None:
    # Standard 10 mg/day in a 100 kg patient: the 0.3 mg/kg/day maximum (30 mg/day) is not reached.
    rec = starting_dose(
        drug="tacrolimus", phenotypes={"CYP3A5": pheno}, standard_daily_dose_mg=10.0, weight_kg=100.0
    )
    assert rec.fraction_of_standard == (approx(low), approx(high))
    assert_range(rec, 10.0 * low, 10.0 * high)
    assert rec.capped is False
    assert rec.strength == "strong"
    assert rec.alternative_recommended is False
    assert rec.source is not None and rec.source.doi == "10.1002/cpt.113"
    assert "therapeutic drug monitoring" in rec.guideline_text


@pytest.mark.parametrize(
    ("standard_mg", "weight_kg", "low_mg", "high_mg", "capped"),
    [
        (14.0, 70.0, 21.0, 21.0, True),  # 21-28 mg -> cap 0.3 x 70 = 21 mg
        (10.0, 50.0, 15.0, 15.0, True),  # 15-20 mg -> cap 15 mg
        (10.0, 60.0, 15.0, 18.0, True),  # 15-20 mg -> cap 18 mg
        (5.0, 70.0, 7.5, 10.0, False),  # 7.5-10 mg, cap 21 mg not reached
        (7.0, 70.0, 10.5, 14.0, False),
    ],
)
def test_tacrolimus_expresser_dose_is_capped_at_0_3_mg_per_kg_per_day(
    standard_mg: float, weight_kg: float, low_mg: float, high_mg: float, capped: bool
) -> None:
    rec = starting_dose(
        drug="tacrolimus", phenotypes={"CYP3A5": IM}, standard_daily_dose_mg=standard_mg, weight_kg=weight_kg
    )
    assert_range(rec, low_mg, high_mg)
    assert rec.capped is capped
    assert any("Capped at the CPIC maximum 0.3 mg/kg/day" in w for w in rec.warnings) is capped
    assert rec.dose_range_mg is not None and rec.dose_range_mg[1] <= 0.3 * weight_kg * (1 + 1e-12)


def test_tacrolimus_cap_not_applied_without_weight_is_warned() -> None:
    rec = starting_dose(drug="tacrolimus", phenotypes={"CYP3A5": EM}, standard_daily_dose_mg=14.0)
    assert_range(rec, 21.0, 28.0)
    assert rec.capped is False
    assert any("0.3 mg/kg/day not applied" in w for w in rec.warnings)


def test_tacrolimus_normal_metabolizer_alias_is_the_expresser_row_with_a_warning() -> None:
    rec = starting_dose(drug="tacrolimus", phenotypes={"CYP3A5": NM}, standard_daily_dose_mg=10.0)
    assert rec.phenotypes["CYP3A5"] == EM
    assert_range(rec, 15.0, 20.0)
    assert any("INCREASED" in w for w in rec.warnings)


# -- voriconazole (CPIC CYP2C19, 2016-17) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("population", "pheno", "fraction", "alternative", "strength"),
    [
        ("adult", UM, None, True, "moderate"),
        ("adult", RM, None, True, "moderate"),
        ("adult", NM, 1.0, False, "strong"),
        ("adult", IM, 1.0, False, "moderate"),
        ("adult", PM, None, True, "moderate"),
        ("pediatric", UM, None, True, "moderate"),
        ("pediatric", RM, 1.0, False, "moderate"),
        ("pediatric", NM, 1.0, False, "strong"),
        ("pediatric", IM, 1.0, False, "moderate"),
        ("pediatric", PM, None, True, "moderate"),
    ],
)
def test_voriconazole_rows(
    population: str, pheno: str, fraction: float | None, alternative: bool, strength: str
) -> None:
    rec = starting_dose(
        drug="voriconazole",
        phenotypes={"CYP2C19": pheno},
        standard_daily_dose_mg=400.0,
        population=population,  # type: ignore[arg-type]
    )
    assert rec.alternative_recommended is alternative
    assert rec.strength == strength
    assert rec.source is not None and rec.source.doi == "10.1002/cpt.583"
    if fraction is None:
        assert rec.dose_range_mg is None
        assert "alternative agent" in rec.guideline_text
    else:
        assert_range(rec, 400.0 * fraction, 400.0 * fraction)


def test_voriconazole_rapid_metabolizer_needs_the_population() -> None:
    rec = starting_dose(drug="voriconazole", phenotypes={"CYP2C19": RM}, standard_daily_dose_mg=400.0)
    assert rec.dose_range_mg is None
    assert rec.message.startswith(NO_RECOMMENDATION)
    assert "population" in rec.message


def test_voriconazole_normal_metabolizer_same_for_adults_and_children() -> None:
    rec = starting_dose(drug="voriconazole", phenotypes={"CYP2C19": NM}, standard_daily_dose_mg=400.0)
    assert_range(rec, 400.0, 400.0)


# -- diplotype to phenotype --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gene", "diplotype", "normalised", "expected"),
    [
        ("TPMT", "*1/*1", "*1/*1", NM),
        ("TPMT", "*3A/*1", "*1/*3A", IM),
        ("TPMT", "*1/*3C", "*1/*3C", IM),
        ("tpmt", " *3c / *3a ", "*3A/*3C", PM),
        ("TPMT", "*4/*2", "*2/*4", PM),
        ("TPMT", "TPMT*3B/TPMT*1", "*1/*3B", IM),
        ("TPMT", "*2/*5", "*2/*5", PIM),
        ("TPMT", "*1/*5", "*1/*5", IND),
        ("NUDT15", "*1/*1", "*1/*1", NM),
        ("NUDT15", "*3/*1", "*1/*3", IM),
        ("NUDT15", "*2/*1", "*1/*2", IM),
        ("NUDT15", "*9/*2", "*2/*9", PM),
        ("NUDT15", "*3/*3", "*3/*3", PM),
        ("NUDT15", "*4/*3", "*3/*4", PIM),
        ("NUDT15", "*1/*4", "*1/*4", IND),
        ("CYP3A5", "*1/*1", "*1/*1", EM),
        ("CYP3A5", "*3/*1", "*1/*3", IM),
        ("CYP3A5", "*6/*1", "*1/*6", IM),
        ("CYP3A5", "*1/*7", "*1/*7", IM),
        ("CYP3A5", "*3/*3", "*3/*3", PM),
        ("CYP3A5", "*7/*3", "*3/*7", PM),
        ("CYP3A5", "*6/*7", "*6/*7", PM),
        ("CYP3A5", "*8/*1", "*1/*8", IM),
        ("CYP2C19", "*17/*17", "*17/*17", UM),
        ("CYP2C19", "*17/*1", "*1/*17", RM),
        ("CYP2C19", "*1/*1", "*1/*1", NM),
        ("CYP2C19", "*2/*1", "*1/*2", IM),
        ("CYP2C19", "*1/*3", "*1/*3", IM),
        ("CYP2C19", "*17/*2", "*2/*17", IM),
        ("CYP2C19", "*2/*2", "*2/*2", PM),
        ("CYP2C19", "*3/*2", "*2/*3", PM),
    ],
)
def test_phenotype_from_diplotype(gene: str, diplotype: str, normalised: str, expected: str) -> None:
    call = phenotype(gene=gene, diplotype=diplotype)
    assert call.gene == gene.strip().upper()
    assert call.diplotype == normalised
    assert call.diplotype_input == diplotype
    assert call.phenotype == expected
    assert len(call.allele_functions) == 2
    assert call.source is not None
    swapped = "/".join(reversed(diplotype.split("/")))
    assert phenotype(gene=gene, diplotype=swapped).phenotype == expected


@pytest.mark.parametrize(
    ("gene", "diplotype", "fragment"),
    [
        ("TPMT", "*1/*99", "allele *99 is not in CPIC table cpic_thiopurines"),
        ("NUDT15", "*1/*20", "allele *20 is not in CPIC table"),
        ("CYP3A5", "*1/*22", "allele *22 is not in CPIC table"),
        ("CYP2C19", "*1/*9", "allele *9 is not in CPIC table"),  # decreased function: not in the 2016 table
        ("CYP2D6", "*1/*4", "gene 'CYP2D6' is not in any CPIC table"),
        ("TPMT", "*1", "is not of the form"),
        ("TPMT", "*1/*2/*3", "is not of the form"),
        ("TPMT", "1/3A", "is not of the form"),
        ("TPMT", "*1x2/*3A", "is not of the form"),
        ("CYP3A5", "*3/*8", "assigns no CYP3A5 phenotype"),  # no function + unknown function
        ("CYP3A5", "*8/*9", "assigns no CYP3A5 phenotype"),
    ],
)
def test_unknown_allele_gene_or_combination_is_never_guessed(
    gene: str, diplotype: str, fragment: str
) -> None:
    call = phenotype(gene=gene, diplotype=diplotype)
    assert call.phenotype is None
    assert call.reason.startswith(NO_RECOMMENDATION)
    assert fragment in call.reason


def test_phenotype_rejects_non_string_input() -> None:
    with pytest.raises(InvalidInputError) as excinfo:
        phenotype(gene="TPMT", diplotype=13)  # type: ignore[arg-type]
    assert excinfo.value.path == "diplotype"


def test_phenotype_call_feeds_starting_dose() -> None:
    call = phenotype(gene="TPMT", diplotype="*3A/*1")
    assert call.phenotype is not None
    rec = starting_dose(
        drug="azathioprine", phenotypes={"TPMT": call.phenotype, "NUDT15": NM}, standard_daily_dose_mg=150.0
    )
    assert_range(rec, 45.0, 120.0)


# -- no recommendation from genotype ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("drug", "phenotypes", "fragment"),
    [
        ("tacrolimus", {"CYP3A5": UM}, "phenotype 'Ultrarapid Metabolizer' for CYP3A5 is not in CPIC table"),
        ("voriconazole", {"CYP2C19": "Likely Intermediate Metabolizer"}, "for CYP2C19 is not in CPIC table"),
        ("mercaptopurine", {"TPMT": "super metabolizer"}, "for TPMT is not in CPIC table"),
        ("warfarin", {"CYP2C9": NM}, "drug 'warfarin' is not in any CPIC table"),
        ("tacrolimus", {}, "no phenotype given for CYP3A5"),
        ("tacrolimus", {"CYP2C19": PM}, "no phenotype given for CYP3A5"),
    ],
)
def test_phenotype_or_drug_not_in_table_gives_no_recommendation(
    drug: str, phenotypes: dict[str, str], fragment: str
) -> None:
    rec = starting_dose(drug=drug, phenotypes=phenotypes, standard_daily_dose_mg=10.0, weight_kg=70.0)
    assert rec.dose_range_mg is None
    assert rec.fraction_of_standard is None
    assert rec.alternative_recommended is False
    assert rec.basis == BASIS_GENOTYPE
    assert rec.message.startswith(NO_RECOMMENDATION)
    assert fragment in rec.message


def test_gene_not_used_by_the_drug_is_ignored_with_a_warning() -> None:
    rec = starting_dose(
        drug="tacrolimus", phenotypes={"CYP3A5": PM, "TPMT": PM}, standard_daily_dose_mg=10.0, weight_kg=70.0
    )
    assert_range(rec, 10.0, 10.0)
    assert rec.genes == ("CYP3A5",)
    assert any("TPMT is not used" in w for w in rec.warnings)


@pytest.mark.parametrize(
    "written", ["intermediate metabolizer", "Intermediate Metaboliser", "  INTERMEDIATE   metabolizer ", "IM"]
)
def test_phenotype_spelling_variants(written: str) -> None:
    rec = starting_dose(drug="Tacrolimus", phenotypes={"cyp3a5": written}, standard_daily_dose_mg=10.0)
    assert rec.phenotypes == {"CYP3A5": IM}
    assert_range(rec, 15.0, 20.0)


# -- input checks, result type, hybrid basis ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({"standard_daily_dose_mg": 0.0}, "standard_daily_dose_mg"),
        ({"standard_daily_dose_mg": -5.0}, "standard_daily_dose_mg"),
        ({"standard_daily_dose_mg": math.nan}, "standard_daily_dose_mg"),
        ({"standard_daily_dose_mg": True}, "standard_daily_dose_mg"),
        ({"standard_daily_dose_mg": "10"}, "standard_daily_dose_mg"),
        ({"weight_kg": 0.0}, "weight_kg"),
        ({"weight_kg": 500.0}, "weight_kg"),
        ({"body_surface_area_m2": 6.0}, "body_surface_area_m2"),
        ({"indication": "cancer"}, "indication"),
        ({"population": "child"}, "population"),
        ({"drug": 3}, "drug"),
        ({"phenotypes": [("CYP3A5", PM)]}, "phenotypes"),
        ({"phenotypes": {"CYP3A5": PM, "cyp3a5 ": EM}}, "phenotypes.cyp3a5 "),
        ({"phenotypes": {"CYP3A5": 3}}, "phenotypes.CYP3A5"),
    ],
)
def test_impossible_inputs_raise(kwargs: dict[str, Any], path: str) -> None:
    arguments: dict[str, Any] = {
        "drug": "tacrolimus",
        "phenotypes": {"CYP3A5": PM},
        "standard_daily_dose_mg": 10.0,
        **kwargs,
    }
    with pytest.raises(InvalidInputError) as excinfo:
        starting_dose(**arguments)
    assert excinfo.value.path == path


def test_results_are_frozen_and_keyword_only() -> None:
    rec = starting_dose(drug="tacrolimus", phenotypes={"CYP3A5": PM}, standard_daily_dose_mg=10.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.dose_range_mg = (1.0, 2.0)  # type: ignore[misc]
    with pytest.raises(TypeError):
        rec.phenotypes["CYP3A5"] = EM  # type: ignore[index]
    with pytest.raises(TypeError):
        starting_dose("tacrolimus", {"CYP3A5": PM}, 10.0)  # type: ignore[misc]
    with pytest.raises(TypeError):
        phenotype("TPMT", "*1/*1")  # type: ignore[misc]


def test_hybrid_basis_genotype_before_levels_bayesian_after() -> None:
    assert hybrid_basis(n_levels=0) == BASIS_GENOTYPE == "genotype"
    assert hybrid_basis(n_levels=1) == BASIS_BAYESIAN == "bayesian"
    assert hybrid_basis(n_levels=5) == "bayesian"
    with pytest.raises(InvalidInputError):
        hybrid_basis(n_levels=-1)


# -- table validation --------------------------------------------------------------------------------------

TACROLIMUS_FILE = "cpic_tacrolimus_cyp3a5.json"


def _tacrolimus_document() -> dict[str, Any]:
    return json.loads((TABLES / TACROLIMUS_FILE).read_text(encoding="utf-8"))


def _write(directory: Path, document: Any, name: str = TACROLIMUS_FILE) -> None:
    text = document if isinstance(document, str) else json.dumps(document)
    (directory / name).write_text(text, encoding="utf-8")


def _mutated(mutate: Any) -> dict[str, Any]:
    document = copy.deepcopy(_tacrolimus_document())
    mutate(document)
    return document


def _rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["drugs"]["tacrolimus"]["recommendations"]


def test_valid_table_copy_loads_from_a_directory(tmp_path: Path) -> None:
    _write(tmp_path, _tacrolimus_document())
    guidelines = load_guidelines(directory=tmp_path)
    assert list(guidelines) == ["cpic_tacrolimus_cyp3a5"]
    assert guidelines["cpic_tacrolimus_cyp3a5"].path == TACROLIMUS_FILE


@pytest.mark.parametrize(
    ("mutate", "field_path", "fragment"),
    [
        (lambda d: d.update(colour="blue"), "colour", "unknown key"),
        (lambda d: d.pop("doi"), "doi", "missing required key"),
        (lambda d: d.update(doi="cpt.113"), "doi", "is not a DOI"),
        (lambda d: d.update(schema_version=2), "schema_version", "must be 1"),
        (
            lambda d: _rows(d)[0]["dose"].update(high=2.5),
            "drugs.tacrolimus.recommendations[0].dose.high",
            "outside [0, 2]",
        ),
        (
            lambda d: _rows(d)[2]["dose"].update(low=-0.1),
            "drugs.tacrolimus.recommendations[2].dose.low",
            "outside [0, 2]",
        ),
        (
            lambda d: _rows(d)[0]["dose"].update(low=2.0, high=1.5),
            "drugs.tacrolimus.recommendations[0].dose",
            "above high",
        ),
        (
            lambda d: _rows(d)[0].update(dose_mg=5),
            "drugs.tacrolimus.recommendations[0].dose_mg",
            "unknown key",
        ),
        (
            lambda d: _rows(d)[1].pop("strength"),
            "drugs.tacrolimus.recommendations[1].strength",
            "missing required key",
        ),
        (
            lambda d: _rows(d)[1].update(strength="weak"),
            "drugs.tacrolimus.recommendations[1].strength",
            "not one of",
        ),
        (
            lambda d: _rows(d).pop(2),
            "drugs.tacrolimus.recommendations",
            "missing row for CYP3A5 Poor Metabolizer",
        ),
        (
            lambda d: _rows(d)[0]["phenotypes"].update(CYP3A5="Ultrarapid Metabolizer"),
            "drugs.tacrolimus.recommendations[0].phenotypes.CYP3A5",
            "not one of",
        ),
        (
            lambda d: _rows(d)[1].update(id=_rows(d)[0]["id"]),
            "drugs.tacrolimus.recommendations",
            "duplicate row id",
        ),
        (
            lambda d: _rows(d)[2].update(max_mg_per_kg_day=0.3, dose=None),
            "recommendations[2].max_mg_per_kg_day",
            "cap",
        ),
        (
            lambda d: d["genes"]["CYP3A5"]["function_pairs"][0].update(
                functions=["normal function", "decreased"]
            ),
            "genes.CYP3A5.function_pairs[0].functions[1]",
            "function of no allele",
        ),
        (
            lambda d: d["genes"]["CYP3A5"]["alleles"].update({"3": "no function"}),
            "genes.CYP3A5.alleles.3",
            "allele names",
        ),
        (lambda d: d.update(id="something_else"), "id", "must equal the file name"),
    ],
)
def test_malformed_table_is_rejected_with_the_field_named(
    tmp_path: Path, mutate: Any, field_path: str, fragment: str
) -> None:
    _write(tmp_path, _mutated(mutate))
    with pytest.raises(GuidelineTableError) as excinfo:
        load_guidelines(directory=tmp_path)
    assert excinfo.value.path.startswith(f"{TACROLIMUS_FILE}:")
    assert field_path in excinfo.value.path
    assert fragment in str(excinfo.value)


def test_invalid_json_is_rejected_with_the_line(tmp_path: Path) -> None:
    _write(tmp_path, '{"schema_version": 1,\n  "id": }')
    with pytest.raises(GuidelineTableError, match="invalid JSON") as excinfo:
        load_guidelines(directory=tmp_path)
    assert excinfo.value.path == f"{TACROLIMUS_FILE}:line 2"


def test_gene_defined_in_two_tables_is_rejected(tmp_path: Path) -> None:
    _write(tmp_path, _tacrolimus_document())
    other = _mutated(lambda d: d.update(id="copy_of_tacrolimus"))
    other["drugs"] = {"tacrolimus2": other["drugs"]["tacrolimus"]}
    _write(tmp_path, other, "copy_of_tacrolimus.json")
    with pytest.raises(GuidelineTableError, match="gene also defined"):
        load_guidelines(directory=tmp_path)


def test_empty_table_directory_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(GuidelineTableError, match=r"no \.json guideline table"):
        load_guidelines(directory=tmp_path)
