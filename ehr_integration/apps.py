from django.apps import AppConfig


class EhrIntegrationConfig(AppConfig):
    name = "ehr_integration"
    verbose_name = "EHR integration (CDS Hooks, SMART launch)"

    def ready(self) -> None:
        from audit.registry import register
        from ehr_integration.models import DrugCode, EhrSystem, EhrUserLink, PatientIdentifier

        # Who may call us and who may sign in through the EHR are security settings: every change is audited.
        register(EhrSystem)
        register(EhrUserLink)
        register(DrugCode)
        register(PatientIdentifier, patient="patient__public_id")
