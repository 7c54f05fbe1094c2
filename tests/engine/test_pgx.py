"""Tests of mipd_engine.pgx: CPIC genotype-to-phenotype and phenotype-to-starting-dose tables.

Every expected number below is typed here from the guideline (CPIC thiopurines 2018 update with the CPIC
website updates of 2020 and 2024, CPIC CYP3A5/tacrolimus 2015, CPIC CYP2C19/voriconazole 2016-17); none is
read back from the JSON tables. No Django.
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
    # mercaptopurine, TPMT (2018 Table 2)
    ("mercaptopurine", "TPMT", NM, None, ("fraction", 1.0, 1.0, False, "strong")),
    ("mercaptopurine", "TPMT", IM, None, ("fraction", 0.3, 0.8, False, "strong")),
    ("mercaptopurine", "TPMT", PIM, None, ("fraction", 0.3, 0.8, False, "strong")),
    ("mercaptopurine", "TPMT", PM, "malignant", ("fraction", 0.1, 0.1, True, "strong")),
    ("mercaptopurine", "TPMT", PM, "nonmalignant", ("alternative", "strong")),
    ("mercaptopurine", "TPMT", IND, None, ("no_dose", "erythrocyte activity")),
    # mercaptopurine, NUDT15 (2018 Table 3)
    ("mercaptopurine", "NUDT15", NM, None, ("fraction", 1.0, 1.0, False, "strong")),
    ("mercaptopurine", "NUDT15", IM, None, ("fraction", 0.3, 0.8, False, "strong")),
    ("mercaptopurine", "NUDT15", PIM, None, ("fraction", 0.3, 0.8, False, "strong")),
    ("mercaptopurine", "NUDT15", PM, "malignant", ("per_m2", 10.0, "strong")),
    ("mercaptopurine", "NUDT15", PM, "nonmalignant", ("alternative", "strong")),
    ("mercaptopurine", "NUDT15", IND, None, ("no_dose", "monitor closely")),
    # azathioprine, TPMT
    ("azathioprine", "TPMT", NM, None, ("fraction", 1.0, 1.0, False, "strong")),
    ("azathioprine", "TPMT", IM, None, ("fraction", 0.3, 0.8, False, "strong")),
    ("azathioprine", "TPMT", PIM, None, ("fraction", 0.3, 0.8, False, "strong")),
    ("azathioprine", "TPMT", PM, "malignant", ("fraction", 0.1, 0.1, True, "strong")),
    ("azathioprine", "TPMT", PM, "nonmalignant", ("alternative", "strong")),
    ("azathioprine", "TPMT", IND, None, ("no_dose", "erythrocyte activity")),
    # azathioprine, NUDT15
    ("azathioprine", "NUDT15", NM, None, ("fraction", 1.0, 1.0, False, "strong")),
    ("azathioprine", "NUDT15", IM, None, ("fraction", 0.3, 0.8, False, "strong")),
    ("azathioprine", "NUDT15", PIM, None, ("fraction", 0.3, 0.8, False, "strong")),
    ("azathioprine", "NUDT15", PM, "malignant", ("fraction", 0.1, 0.1, False, "strong")),
    ("azathioprine", "NUDT15", PM, "nonmalignant", ("alternative", "strong")),
    ("azathioprine", "NUDT15", IND, None, ("no_dose", "monitor closely")),
    # thioguanine, TPMT
    ("thioguanine", "TPMT", NM, None, ("fraction", 1.0, 1.0, False, "strong")),
    ("thioguanine", "TPMT", IM, None, ("fraction", 0.5, 0.8, False, "moderate")),
    ("thioguanine", "TPMT", PIM, None, ("fraction", 0.5, 0.8, False, "moderate")),
    ("thioguanine", "TPMT", PM, "malignant", ("fraction", 0.1, 0.1, True, "strong")),
    ("thioguanine", "TPMT", PM, "nonmalignant", ("alternative", "strong")),
    ("thioguanine", "TPMT", IND, None, ("no_dose", "erythrocyte activity")),
    # thioguanine, NUDT15
    ("thioguanine", "NUDT15", NM, None, ("fraction", 1.0, 1.0, False, "strong")),
    ("thioguanine", "NUDT15", IM, None, ("fraction", 0.5, 0.8, False, "moderate")),
    ("thioguanine", "NUDT15", PIM, None, ("fraction", 0.5, 0.8, False, "moderate")),
    ("thioguanine", "NUDT15", PM, "malignant", ("fraction", 0.25, 0.25, False, "strong")),
    ("thioguanine", "NUDT15", PM, "nonmalignant", ("alternative", "strong")),
    ("thioguanine", "NUDT15", IND, None, ("no_dose", "monitor closely")),
]


@pytest.mark.parametrize("other_gene_normal", [False, True], ids=["gene-alone", "other-gene-normal"])
@pytest.mark.parametrize(("drug", "gene", "pheno", "indication", "expected"), THIOPURINE_ROWS)
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


@pytest.mark.parametrize("drug", ["mercaptopurine", "azathioprine", "thioguanine"])
@pytest.mark.parametrize(("tpmt", "nudt15"), [(PM, IM), (IM, PM), (PM, PM), (PM, PIM)])
def test_thiopurine_poor_with_other_gene_not_normal_gives_no_number(
    drug: str, tpmt: str, nudt15: str
) -> None:
    malignant = starting_dose(
        drug=drug,
        phenotypes={"TPMT": tpmt, "NUDT15": nudt15},
        standard_daily_dose_mg=STANDARD_MG,
        body_surface_area_m2=BSA_M2,
        indication="malignant",
    )
    assert malignant.dose_range_mg is None
    assert malignant.message.startswith(NO_RECOMMENDATION)
    assert "CPIC gives no number for the combination" in malignant.message
    nonmalignant = starting_dose(
        drug=drug,
        phenotypes={"TPMT": tpmt, "NUDT15": nudt15},
        standard_daily_dose_mg=STANDARD_MG,
        indication="nonmalignant",
    )
    assert nonmalignant.dose_range_mg is None
    assert nonmalignant.alternative_recommended is True
    assert any("no combined recommendation" in w for w in nonmalignant.warnings)


@pytest.mark.parametrize(("tpmt", "nudt15"), [(IND, IM), (IM, IND), (IND, IND), (IND, PM)])
def test_thiopurine_indeterminate_with_other_gene_not_normal_gives_no_number(tpmt: str, nudt15: str) -> None:
    rec = starting_dose(
        drug="azathioprine",
        phenotypes={"TPMT": tpmt, "NUDT15": nudt15},
        standard_daily_dose_mg=STANDARD_MG,
        indication="malignant",
    )
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


def test_unverified_row_is_flagged_in_the_warnings() -> None:
    # The NUDT15 poor-metabolizer mercaptopurine cell could not be read when the table was built.
    rec = starting_dose(
        drug="mercaptopurine",
        phenotypes={"NUDT15": PM, "TPMT": NM},
        standard_daily_dose_mg=120,
        body_surface_area_m2=1.2,
        indication="malignant",
    )
    assert_range(rec, 12.0, 12.0)
    assert any("could not be verified" in w for w in rec.warnings)


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
