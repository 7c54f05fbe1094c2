"""Demo patients: seven realistic records on the published library, each course updated, seeded once."""

from __future__ import annotations

import itertools
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from dosing.demo import demo_patients_seed
from dosing.models import BayesianUpdate, DoseAdministration, DrugLevel, TherapyCourse
from patients.models import ConsentRecord, CovariateMeasurement, Genotype, Patient

pytestmark = pytest.mark.django_db

MRNS = {
    "DEMO-VANCO-01",
    "DEMO-TACRO-01",
    "DEMO-MP-01",
    "DEMO-TOBRA-01",
    "DEMO-AMIKA-01",
    "DEMO-GENTA-01",
    "DEMO-PIPER-01",
}


@pytest.fixture
def demo_clinician(settings: Any) -> Any:
    """The demo users and the published model library, as seed_demo leaves them before the patients.

    The library's own tests check that every entry loads; an entry the demo does not use may fail here.
    """
    from accounts.services import demo_users_seed
    from models_catalog.library import library_load
    from tests.factories import role_groups_restore

    role_groups_restore()  # an earlier transactional test's flush removes what the migrations created
    demo_users_seed(reset_passwords=False)
    users = get_user_model().objects
    library_load(
        requested_by=users.get(username="demo-curator"), approved_by=users.get(username="demo-curator-2")
    )
    return users.get(username="demo-clinician")


def seed(clinician: Any, capture: Any) -> list[str]:
    with capture(execute=True):
        return demo_patients_seed(clinician=clinician)


def row_counts() -> dict[str, int]:
    models = (Patient, CovariateMeasurement, Genotype, ConsentRecord, TherapyCourse, DoseAdministration)
    counts = {model.__name__: model.objects.count() for model in models}
    counts.update(levels=DrugLevel.objects.count(), updates=BayesianUpdate.objects.count())
    return counts


@pytest.mark.usefixtures("celery_eager")
def test_it_creates_seven_patients_whose_courses_are_updated(
    demo_clinician: Any, django_capture_on_commit_callbacks: Any
) -> None:
    lines = seed(demo_clinician, django_capture_on_commit_callbacks)
    assert len(lines) == 7
    assert all("created" in line for line in lines), lines
    assert set(Patient.objects.values_list("mrn", flat=True)) == MRNS
    drugs = {
        course.patient.mrn: course.drug.name for course in TherapyCourse.objects.select_related("patient")
    }
    assert drugs == {
        "DEMO-VANCO-01": "vancomycin",
        "DEMO-TACRO-01": "tacrolimus",
        "DEMO-TOBRA-01": "tobramycin",
        "DEMO-AMIKA-01": "amikacin",
        "DEMO-GENTA-01": "gentamicin",
        "DEMO-PIPER-01": "piperacillin",
    }
    for course in TherapyCourse.objects.all():
        latest = course.updates.order_by("-pk").first()
        assert latest.status == BayesianUpdate.Status.SUCCEEDED, (course.patient.mrn, latest.error)
        assert latest.results["basis"].startswith("Bayesian")
        assert not course.updates.filter(status=BayesianUpdate.Status.QUEUED).exists()


@pytest.mark.usefixtures("celery_eager")
def test_each_patient_shows_what_the_issue_asked_for(
    demo_clinician: Any, django_capture_on_commit_callbacks: Any
) -> None:
    seed(demo_clinician, django_capture_on_commit_callbacks)
    vanco = TherapyCourse.objects.get(patient__mrn="DEMO-VANCO-01")
    creatinine = list(
        vanco.patient.measurements.filter(kind="serum_creatinine").values_list("value", flat=True)
    )
    assert len(creatinine) >= 3 and creatinine == sorted(creatinine) and creatinine[-1] > creatinine[0]
    assert vanco.levels.count() == 2
    assert vanco.target["metric"] == "auc24"
    assert vanco.model_version.model_id == "vancomycin-goti-2018"

    tacro = TherapyCourse.objects.get(patient__mrn="DEMO-TACRO-01")
    weight = tacro.patient.measurements.get(kind="weight").value
    assert 11.6 <= weight <= 83.7  # Andrews 2017 weight range
    assert tacro.patient.genotypes.get(gene="CYP3A5").phenotype == "Intermediate Metabolizer"  # expresser
    assert tacro.updates.order_by("-pk").first().inputs["covariates"]["CYP3A5_EXPR"] == 1
    assert {dose.route for dose in tacro.doses.all()} == {"oral"}

    child = Patient.objects.get(mrn="DEMO-MP-01")
    phenotypes = dict(child.genotypes.values_list("gene", "phenotype"))
    assert phenotypes == {"TPMT": "Intermediate Metabolizer", "NUDT15": "Normal Metabolizer"}
    assert set(child.consents.values_list("scope", "status")) >= {
        (ConsentRecord.Scope.GENOTYPE_USE, ConsentRecord.Status.GRANTED),
        (ConsentRecord.Scope.MODEL_BASED_DOSING, ConsentRecord.Status.GRANTED),
    }
    assert not child.courses.exists()

    tobra = TherapyCourse.objects.get(patient__mrn="DEMO-TOBRA-01")
    times = [dose.given_at for dose in tobra.doses.order_by("given_at")]
    assert {(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times)} == {24 * 3600}
    assert tobra.levels.count() == 1

    amika = TherapyCourse.objects.get(patient__mrn="DEMO-AMIKA-01")
    assert amika.patient.ward == "ICU"
    assert amika.model_version.model_id == "amikacin-delattre-2010"  # septic ICU adults
    assert amika.target["metric"] == "cmax_mic" and amika.target["safety"]
    assert amika.levels.count() == 2
    plausibility = set(amika.levels.values_list("plausibility", flat=True))
    assert plausibility == {"accepted"}, "both levels enter the fit"

    genta = TherapyCourse.objects.get(patient__mrn="DEMO-GENTA-01")
    assert genta.patient.ward == "ICU"
    assert genta.model_version.model_id == "gentamicin-hodiamont-2017"  # critically ill adults
    assert genta.target["metric"] == "cmax_mic" and genta.target["mic_mg_per_l"] == 2
    assert [(marker["metric"], marker["above"]) for marker in genta.target["safety"]] == [("trough", 1)]
    assert set(genta.levels.values_list("plausibility", flat=True)) == {"accepted"}
    update = genta.updates.order_by("-pk").first()
    assert len(update.inputs["observations"]) == 2, "the peak and the 12-h level enter the fit"
    regimens = update.results["regimens"]
    assert regimens and {regimen["interval_h"] for regimen in regimens} <= {24, 36, 48}


@pytest.mark.usefixtures("celery_eager")
@pytest.mark.filterwarnings("error::RuntimeWarning")  # no overflow in the search (flat curves once did)
def test_the_piperacillin_patient_is_on_extended_infusion_with_unbound_levels(
    demo_clinician: Any, django_capture_on_commit_callbacks: Any
) -> None:
    seed(demo_clinician, django_capture_on_commit_callbacks)
    piper = TherapyCourse.objects.get(patient__mrn="DEMO-PIPER-01")
    assert piper.patient.ward == "ICU"
    assert piper.model_version.model_id == "piperacillin-klastrup-2020"  # critically ill adults, unbound
    assert piper.target["metric"] == "ft_above_mic" and piper.target["mic_mg_per_l"] == 16
    assert piper.target["output"] == "conc_unbound" and piper.target["infusion_duration_h"] == 4
    doses = list(piper.doses.order_by("given_at"))
    assert {(dose.amount_mg, dose.infusion_duration_h) for dose in doses} == {(4000, 4)}
    gaps = {(b.given_at - a.given_at).total_seconds() for a, b in itertools.pairwise(doses)}
    assert gaps == {8 * 3600}
    assert set(piper.levels.values_list("plausibility", flat=True)) == {"accepted"}
    update = piper.updates.order_by("-pk").first()
    assert update.status == BayesianUpdate.Status.SUCCEEDED, update.error
    assert len(update.inputs["observations"]) == 2, "the end-of-infusion level and the trough enter the fit"
    # The trough (11.5 mg/L) is below the MIC: 4 g q8h misses 100 % fT>MIC, and the best regimen keeps the
    # 4-h infusion but shortens the interval (4 g q6h, the 16 g/day ceiling), with no toxicity marker hit.
    best, *others = update.results["regimens"]
    assert (best["dose_mg"], best["interval_h"], best["duration_h"]) == (4000, 6, 4)
    assert best["pta"] > 0.9 and best["p_toxic"] == 0
    current = next(r for r in others if (r["dose_mg"], r["interval_h"]) == (4000, 8))
    assert current["pta"] < 0.5


@pytest.mark.usefixtures("celery_eager")
def test_running_it_again_changes_nothing(
    demo_clinician: Any, django_capture_on_commit_callbacks: Any
) -> None:
    seed(demo_clinician, django_capture_on_commit_callbacks)
    before = row_counts()
    lines = seed(demo_clinician, django_capture_on_commit_callbacks)
    assert all("exists, unchanged" in line for line in lines), lines
    assert row_counts() == before


def test_seed_demo_prints_one_line_per_patient(settings: Any) -> None:
    settings.DEBUG = True
    out = StringIO()
    call_command("seed_demo", stdout=out)
    printed = out.getvalue().split("Demo patients:", 1)[1]
    assert {mrn for mrn in MRNS if f"{mrn} " in printed} == MRNS
