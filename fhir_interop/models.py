"""What was imported from FHIR: each import with its full report, and each resource's identity.

A resource is known by (source, resource type, id): re-importing it changes nothing. A resource whose content
changed in the source is reported, never silently overwritten (the earlier entry is marked in error by a
clinician, then re-imported).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from patients.models import Patient


class FhirImport(models.Model):
    class Channel(models.TextChoices):
        UPLOAD = "upload", "File upload"
        API = "api", "REST API"
        SERVER = "server", "Pull from the FHIR server"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="fhir_imports", null=True)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    source = models.CharField(
        max_length=300, blank=True, help_text="FHIR server base URL, or empty for a file"
    )
    bundle_sha256 = models.CharField(max_length=64)
    counts = models.JSONField(default=dict, help_text="resources per outcome")
    report = models.JSONField(default=list, help_text="one line per resource: outcome and reason")
    imported_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-imported_at",)

    def __str__(self) -> str:
        return f"FHIR import {self.public_id} ({self.channel})"


class ImportedResource(models.Model):
    """One FHIR resource turned into one record of the application."""

    source = models.CharField(max_length=300, blank=True)
    resource_type = models.CharField(max_length=40)
    resource_id = models.CharField(max_length=64)
    content_sha256 = models.CharField(max_length=64)
    target = models.CharField(
        max_length=60, help_text="app label and model of the record, e.g. dosing.druglevel"
    )
    target_id = models.BigIntegerField()
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    fhir_import = models.ForeignKey(FhirImport, on_delete=models.PROTECT, related_name="resources")

    class Meta:
        constraints = (
            models.UniqueConstraint(
                fields=("source", "resource_type", "resource_id"), name="fhir_resource_identity_unique"
            ),
        )

    def __str__(self) -> str:
        return f"{self.resource_type}/{self.resource_id} -> {self.target} {self.target_id}"


class ExternalOrder(models.Model):
    """A medication order read from the hospital's record (a MedicationRequest): shown beside the course,
    never turned into a dose (a dose is what was given, a MedicationAdministration)."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="external_orders")
    drug_name = models.SlugField(max_length=64)
    status = models.CharField(max_length=20)
    intent = models.CharField(max_length=20)
    authored_on = models.DateTimeField(null=True, blank=True)
    text = models.TextField(blank=True, help_text="the dosage instructions as written in the order")
    imported_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    imported_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.drug_name} order ({self.status}, {self.intent})"
