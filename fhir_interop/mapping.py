"""The code tables of the import: LOINC, UCUM, SNOMED CT routes, RxNorm/ATC medications, HGNC genes.

Every table is explicit: a code or unit that is not listed is reported with its reason, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
HGNC = "http://www.genenames.org/geneId"


@dataclass(frozen=True)
class CovariateCode:
    kind: str  # patients.CovariateMeasurement.kind
    units: tuple[str, ...]  # UCUM codes this LOINC code's property allows


@dataclass(frozen=True)
class LevelCode:
    drug: str  # models_catalog.Drug.name
    timing: str  # trough, peak, random: kept as the level's assay note


# LOINC -> covariate. The property of the code fixes the unit's dimension: 2160-0 is a mass concentration,
# so a value in µmol/L under 2160-0 is a coding error in the source and is reported.
COVARIATES: dict[str, CovariateCode] = {
    "29463-7": CovariateCode("weight", ("kg", "g", "[lb_av]")),  # Body weight
    "3141-9": CovariateCode("weight", ("kg", "g", "[lb_av]")),  # Body weight Measured
    "8302-2": CovariateCode("height", ("cm", "m", "[in_i]")),  # Body height
    "2160-0": CovariateCode("serum_creatinine", ("mg/dL",)),  # Creatinine [Mass/volume] in Serum or Plasma
    "14682-9": CovariateCode("serum_creatinine", ("umol/L",)),  # Creatinine [Moles/volume] in Serum or Plasma
    "1751-7": CovariateCode("albumin", ("g/dL", "g/L")),  # Albumin [Mass/volume] in Serum or Plasma
}

# LOINC -> drug level (the unit is any mass or molar concentration; molar ones use the drug's molar mass).
LEVELS: dict[str, LevelCode] = {
    "4092-3": LevelCode("vancomycin", "trough"),  # Vancomycin [Mass/volume] in Serum or Plasma --trough
    "4090-7": LevelCode("vancomycin", "peak"),  # Vancomycin [Mass/volume] in Serum or Plasma --peak
    "20578-1": LevelCode("vancomycin", "random"),  # Vancomycin [Mass/volume] in Serum or Plasma
    "11253-2": LevelCode("tacrolimus", "random"),  # Tacrolimus [Mass/volume] in Blood
}

# UCUM code -> the spelling mipd_units accepts. Only these; "ug/mL" and "mg/L" are the same quantity.
UCUM_UNITS: dict[str, str] = {
    "kg": "kg",
    "g": "g",
    "[lb_av]": "lb",
    "cm": "cm",
    "m": "m",
    "[in_i]": "in",
    "mg/dL": "mg/dL",
    "g/dL": "g/dL",
    "g/L": "g/L",
    "mg/L": "mg/L",
    "ug/mL": "ug/mL",
    "ng/mL": "ng/mL",
    "ug/L": "ug/L",
    "umol/L": "umol/L",
    "nmol/L": "nmol/L",
    "mg": "mg",
    "ug": "ug",
    "mg/h": "mg/h",
    "mg/min": "mg/min",
    "mL/h": "mL/h",
    "h": "h",
    "min": "min",
}

# Genomics Reporting IG: the genotype observation and its gene-studied component.
GENOTYPE_CODE = "84413-4"  # Genotype display name
GENE_STUDIED_CODE = "48018-6"  # Gene studied [ID]
GENES: dict[str, str] = {  # HGNC id -> gene symbol (the genes with a CPIC table in the engine)
    "HGNC:2621": "CYP2C19",
    "HGNC:2638": "CYP3A5",
    "HGNC:12014": "TPMT",
    "HGNC:23063": "NUDT15",
}

# SNOMED CT route (Route of administration value set) -> route of the application
ROUTES: dict[str, str] = {
    "47625008": "iv_infusion",  # Intravenous route: an infusion when it has a duration, otherwise a bolus
    "26643006": "oral",  # Oral route
    "78421000": "im",  # Intramuscular route
    "34206005": "sc",  # Subcutaneous route
}

# Medications -> models_catalog.Drug.name
RXNORM_DRUGS: dict[str, str] = {
    "11124": "vancomycin",
    "42316": "tacrolimus",
    "4413": "gentamicin",
    "641": "amikacin",
}
ATC_DRUGS: dict[str, str] = {
    "J01XA01": "vancomycin",
    "L04AD02": "tacrolimus",
    "J01GB03": "gentamicin",
    "J01GB06": "amikacin",
}

# Drug -> RxNorm code for the export (the inverse of RXNORM_DRUGS)
DRUG_RXNORM: dict[str, str] = {drug: code for code, drug in RXNORM_DRUGS.items()}
