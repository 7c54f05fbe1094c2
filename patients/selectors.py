"""Reads about patients: the one access helper, consent status, the covariate record and derived values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.utils import timezone

from mipd_engine import clinical_equations as eq
from mipd_engine.errors import InvalidInputError
from mipd_engine.renal_stability import RenalStability, creatinine_stability
from patients import access
from patients.identifiers import normalize_mrn
from patients.models import ConsentRecord, CovariateMeasurement, Patient


def require_clinical_role(*, user: AbstractBaseUser | AnonymousUser) -> None:
    """Patient data is for clinicians and pharmacists only; a refusal is an audit entry."""
    if not access.has_clinical_role(user=user):
        access.refuse(
            user=user, patient=None, object_type="patients.patient", object_id="", why="no clinical role"
        )
        raise PermissionDenied("patient data is available to clinicians and pharmacists only")


def _mrn_key(term: str) -> str | None:
    try:
        return normalize_mrn(term)
    except ValidationError:
        return None


def patients_visible(*, user: AbstractBaseUser | AnonymousUser, search: str = "") -> QuerySet[Patient]:
    """The patients of the user's care teams (patients.access), searched by MRN, family name or ward."""
    patients = access.visible_patients(user=user)
    if search.strip():
        term = search.strip()
        key = _mrn_key(term)
        patients = patients.filter(
            (Q(mrn_key=key) if key else Q(pk__in=[]))
            | Q(family_name__istartswith=term)
            | Q(ward__iexact=term)
        )
    return patients


def patient_outside_care(*, user: AbstractBaseUser | AnonymousUser, search: str) -> Patient | None:
    """The patient with exactly this MRN when not one of the user's: the page offers emergency access."""
    key = _mrn_key(search.strip()) if search.strip() else None
    if key is None or not access.has_clinical_role(user=user):
        return None
    patient = Patient.objects.filter(mrn_key=key).first()
    if patient is None or access.can_access(user=user, patient=patient):
        return None
    return patient


def patient_get(*, user: AbstractBaseUser | AnonymousUser, public_id: Any) -> Patient:
    """The one access helper for patients (patients.access): 403 not the user's patient, 404 absent."""
    return access.patient_access(user=user, public_id=public_id)


def consent_status(*, patient: Patient, scope: str) -> str:
    """``granted``, ``refused``, ``withdrawn`` or ``not recorded``: the latest record for the scope."""
    latest = patient.consents.filter(scope=scope).order_by("-recorded_at", "-pk").first()
    return latest.status if latest else "not recorded"


def consents_current(*, patient: Patient) -> dict[str, dict[str, object]]:
    """The latest record of each scope, from one query (a patient has a handful of consent records)."""
    newest: dict[str, ConsentRecord] = {}
    for record in patient.consents.select_related("recorded_by").order_by("-recorded_at", "-pk"):
        newest.setdefault(record.scope, record)
    result: dict[str, dict[str, object]] = {}
    for scope, label in ConsentRecord.Scope.choices:
        latest = newest.get(scope)
        result[scope] = {
            "label": label,
            "status": latest.status if latest else "not recorded",
            "recorded_by": str(latest.recorded_by) if latest else "",
            "recorded_at": latest.recorded_at if latest else None,
        }
    return result


def latest_measurements(*, patient: Patient) -> dict[str, CovariateMeasurement]:
    latest: dict[str, CovariateMeasurement] = {}
    for row in patient.measurements.filter(entered_in_error=False).order_by("kind", "-measured_at", "-pk"):
        latest.setdefault(row.kind, row)
    return latest


@dataclass(frozen=True)
class DerivedValue:
    label: str
    value: float | None
    unit: str
    formula: str
    notes: tuple[str, ...]
    missing: str = ""


def renal_stability(*, patient: Patient) -> RenalStability:
    """KDIGO creatinine criteria over the last 7 days (creatinine-based clearance assumes a steady state)."""
    now = timezone.now()
    series = [
        ((row.measured_at - now).total_seconds() / 3600.0, row.value)
        for row in patient.measurements.filter(kind="serum_creatinine", entered_in_error=False)
    ]
    return creatinine_stability(series, now_h=0.0)


def derived_covariates(*, patient: Patient) -> list[DerivedValue]:
    """CrCl, eGFR, BSA, ideal and adjusted body weight from the latest values, each with its formula."""
    latest = latest_measurements(patient=patient)
    age = (timezone.localdate() - patient.birth_date).days / 365.25
    sex = patient.sex if patient.sex in ("male", "female") else None
    weight = latest["weight"].value if "weight" in latest else None
    height = latest["height"].value if "height" in latest else None
    scr = latest["serum_creatinine"].value if "serum_creatinine" in latest else None

    def compute(label: str, needs: dict[str, object], function, **kwargs) -> DerivedValue:
        missing = [name for name, value in needs.items() if value is None]
        if missing:
            return DerivedValue(label, None, "", "", (), missing="needs " + ", ".join(missing))
        try:
            result = function(**kwargs)
        except InvalidInputError as exc:
            return DerivedValue(label, None, "", "", (), missing=str(exc))
        return DerivedValue(label, result.value, result.unit, result.formula, tuple(result.notes))

    values = [
        compute(
            "Creatinine clearance (Cockcroft-Gault, total body weight)",
            {"weight": weight, "serum creatinine": scr, "sex (male/female)": sex},
            eq.cockcroft_gault,
            age_years=age,
            weight_kg=weight,
            scr_mg_per_dl=scr,
            sex=sex,
        ),
    ]
    if age >= 18:
        values.append(
            compute(
                "eGFR (CKD-EPI 2021)",
                {"serum creatinine": scr, "sex (male/female)": sex},
                eq.ckd_epi_2021,
                age_years=age,
                scr_mg_per_dl=scr,
                sex=sex,
            )
        )
    else:
        values.append(
            compute(
                "eGFR (bedside Schwartz)",
                {"height": height, "serum creatinine": scr},
                eq.schwartz_bedside,
                height_cm=height,
                scr_mg_per_dl=scr,
                age_years=age,
            )
        )
    values.append(
        compute(
            "Body surface area (Mosteller)",
            {"weight": weight, "height": height},
            eq.bsa_m2,
            weight_kg=weight,
            height_cm=height,
        )
    )
    values.append(
        compute(
            "Ideal body weight (Devine)",
            {"height": height, "sex (male/female)": sex},
            eq.ideal_body_weight_kg,
            height_cm=height,
            sex=sex,
        )
    )
    values.append(
        compute(
            "Adjusted body weight",
            {"weight": weight, "height": height, "sex (male/female)": sex},
            eq.adjusted_body_weight_kg,
            weight_kg=weight,
            height_cm=height,
            sex=sex,
        )
    )
    return values


def pgx_drugs() -> list[str]:
    """Drugs with a genotype-to-dose table (CPIC), for the starting-dose form."""
    from mipd_engine.pgx import load_guidelines

    return sorted(drug for guideline in load_guidelines().values() for drug in guideline.drugs)


@dataclass(frozen=True)
class StartingDose:
    used: bool  # False: no consent to use the genotype, or no genotype for the drug's genes
    message: str
    dose_range_mg: tuple[float, float] | None = None
    text: str = ""
    strength: str | None = None
    basis: str = ""
    warnings: tuple[str, ...] = ()


def genotype_starting_dose(
    *, patient: Patient, drug: str, standard_daily_dose_mg: float, indication: str | None
) -> StartingDose:
    """The CPIC starting dose for the patient's genotypes; never from a genotype used without consent."""
    from mipd_engine.pgx import starting_dose

    if consent_status(patient=patient, scope=ConsentRecord.Scope.GENOTYPE_USE) != "granted":
        return StartingDose(False, "the patient has not consented to the use of genotype for dosing")
    phenotypes: dict[str, str] = {}
    for genotype in patient.genotypes.filter(entered_in_error=False).order_by("gene", "-reported_on", "-pk"):
        phenotypes.setdefault(genotype.gene, genotype.phenotype)
    if not phenotypes:
        return StartingDose(False, "no genotype recorded")
    latest = latest_measurements(patient=patient)
    weight = latest["weight"].value if "weight" in latest else None
    height = latest["height"].value if "height" in latest else None
    bsa = eq.bsa_m2(weight_kg=weight, height_cm=height).value if weight and height else None
    age = (timezone.localdate() - patient.birth_date).days / 365.25
    try:
        result = starting_dose(
            drug=drug,
            phenotypes=phenotypes,
            standard_daily_dose_mg=standard_daily_dose_mg,
            weight_kg=weight,
            body_surface_area_m2=bsa,
            indication=indication or None,
            population="pediatric" if age < 18 else "adult",
        )
    except InvalidInputError as exc:
        return StartingDose(False, str(exc))
    return StartingDose(
        used=result.dose_range_mg is not None,
        message=result.message,
        dose_range_mg=result.dose_range_mg,
        text=result.guideline_text,
        strength=result.strength,
        basis=str(result.basis),
        warnings=tuple(result.warnings),
    )
