from django.apps import AppConfig


class ModelsCatalogConfig(AppConfig):
    name = "models_catalog"
    verbose_name = "Model catalog"

    def ready(self) -> None:
        from audit.registry import register
        from models_catalog.models import (
            CatalogChangeRequest,
            CatalogEvent,
            Drug,
            ModelVersion,
            PgxRuleTable,
            TargetProtocol,
            ValidationRun,
        )

        # What doses are computed with: every change is in the audit trail; large documents by their hash.
        register(Drug)
        register(ModelVersion, digest=("document", "model_card", "reference_checks", "transcription"))
        register(ValidationRun, digest=("results",))
        register(TargetProtocol)
        register(PgxRuleTable, digest=("document",))
        register(CatalogEvent)
        register(CatalogChangeRequest)
