"""Demo patients for the embedded default: realistic records built through the services, never raw writes.

Seven patients, each showing one part of the application (times relative to now, so the plots look current):

* DEMO-VANCO-01, an ICU patient on vancomycin (Goti 2018) whose serum creatinine rises over three days, with
  a trough and a post-infusion level (AUC24 target 400-600 mg·h/L);
* DEMO-TACRO-01, a 12-year-old kidney transplant recipient on oral tacrolimus (Andrews 2017, paediatric),
  CYP3A5 *1/*3 (expresser) with consent to use the genotype, and two low troughs;
* DEMO-MP-01, a child with acute lymphoblastic leukaemia to start mercaptopurine, TPMT *1/*3A (intermediate
  metabolizer) and NUDT15 *1/*1: genotypes and consents only (the library has no mercaptopurine PK model);
* DEMO-TOBRA-01, an adolescent with cystic fibrosis on once-daily tobramycin (Hennig 2008), one level;
* DEMO-AMIKA-01, an adult ICU patient in septic shock after a first 25 mg/kg amikacin dose (Delattre 2010,
  septic ICU adults), a peak and an 8-h level (peak/MIC target, trough toxicity marker);
* DEMO-GENTA-01, an adult ICU patient after a first 5 mg/kg gentamicin dose (Hodiamont 2017, critically ill
  adults), a peak 30 min after the end of the infusion and a 12-h level (peak/MIC target, trough < 1 mg/L
  toxicity marker, intervals 24-48 h);
* DEMO-PIPER-01, an adult ICU patient with Pseudomonas pneumonia on piperacillin-tazobactam 4 g by extended
  (4-h) infusion every 8 h (Klastrup 2020, critically ill adults, unbound concentrations), an unbound level at
  the end of an infusion and a trough (100 % fT>MIC with MIC 16 mg/L, trough toxicity marker).

The catalog sets no single-dose cap for tacrolimus and tobramycin (a local decision) and the regimen search
needs one, so those two courses state a prescriber's cap in their target.

Each patient is written in one transaction: every service asks for a Bayesian update of the course, the
newer requests supersede the older ones, and after commit only the course's last update runs.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from dosing import services as dosing
from dosing.models import MonitoringDevice, TherapyCourse
from models_catalog.models import ModelVersion, TargetProtocol
from patients import services as patients
from patients.models import ConsentRecord, Patient

LAB = "Demo hospital laboratory"


class DemoModelMissingError(Exception):
    """A demo course needs a published model version that the catalog does not have."""


@dataclass(frozen=True)
class _Demo:
    mrn: str
    summary: str
    build: Callable[[AbstractBaseUser, dt.datetime], Patient]


def _published(model_id: str) -> ModelVersion:
    version = (
        ModelVersion.objects.published().filter(model_id=model_id).order_by("-published_at", "-pk").first()
    )
    if version is None:
        raise DemoModelMissingError(f"no published version of {model_id}: load the model library first")
    return version


def _protocol(version: ModelVersion, metric: str) -> TargetProtocol:
    protocol = (
        TargetProtocol.objects.filter(drug=version.drug, active=True, target__metric=metric)
        .order_by("pk")
        .first()
    )
    if protocol is None:
        raise DemoModelMissingError(f"no active {metric} target protocol for {version.drug.name}")
    return protocol


def _consent(patient: Patient, user: AbstractBaseUser, *scopes: str) -> None:
    for scope in scopes:
        patients.consent_record(
            patient=patient,
            scope=scope,
            status=ConsentRecord.Status.GRANTED,
            user=user,
            note="demo patient: consent recorded on admission",
        )


def _measure(
    patient: Patient,
    user: AbstractBaseUser,
    kind: str,
    value: float,
    unit: str,
    at: dt.datetime,
    declared_unit: str | None = None,
) -> None:
    patients.measurement_record(
        patient=patient,
        kind=kind,
        value=value,
        unit=unit,
        measured_at=at,
        user=user,
        declared_unit=declared_unit,
    )


def _born(now: dt.datetime, years: int, days: int = 0) -> dt.date:
    """The birth date of a patient aged ``years`` and ``days`` today (a leap day needs no special case)."""
    return timezone.localtime(now).date() - dt.timedelta(days=round(365.25 * years) + days)


@dataclass(frozen=True)
class _IcuInfusionCase:
    """An adult ICU patient on an intermittent IV infusion: the record a demo builder writes, in this order
    (patient, consent, weight and height on admission, creatinine, course, doses, levels)."""

    model_id: str
    mrn: str
    family_name: str
    given_name: str
    age: tuple[int, int]  # years, days
    sex: str
    weight_kg: float
    height_cm: float
    admitted_h_ago: float
    scr_umol_per_l: tuple[tuple[float, float], ...]  # (hours ago, serum creatinine), oldest first
    target_metric: str
    indication: str
    first_dose_h_ago: float
    dose_mg: float
    infusion_h: float
    levels: tuple[tuple[float, float], ...]  # (hours after the first dose, mg/L)
    doses: int = 1
    interval_h: float = 0.0  # between the starts of two doses
    assay: str = "immunoassay (demo)"


def _icu_infusion_patient(case: _IcuInfusionCase, user: AbstractBaseUser, now: dt.datetime) -> Patient:
    version = _published(case.model_id)
    patient = patients.patient_create(
        mrn=case.mrn,
        family_name=case.family_name,
        given_name=case.given_name,
        birth_date=_born(now, *case.age),
        sex=case.sex,
        ward="ICU",
        user=user,
    )
    _consent(patient, user, ConsentRecord.Scope.MODEL_BASED_DOSING)
    admitted = now - dt.timedelta(hours=case.admitted_h_ago)
    _measure(patient, user, "weight", case.weight_kg, "kg", admitted)
    _measure(patient, user, "height", case.height_cm, "cm", admitted)
    for hours_ago, scr_umol_per_l in case.scr_umol_per_l:
        _measure(
            patient, user, "serum_creatinine", scr_umol_per_l, "umol/L", now - dt.timedelta(hours=hours_ago)
        )
    course = dosing.course_open(
        patient=patient,
        model_version=version,
        target_protocol=_protocol(version, case.target_metric),
        indication=case.indication,
        user=user,
        no_organ_support_confirmed=True,
    )
    first = now - dt.timedelta(hours=case.first_dose_h_ago)
    for i in range(case.doses):
        dosing.dose_record(
            course=course,
            given_at=first + dt.timedelta(hours=case.interval_h * i),
            amount_mg=case.dose_mg,
            route="iv_infusion",
            infusion_duration_h=case.infusion_h,
            user=user,
        )
    for after_first_h, value in case.levels:
        dosing.level_record(
            course=course,
            sampled_at=first + dt.timedelta(hours=after_first_h),
            value=value,
            unit="mg/L",
            assay=case.assay,
            user=user,
        )
    return patient


_ICU_VANCOMYCIN = _IcuInfusionCase(
    model_id="vancomycin-goti-2018",
    mrn="DEMO-VANCO-01",
    family_name="Demo-Vancomycin",
    given_name="Henri",
    age=(58, 40),
    sex=Patient.Sex.MALE,
    weight_kg=92,
    height_cm=178,
    admitted_h_ago=74,
    # Acute kidney injury on vancomycin: creatinine 0.9 -> 1.8 mg/dL over three days (CrCL about 117 -> 58).
    scr_umol_per_l=((72, 80), (48, 106), (24, 133), (3, 159)),
    target_metric="auc24",
    indication="MRSA bacteraemia (demo)",
    # 1 g over 2 h (at most 10 mg/min) every 12 h; the last one 2 h ago.
    first_dose_h_ago=62,
    dose_mg=1000,
    infusion_h=2,
    # A trough before the 5th dose, and a level 1 h after the end of the 5th infusion.
    levels=((47.5, 17.8), (51.0, 30.5)),
    doses=6,
    interval_h=12,
)


def _kidney_transplant_tacrolimus(user: AbstractBaseUser, now: dt.datetime) -> Patient:
    version = _published("tacrolimus-andrews-2017")
    patient = patients.patient_create(
        mrn="DEMO-TACRO-01",
        family_name="Demo-Tacrolimus",
        given_name="Amara",
        birth_date=_born(now, 12, 150),
        sex=Patient.Sex.FEMALE,
        ward="Paediatric nephrology",
        user=user,
    )
    _consent(patient, user, ConsentRecord.Scope.MODEL_BASED_DOSING, ConsentRecord.Scope.GENOTYPE_USE)
    patients.genotype_record(
        patient=patient,
        gene="CYP3A5",
        diplotype="*1/*3",
        lab=LAB,
        reported_on=timezone.localtime(now).date() - dt.timedelta(days=30),
        user=user,
    )
    day0 = now - dt.timedelta(hours=90)  # transplantation
    _measure(patient, user, "weight", 38, "kg", day0)
    _measure(patient, user, "height", 148, "cm", day0)
    _measure(patient, user, "donor_deceased", 1, "flag", day0, declared_unit="flag")
    # The graft starts working: creatinine falls; haematocrit recovers slowly after surgery.
    for hours_ago, scr_umol_per_l, hct in ((88, 190, 0.26), (66, 112, 0.27), (42, 74, 0.28), (18, 58, 0.30)):
        at = now - dt.timedelta(hours=hours_ago)
        _measure(patient, user, "serum_creatinine", scr_umol_per_l, "umol/L", at)
        _measure(patient, user, "hematocrit", hct, "L/L", at, declared_unit="L/L")
    protocol = _protocol(version, "trough")  # weeks 1-3: 10-15 ng/mL
    course = dosing.course_open(
        patient=patient,
        model_version=version,
        target_protocol=protocol,
        # No labelled maximum (a local decision the catalog leaves open); the regimen search needs one: this
        # prescriber caps a dose at 0.5 mg/kg.
        target={**protocol.target, "max_dose_mg": 19},
        indication="kidney transplantation, first weeks (demo)",
        user=user,
        no_organ_support_confirmed=True,
    )
    first = now - dt.timedelta(hours=86)
    for i in range(
        8
    ):  # 8 mg every 12 h (0.42 mg/kg/day: CPIC advises 1.5-2 times the usual dose for expressers)
        dosing.dose_record(
            course=course, given_at=first + dt.timedelta(hours=12 * i), amount_mg=8, route="oral", user=user
        )
    # Troughs before the 5th and the 7th dose, still below the target: an expresser clears tacrolimus fast.
    for after_first_h, value in ((47.5, 4.6), (71.5, 5.3)):
        dosing.level_record(
            course=course,
            sampled_at=first + dt.timedelta(hours=after_first_h),
            value=value,
            unit="ng/mL",
            assay="LC-MS/MS, whole blood (demo)",
            user=user,
        )
    return patient


def _leukaemia_mercaptopurine(user: AbstractBaseUser, now: dt.datetime) -> Patient:
    patient = patients.patient_create(
        mrn="DEMO-MP-01",
        family_name="Demo-Mercaptopurine",
        given_name="Leo",
        birth_date=_born(now, 6, 200),
        sex=Patient.Sex.MALE,
        ward="Paediatric haematology-oncology",
        user=user,
    )
    _consent(patient, user, ConsentRecord.Scope.MODEL_BASED_DOSING, ConsentRecord.Scope.GENOTYPE_USE)
    measured = now - dt.timedelta(hours=20)
    _measure(patient, user, "weight", 21, "kg", measured)
    _measure(patient, user, "height", 116, "cm", measured)
    reported = timezone.localtime(now).date() - dt.timedelta(days=7)
    for gene, diplotype in (("TPMT", "*1/*3A"), ("NUDT15", "*1/*1")):
        patients.genotype_record(
            patient=patient, gene=gene, diplotype=diplotype, lab=LAB, reported_on=reported, user=user
        )
    return patient


def _cystic_fibrosis_tobramycin(user: AbstractBaseUser, now: dt.datetime) -> Patient:
    version = _published("tobramycin-hennig-2008")
    patient = patients.patient_create(
        mrn="DEMO-TOBRA-01",
        family_name="Demo-Tobramycin",
        given_name="Chloe",
        birth_date=_born(now, 14, 90),
        sex=Patient.Sex.FEMALE,
        ward="Paediatric respiratory",
        user=user,
    )
    _consent(patient, user, ConsentRecord.Scope.MODEL_BASED_DOSING)
    measured = now - dt.timedelta(hours=52)
    _measure(patient, user, "weight", 42, "kg", measured)
    _measure(patient, user, "height", 155, "cm", measured)
    _measure(patient, user, "serum_creatinine", 45, "umol/L", measured)
    # Peak/MIC 8-10 with the Pseudomonas breakpoint MIC 2 mg/L. The library's other protocol (trough below
    # 1 mg/L) is one-sided: every candidate meets it, so the search would recommend the largest dose allowed.
    protocol = _protocol(version, "cmax_mic")
    course = dosing.course_open(
        patient=patient,
        model_version=version,
        target_protocol=protocol,
        # The catalog sets no single-dose cap for tobramycin (a local decision) and the regimen search needs
        # one: this prescriber caps at 15 mg/kg, the top of the model cohort's 6.9-15.2 mg/kg.
        target={**protocol.target, "max_dose_mg": 630},
        indication="cystic fibrosis, pulmonary exacerbation (Pseudomonas) (demo)",
        user=user,
        no_organ_support_confirmed=True,
    )
    first = now - dt.timedelta(hours=50)
    for i in range(3):  # 10 mg/kg (420 mg) over 30 min once daily; the last one 2 h ago
        dosing.dose_record(
            course=course,
            given_at=first + dt.timedelta(hours=24 * i),
            amount_mg=420,
            route="iv_infusion",
            infusion_duration_h=0.5,
            user=user,
        )
    # One level 6 h after the start of the second dose.
    dosing.level_record(
        course=course,
        sampled_at=first + dt.timedelta(hours=30),
        value=3.9,
        unit="mg/L",
        assay="immunoassay (demo)",
        user=user,
    )
    return patient


_ICU_AMIKACIN = _IcuInfusionCase(
    model_id="amikacin-delattre-2010",
    mrn="DEMO-AMIKA-01",
    family_name="Demo-Amikacin",
    given_name="Marta",
    age=(64, 200),
    sex=Patient.Sex.FEMALE,
    weight_kg=76,
    height_cm=165,
    admitted_h_ago=14,
    # Septic shock, creatinine 1.3 mg/dL (115 umol/L): Cockcroft-Gault about 51 mL/min, the cohort's median.
    scr_umol_per_l=((14, 115),),
    target_metric="cmax_mic",
    indication="septic shock, suspected Pseudomonas pneumonia (demo)",
    # The population's first dose: 25 mg/kg (1900 mg) over 30 min, 12 h ago.
    first_dose_h_ago=12,
    dose_mg=1900,
    infusion_h=0.5,
    # A peak 1 h after the start, and a level at 8 h (Delattre's optimal sampling times include 1 h and 8 h).
    levels=((1.0, 72.0), (8.0, 28.5)),
)

_ICU_GENTAMICIN = _IcuInfusionCase(
    model_id="gentamicin-hodiamont-2017",
    mrn="DEMO-GENTA-01",
    family_name="Demo-Gentamicin",
    given_name="Willem",
    age=(71, 30),
    sex=Patient.Sex.MALE,
    weight_kg=84,
    height_cm=176,
    admitted_h_ago=16,
    # Urosepsis, creatinine 1.1 mg/dL (97 umol/L): Cockcroft-Gault about 73 mL/min, near the cohort's mean.
    scr_umol_per_l=((16, 97),),
    target_metric="cmax_mic",
    indication="urosepsis, Enterobacterales (demo)",
    # The cohort's first dose: 5 mg/kg (420 mg) over 30 min, 14 h ago.
    first_dose_h_ago=14,
    dose_mg=420,
    infusion_h=0.5,
    # The paper's Cmax (30 min after the end of the infusion) and a level at 12 h: a clearance somewhat above
    # the population's 2.3 L/h.
    levels=((1.0, 15.6), (12.0, 3.3)),
)

_ICU_PIPERACILLIN = _IcuInfusionCase(
    model_id="piperacillin-klastrup-2020",
    mrn="DEMO-PIPER-01",
    family_name="Demo-Piperacillin",
    given_name="Sofia",
    age=(62, 120),
    sex=Patient.Sex.FEMALE,
    weight_kg=80,
    height_cm=168,
    admitted_h_ago=30,
    # Ventilator-associated pneumonia, creatinine 0.77 mg/dL (68 umol/L): Cockcroft-Gault about 95 mL/min.
    scr_umol_per_l=((30, 68),),
    target_metric="ft_above_mic",  # extended infusion, MIC 16 mg/L
    indication="ventilator-associated pneumonia, Pseudomonas aeruginosa (demo)",
    # 4 g piperacillin (+ 0.5 g tazobactam) over 4 h every 8 h; the last started 2 h ago.
    first_dose_h_ago=26,
    dose_mg=4000,
    infusion_h=4,
    # Unbound levels (the model's output): at the end of the third infusion and a trough before the fourth.
    # The trough is below the MIC: 4 g every 8 h does not keep this patient above 16 mg/L all the time.
    levels=((20.0, 55.0), (23.9, 11.5)),
    doses=4,
    interval_h=8,
    assay="unbound piperacillin, ultrafiltration and LC-MS/MS (demo)",
)


def _icu(case: _IcuInfusionCase) -> Callable[[AbstractBaseUser, dt.datetime], Patient]:
    return functools.partial(_icu_infusion_patient, case)


DEMOS = (
    _Demo(
        "DEMO-VANCO-01",
        "ICU, vancomycin (Goti 2018), rising creatinine, trough and peak",
        _icu(_ICU_VANCOMYCIN),
    ),
    _Demo(
        "DEMO-TACRO-01",
        "kidney transplant, 12 y, tacrolimus (Andrews 2017), CYP3A5 *1/*3 expresser, two troughs",
        _kidney_transplant_tacrolimus,
    ),
    _Demo(
        "DEMO-MP-01",
        "ALL, 6 y, mercaptopurine: TPMT *1/*3A (intermediate), NUDT15 *1/*1 (no PK model)",
        _leukaemia_mercaptopurine,
    ),
    _Demo(
        "DEMO-TOBRA-01",
        "cystic fibrosis, 14 y, once-daily tobramycin (Hennig 2008), one level",
        _cystic_fibrosis_tobramycin,
    ),
    _Demo(
        "DEMO-AMIKA-01",
        "ICU, septic shock, 64 y, amikacin 25 mg/kg (Delattre 2010), peak and 8-h level",
        _icu(_ICU_AMIKACIN),
    ),
    _Demo(
        "DEMO-GENTA-01",
        "ICU, urosepsis, 71 y, gentamicin 5 mg/kg (Hodiamont 2017), peak and 12-h level",
        _icu(_ICU_GENTAMICIN),
    ),
    _Demo(
        "DEMO-PIPER-01",
        "ICU, Pseudomonas pneumonia, 62 y, piperacillin 4 g by 4-h infusion q8h (Klastrup 2020), two levels",
        _icu(_ICU_PIPERACILLIN),
    ),
)


def demo_device_seed() -> str:
    """A monitoring device type to try the CSV import with (its figures are for the demonstration only)."""
    _, created = MonitoringDevice.objects.get_or_create(
        code="demo-microneedle-sensor",
        defaults={
            "name": "Demo microneedle concentration sensor",
            "manufacturer": "demonstration",
            "unit": "mg/L",
            "residual_error": {"model": "combined", "additive": 1.0, "proportional": 0.15},
            "error_source": "demonstration figures, not a validated device: a hospital enters its own "
            "device's validation against the laboratory assay",
        },
    )
    return f"{'device type':<14} {'created' if created else 'exists, unchanged'}: demo microneedle sensor"


def demo_patients_seed(*, clinician: AbstractBaseUser) -> list[str]:
    """Create the demo patients that do not exist yet (by MRN); one line per patient says what happened.

    Each patient is written in one transaction, so its courses' Bayesian updates are enqueued when it commits
    (in the embedded default they run then, in process). A patient whose model is not in the catalog is
    skipped with the reason.
    """
    lines = []
    for demo in DEMOS:
        if Patient.objects.filter(mrn=demo.mrn).exists():
            lines.append(f"{demo.mrn:<14} exists, unchanged")
            continue
        now = timezone.now()
        try:
            with transaction.atomic():
                patient = demo.build(clinician, now)
        except DemoModelMissingError as exc:
            lines.append(f"{demo.mrn:<14} skipped: {exc}")
            continue
        courses = TherapyCourse.objects.filter(patient=patient).count()
        lines.append(f"{demo.mrn:<14} created: {demo.summary} ({courses} course{'s' * (courses != 1)})")
    return lines
