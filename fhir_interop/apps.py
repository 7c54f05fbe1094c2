from django.apps import AppConfig


class FhirInteropConfig(AppConfig):
    name = "fhir_interop"
    verbose_name = "FHIR import and export"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from audit.registry import register
        from fhir_interop.models import ExternalOrder, FhirImport, ImportedResource

        register(FhirImport, patient="patient__public_id", digest=("report",))
        register(ImportedResource, patient="patient__public_id")
        register(ExternalOrder, patient="patient__public_id")
