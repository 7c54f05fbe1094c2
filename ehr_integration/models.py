"""The hospital's EHR systems as this application knows them, and the tables that map their ids to ours.

* ``EhrSystem``: one EHR (or FHIR platform) that calls our CDS Hooks services (identified by the ``iss`` of
  its signed JWTs, verified with its JWKS) and/or launches us as a SMART app (identified by its FHIR base
  URL, the launch's ``iss``). IT admins maintain them in the admin site; nothing is trusted that is not here.
* ``PatientIdentifier``: the EHR's FHIR Patient id -> our patient. Without a row, a patient is matched by
  MRN only when an MRN identifier system is configured (``mrn_identifier_system``, else ``FHIR_MRN_SYSTEM``).
* ``EhrUserLink``: the EHR user (the SMART id_token's ``fhirUser``) -> a local account. Only a linked user
  is signed in by a launch; there is no automatic account creation (docs/ehr-integration.md).
* ``DrugCode``: RxNorm/ATC/local codes of a draft order -> a library drug (the ATC code on the drug itself
  counts too).
* ``UsedJwtId``: the ``jti`` of every accepted CDS Hooks JWT until it expires, so that a replay is refused.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from models_catalog.models import Drug
from patients.models import Patient

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def https_or_loopback(url: str) -> bool:
    """Keys, tokens and patient data travel over TLS; plain HTTP only to this machine (tests, local proxy)."""
    parsed = urlsplit(url)
    return parsed.scheme == "https" or (
        parsed.scheme == "http" and parsed.netloc.split(":")[0] in LOOPBACK_HOSTS
    )


class EhrSystem(models.Model):
    name = models.CharField(
        max_length=120, unique=True, help_text="as people call it, e.g. 'Epic (production)'"
    )
    active = models.BooleanField(default=True, help_text="an inactive system is refused everywhere")
    # CDS Hooks: the calling EHR signs each request with its private key.
    cds_issuer = models.CharField(
        "CDS Hooks JWT issuer (iss)",
        max_length=500,
        blank=True,
        help_text="the 'iss' of the EHR's CDS Hooks JWTs; empty: this system does not call CDS Hooks",
    )
    jwks_url = models.URLField(
        "JWKS URL", max_length=500, blank=True, help_text="where the EHR publishes its public keys (https)"
    )
    jwks = models.JSONField(
        "stored JWKS",
        null=True,
        blank=True,
        help_text='the EHR\'s public keys as a JWK Set ({"keys": [...]}) when it publishes no URL',
    )
    # SMART App Launch: the EHR's FHIR server launches us.
    fhir_base_url = models.URLField(
        "FHIR base URL (SMART iss)",
        max_length=500,
        blank=True,
        help_text="the 'iss' of a SMART launch; empty: this system does not launch the app",
    )
    smart_client_id = models.CharField(
        max_length=200, blank=True, help_text="the client id the EHR registered for this app (public client)"
    )
    mrn_identifier_system = models.CharField(
        max_length=500,
        blank=True,
        help_text="the Patient.identifier system of the MRN in this EHR; empty: match by the id table only",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name",)
        verbose_name = "EHR system"
        constraints = (
            models.UniqueConstraint(
                fields=("cds_issuer",), condition=~Q(cds_issuer=""), name="ehr_unique_cds_issuer"
            ),
            models.UniqueConstraint(
                fields=("fhir_base_url",), condition=~Q(fhir_base_url=""), name="ehr_unique_fhir_base_url"
            ),
        )

    def __str__(self) -> str:
        return self.name

    def mrn_system(self) -> str:
        """The MRN identifier system for this EHR: its own, else the hospital's ``FHIR_MRN_SYSTEM``; empty:
        its patients are matched by the id table only (no unattended match on an unconfirmed MRN)."""
        return self.mrn_identifier_system or settings.FHIR_MRN_SYSTEM

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if self.cds_issuer and not (self.jwks_url or self.jwks):
            errors["jwks_url"] = ["a CDS Hooks issuer needs its public keys: a JWKS URL or a stored JWKS"]
        if self.jwks is not None and not (
            isinstance(self.jwks, dict) and isinstance(self.jwks.get("keys"), list)
        ):
            errors["jwks"] = ['a JWK Set is an object with a "keys" list']
        for field in ("jwks_url", "fhir_base_url"):
            if getattr(self, field) and not https_or_loopback(getattr(self, field)):
                errors[field] = ["use https (plain http only to 127.0.0.1 or localhost)"]
        if self.fhir_base_url and not self.smart_client_id:
            errors["smart_client_id"] = ["a SMART launch needs the client id the EHR registered for this app"]
        if errors:
            raise ValidationError(errors)


class PatientIdentifier(models.Model):
    system = models.ForeignKey(EhrSystem, on_delete=models.PROTECT, related_name="patient_identifiers")
    ehr_patient_id = models.CharField(
        "the EHR's patient id", max_length=200, help_text="the FHIR Patient id in the EHR (context.patientId)"
    )
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="ehr_identifiers")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("system", "ehr_patient_id")
        constraints = (
            models.UniqueConstraint(fields=("system", "ehr_patient_id"), name="ehr_patient_id_unique"),
        )

    def __str__(self) -> str:
        return f"{self.system}: Patient/{self.ehr_patient_id}"


class EhrUserLink(models.Model):
    system = models.ForeignKey(EhrSystem, on_delete=models.PROTECT, related_name="user_links")
    fhir_user = models.CharField(
        max_length=500, help_text="the id_token's fhirUser, e.g. Practitioner/123 or its absolute URL"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ehr_links")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("system", "fhir_user")
        verbose_name = "EHR user link"
        constraints = (models.UniqueConstraint(fields=("system", "fhir_user"), name="ehr_user_link_unique"),)

    def __str__(self) -> str:
        return f"{self.system}: {self.fhir_user} -> {self.user}"


class DrugCode(models.Model):
    system = models.CharField(max_length=500, help_text=f"a code system URI, e.g. {RXNORM}")
    code = models.CharField(max_length=100)
    drug = models.ForeignKey(Drug, on_delete=models.PROTECT, related_name="ehr_codes")
    display = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ("system", "code")
        constraints = (models.UniqueConstraint(fields=("system", "code"), name="ehr_drug_code_unique"),)

    def __str__(self) -> str:
        return f"{self.system}|{self.code} -> {self.drug.name}"


class UsedJwtId(models.Model):
    issuer = models.CharField(max_length=500)
    jti = models.CharField(max_length=255)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = (models.UniqueConstraint(fields=("issuer", "jti"), name="ehr_jti_once"),)
        indexes = (models.Index(fields=("expires_at",)),)

    def __str__(self) -> str:
        return f"{self.issuer} {self.jti}"
