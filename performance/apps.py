from django.apps import AppConfig


class PerformanceConfig(AppConfig):
    name = "performance"
    verbose_name = "Model performance"

    def ready(self) -> None:
        # performance sits above dosing and models_catalog (it reads their rows); they cannot import it, so
        # they ask through their hooks: a newly scored level, the warnings of a recommendation, and the
        # model card's section.
        from dosing import hooks as dosing_hooks
        from models_catalog import hooks as catalog_hooks
        from performance import services

        dosing_hooks.level_scored.append(services.score_record_from_hook)
        dosing_hooks.recommendation_alerts.append(services.alerts_for_course)
        catalog_hooks.model_card_sections.append(services.model_card_section)

        from audit.registry import register
        from performance.models import PerformanceAlert

        register(PerformanceAlert)  # raised and closed alerts: who closed one, when and why
