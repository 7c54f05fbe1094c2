from typing import Any

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

        # The catalog cannot import dosing either: a version published or retired reaches the drug's active
        # courses through its audit event (a refit, when REFIT_ON_CATALOG_CHANGE_AS names the account).
        from django.db.models.signals import post_save

        from models_catalog.models import CatalogEvent

        post_save.connect(_catalog_event_saved, sender=CatalogEvent, dispatch_uid="dosing-refit-on-catalog")

        from audit.registry import register
        from dosing.models import (
            BayesianUpdate,
            DoseAdministration,
            DrugLevel,
            DrugModelStrategy,
            ElectronicSignature,
            Recommendation,
            TherapyCourse,
        )

        # Every write to a course and its results leaves an audit entry; stored results by their hash.
        register(TherapyCourse, patient="patient__public_id")
        register(DoseAdministration, patient="course__patient__public_id")
        register(DrugLevel, patient="course__patient__public_id")
        register(BayesianUpdate, patient="course__patient__public_id", digest=("inputs", "results"))
        register(Recommendation, patient="course__patient__public_id", digest=("candidates",))
        register(ElectronicSignature, patient="recommendation__course__patient__public_id")
        register(DrugModelStrategy)


def _catalog_event_saved(sender: type, instance: Any, created: bool, **kwargs: Any) -> None:
    if created and instance.model_version_id is not None:
        from dosing.refit import refit_after_catalog_change

        refit_after_catalog_change(model_version=instance.model_version, action=instance.action)
