"""Reads about patients: the one access helper, consent status, the covariate record and derived values."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.roles import Role
from accounts.selectors import user_roles
from mipd_engine import clinical_equations as eq
from mipd_engine.errors import InvalidInputError
from patients.models import ConsentRecord, CovariateMeasurement, Patient

CLINICAL_ROLES = frozenset({Role.CLINICIAN, Role.PHARMACIST})


def require_clinical_role(*, user: AbstractBaseUser | AnonymousUser) -> None:
    """Patient data is for clinicians and pharmacists; curators and others see none of it."""
    if not user_roles(user=user) & CLINICAL_ROLES:
        raise PermissionDenied("patient data is available to clinicians and pharmacists only")


def patients_visible(*, user: AbstractBaseUser | AnonymousUser, search: str = "") -> QuerySet[Patient]:
    require_clinical_role(user=user)
    patients = Patient.objects.all()
    if search.strip():
        term = search.strip()
        patients = patients.filter(
            Q(mrn__iexact=term) | Q(family_name__istartswith=term) | Q(ward__iexact=term)
        )
    return patients


def patient_get(*, user: AbstractBaseUser | AnonymousUser, pk: int) -> Patient:
    """The one access helper for patient-scoped objects: 403 without a clinical role, 404 when absent."""
    require_clinical_role(user=user)
    try:
        return Patient.objects.get(pk=pk)
    except Patient.DoesNotExist:
        raise Http404("no such patient") from None


def consent_status(*, patient: Patient, scope: str) -> str:
    """``granted``, ``refused``, ``withdrawn`` or ``not recorded``: the latest record for the scope."""
    latest = patient.consents.filter(scope=scope).order_by("-recorded_at", "-pk").first()
    return latest.status if latest else "not recorded"


def consents_current(*, patient: Patient) -> dict[str, dict[str, object]]:
    result: dict[str, dict[str, object]] = {}
    for scope, label in ConsentRecord.Scope.choices:
        latest = (
            patient.consents.filter(scope=scope)
            .order_by("-recorded_at", "-pk")
            .select_related("recorded_by")
            .first()
        )
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
