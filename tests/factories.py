"""factory_boy factories shared by the Django tests."""

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from accounts.roles import Role

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user-{n}")
    first_name = "Test"
    last_name = factory.Sequence(lambda n: f"User {n}")
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def roles(self, create: bool, extracted: list[Role] | None, **kwargs: object) -> None:
        if create and extracted:
            # get_or_create: transactional tests flush the groups the accounts migration created.
            self.groups.add(*(Group.objects.get_or_create(name=role.value)[0] for role in extracted))


def care_team(
    *members: object, wards: tuple[str, ...] = ("ICU",), name: str = "", all_wards: bool = False
) -> object:
    """A care team covering ``wards`` (or every ward) with ``members``: what lets a user see patients."""
    from patients.models import CareTeam

    team, _ = CareTeam.objects.get_or_create(
        name=name or ("hospital-wide" if all_wards else "team " + "+".join(wards)),
        defaults={"wards": list(wards), "covers_all_wards": all_wards},
    )
    team.members.add(*members)
    return team


def role_groups_restore() -> None:
    """The role groups the accounts migrations create, again after a transactional flush removed them."""
    from django.contrib.auth.models import Group

    from accounts.roles import Role

    for role in Role:
        Group.objects.get_or_create(name=role.value)


def published_test_version(*, curator: object, second_curator: object, limits_source: str = "") -> object:
    """The test drug ("testdrug", intermittent IV, 12 or 24 h) and the published version of the library
    entry of tests/models_catalog/documents.py: created and validated by ``curator``, published with
    ``second_curator``'s approval (four eyes), through the catalog's services."""
    from models_catalog import services
    from models_catalog.models import Drug
    from tests.models_catalog.documents import library_entry

    Drug.objects.create(
        name="testdrug",
        display_name="Testdrug",
        routes=["iv_infusion", "iv_bolus"],
        dose_step_mg=50,
        max_single_dose_mg=3000,
        max_daily_dose_mg=6000,
        max_infusion_rate_mg_per_h=1000,
        interval_options_h=[12, 24],
        max_plausible_concentration=500,
        molar_mass_g_per_mol=500.0,
        limits_source=limits_source,
    )
    entry = library_entry()
    version = services.model_version_create(
        document=entry["model"],
        version=entry["version"],
        user=curator,
        reference_checks=entry["reference_checks"],
        covariate_sources=entry["covariate_sources"],
        model_card=entry["model_card"],
    )
    services.model_version_validate(model_version=version, user=curator)
    services.model_version_request_publication(model_version=version, user=curator)
    return services.model_version_approve_publication(model_version=version, user=second_curator)


def consenting_icu_patient(*, mrn: str, user: object, now: object = None) -> object:
    """Alice Martin (born 1960, female) in the ICU, weighing 70 kg two days before ``now``, with her consent
    to model-based dosing: the patient a test course is opened for."""
    import datetime as dt

    from django.utils import timezone

    from patients import services
    from patients.models import ConsentRecord

    patient = services.patient_create(
        mrn=mrn,
        family_name="Martin",
        given_name="Alice",
        birth_date=dt.date(1960, 5, 17),
        sex="female",
        ward="ICU",
        user=user,
    )
    services.measurement_record(
        patient=patient,
        kind="weight",
        value=70,
        unit="kg",
        measured_at=(now or timezone.now()) - dt.timedelta(days=2),
        user=user,
    )
    services.consent_record(
        patient=patient, scope=ConsentRecord.Scope.MODEL_BASED_DOSING, status="granted", user=user
    )
    return patient
