"""Which local account an EHR user is (SMART launch), decided by IT, never guessed.

The verified id_token's ``fhirUser`` (``Practitioner/123``, or its absolute URL) is looked up in
``EhrUserLink`` for the launching EHR system. Only a linked, active, non-staff account is signed in by a
launch: administrator accounts (staff or superuser) always sign in with their password and second factor.
No account is ever created by a launch. Roles that need a second factor still give it after the launch
(accounts.middleware.SecondFactorRequiredMiddleware sends them to the code page first).
"""

from __future__ import annotations

from typing import Any

from ehr_integration.models import EhrSystem, EhrUserLink


def fhir_user_forms(fhir_user: str, *, system: EhrSystem) -> list[str]:
    """The reference as given and relative to the system's FHIR base (``https://ehr/fhir/Practitioner/1``
    and ``Practitioner/1`` are the same user)."""
    forms = [fhir_user]
    base = system.fhir_base_url.rstrip("/") + "/"
    if fhir_user.startswith(base):
        forms.append(fhir_user[len(base) :])
    elif "/" in fhir_user and "://" not in fhir_user:
        forms.append(base + fhir_user)
    return forms


def linked_user(*, system: EhrSystem, fhir_user: str) -> tuple[Any | None, str]:
    """(the account to sign in, or None; why not, in words)."""
    if not fhir_user:
        return None, "the EHR did not say who the user is (no verified fhirUser)"
    link = (
        EhrUserLink.objects.filter(system=system, fhir_user__in=fhir_user_forms(fhir_user, system=system))
        .select_related("user")
        .first()
    )
    if link is None:
        return None, f"the EHR user {fhir_user} is not linked to an account here"
    user = link.user
    if not user.is_active:
        return None, f"the account linked to {fhir_user} is deactivated"
    if user.is_staff or user.is_superuser:
        return None, "administrator accounts are never signed in by an EHR launch"
    return user, ""
