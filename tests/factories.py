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
