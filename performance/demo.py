"""Demo data of the performance page: a synthetic history of scored vancomycin levels (embedded default only).

The demo patients' own levels are scored by the real path (their updates run as seed_demo records them), but a
handful of levels shows little. This adds a history of 48 closed courses on vancomycin (Goti 2018), eight
levels each, named "History" so nobody mistakes them for the clinical demo cases: each level's predictive
distribution is log-normal around a predicted median (SD 0.35 of log concentration, about what the model's
prior and residual error give), and the observed level is drawn from it, except for patients on CRRT, whose
true clearance is 20 % lower than the model says (levels about 25 % higher). The scores go through
:func:`performance.services.score_record`, so the sequential tests run as in production: the CRRT subgroup
raises a bias alert, and the demo patient's course on CRRT, if any, would carry the warning.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from scipy.special import ndtr

from dosing.models import DrugLevel, TherapyCourse
from models_catalog.models import ModelVersion
from patients.models import Patient
from performance.services import score_record
from performance.subgroups import Subgroups

MODEL_ID = "vancomycin-goti-2018"
N_PATIENTS = 48
LEVELS_PER_PATIENT = 8
LOG_SD = 0.35
SEED = 17
_Z50, _Z90 = 0.6744897501960817, 1.6448536269514722


def demo_history_seed(*, clinician: AbstractBaseUser, model_id: str = MODEL_ID) -> str:
    """Idempotent: a second run finds the history and adds nothing. Returns a line for seed_demo's output."""
    version = ModelVersion.objects.published().filter(model_id=model_id).order_by("-published_at").first()
    if version is None:
        return f"performance history skipped: {model_id} is not published"
    if Patient.objects.filter(mrn__startswith="HIST-").exists():
        return "performance history: already there"
    rng = np.random.default_rng(SEED)
    now = timezone.now()
    n_levels = 0
    with transaction.atomic():
        for i in range(N_PATIENTS):
            crrt = i % 4 == 0
            icu = crrt or i % 3 == 0
            mrn = f"HIST-{i + 1:03d}"
            patient = Patient.objects.create(
                mrn=mrn,
                mrn_key=mrn,
                family_name="History",
                given_name=f"Patient {i + 1}",
                birth_date=dt.date(1940 + (i * 7) % 60, 1 + i % 12, 1 + i % 27),
                sex="female" if i % 2 else "male",
                ward="ICU" if icu else "Ward 4",
                created_by=clinician,
            )
            course = TherapyCourse.objects.create(
                patient=patient,
                drug=version.drug,
                model_version=version,
                target={"metric": "auc24", "low": 400, "high": 600},
                indication="history (demo)",
                status=TherapyCourse.Status.CLOSED,
                opened_by=clinician,
            )
            age = now.year - patient.birth_date.year
            weight = float(rng.normal(78, 14))
            subgroups = Subgroups(
                age_band="18-39 y"
                if age < 40
                else "40-64 y"
                if age < 65
                else "65-79 y"
                if age < 80
                else ">=80 y",
                sex=patient.sex,
                weight_band="40-59 kg"
                if weight < 60
                else "60-79 kg"
                if weight < 80
                else "80-99 kg"
                if weight < 100
                else "100-119 kg",
                bmi_band="not recorded",
                renal_band="on renal replacement"
                if crrt
                else ("30-59 mL/min", "60-89 mL/min", "90-129 mL/min")[i % 3],
                renal_measure="" if crrt else "CrCl (Cockcroft-Gault)",
                care_setting="ICU" if icu else "ward",
                renal_support="CRRT" if crrt else "none",
                ancestry="",
            )
            start = now - dt.timedelta(days=200 - 4 * i)
            for k in range(LEVELS_PER_PATIENT):
                median = float(np.exp(rng.normal(math.log(14.0), 0.25)))
                shift = math.log(1.25) if crrt else 0.0
                observed = median * math.exp(shift + float(rng.normal(0.0, LOG_SD)))
                level = DrugLevel.objects.create(
                    course=course,
                    sampled_at=start + dt.timedelta(hours=12 * k + 11.5),
                    value=round(observed, 1),
                    unit="mg/L",
                    value_model_unit=round(observed, 1),
                    plausibility=DrugLevel.Plausibility.ACCEPTED,
                    recorded_by=clinician,
                )
                score = {
                    "value": level.value_model_unit,
                    "median": median,
                    "basis": "posterior" if k else "prior",
                    "output": "conc",
                    "held": False,
                    "interval_50": [median * math.exp(-_Z50 * LOG_SD), median * math.exp(_Z50 * LOG_SD)],
                    "interval_90": [median * math.exp(-_Z90 * LOG_SD), median * math.exp(_Z90 * LOG_SD)],
                    "quantile": float(ndtr(math.log(level.value_model_unit / median) / LOG_SD)),
                }
                score_record(
                    level=level,
                    model_version=version,
                    course=course,
                    score=score,
                    unit="mg/L",
                    subgroups=subgroups,
                )
                n_levels += 1
    return (
        f"performance history: {N_PATIENTS} closed courses on {version}, {n_levels} scored levels (synthetic)"
    )
