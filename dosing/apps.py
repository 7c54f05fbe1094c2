from django.apps import AppConfig


class DosingConfig(AppConfig):
    name = "dosing"
    verbose_name = "Dosing"

    def ready(self) -> None:
        # patients cannot import dosing (dosing depends on patients): a new covariate, genotype or consent
        # reaches the patient's active courses through this hook.
        from dosing.services import updates_request_for_patient
        from patients import services as patient_services

        patient_services.covariates_changed_hook = updates_request_for_patient
