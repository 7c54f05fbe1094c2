"""Django admin for the catalog. Model versions move through their life only via the curator pages and the
services (four-eyes, validation, audit); the admin shows everything read-only."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from models_catalog.models import (
    CatalogEvent,
    Drug,
    ModelVersion,
    PgxRuleTable,
    TargetProtocol,
    ValidationRun,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Drug)
class DrugAdmin(ReadOnlyAdmin):
    """Limits are edited on the catalog pages (curators only, audited), not here."""

    list_display = (
        "name",
        "display_name",
        "atc_code",
        "dose_step_mg",
        "max_single_dose_mg",
        "max_daily_dose_mg",
    )
    search_fields = ("name", "display_name", "atc_code")


@admin.register(TargetProtocol)
class TargetProtocolAdmin(ReadOnlyAdmin):
    """Edited through the catalog pages, which check the target with the engine and keep the audit trail."""

    list_display = ("drug", "indication", "metric", "active", "updated_at", "updated_by")
    list_filter = ("drug", "active")


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ("model_id", "version", "drug", "status", "published_by", "published_at")
    list_filter = ("status", "drug")
    search_fields = ("model_id", "title", "citation_text", "doi")


@admin.register(ValidationRun)
class ValidationRunAdmin(ReadOnlyAdmin):
    list_display = ("model_version", "success", "engine_version", "run_by", "run_at")
    list_filter = ("success",)


@admin.register(PgxRuleTable)
class PgxRuleTableAdmin(ReadOnlyAdmin):
    list_display = ("table_id", "guideline_version", "doi", "loaded_at")


@admin.register(CatalogEvent)
class CatalogEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "action", "actor", "model_version", "target_protocol")
    list_filter = ("action",)
