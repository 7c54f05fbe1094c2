"""Where IT configures the EHR systems, the id tables and the drug codes (docs/ehr-integration.md)."""

from django.contrib import admin

from ehr_integration.models import DrugCode, EhrSystem, EhrUserLink, PatientIdentifier


@admin.register(EhrSystem)
class EhrSystemAdmin(admin.ModelAdmin):
    list_display = ("name", "active", "cds_issuer", "fhir_base_url", "smart_client_id")
    list_filter = ("active",)
    search_fields = ("name", "cds_issuer", "fhir_base_url")


@admin.register(PatientIdentifier)
class PatientIdentifierAdmin(admin.ModelAdmin):
    list_display = ("system", "ehr_patient_id", "patient")
    list_filter = ("system",)
    search_fields = ("ehr_patient_id", "patient__mrn")
    raw_id_fields = ("patient",)


@admin.register(EhrUserLink)
class EhrUserLinkAdmin(admin.ModelAdmin):
    list_display = ("system", "fhir_user", "user")
    list_filter = ("system",)
    search_fields = ("fhir_user", "user__username")
    raw_id_fields = ("user",)


@admin.register(DrugCode)
class DrugCodeAdmin(admin.ModelAdmin):
    list_display = ("system", "code", "display", "drug")
    list_filter = ("system", "drug")
    search_fields = ("code", "display")
