"""Admin for IT: care teams (who sees which patients) and the emergency accesses to review.

Clinical data itself is not edited here: the pages and the API keep the rules and the audit trail.
"""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from patients.models import BreakGlassAccess, CareTeam


@admin.register(CareTeam)
class CareTeamAdmin(admin.ModelAdmin):
    list_display = ("name", "covers_all_wards", "active")
    list_filter = ("active", "covers_all_wards")
    search_fields = ("name",)
    filter_horizontal = ("members",)
    raw_id_fields = ("patients",)


@admin.register(BreakGlassAccess)
class BreakGlassAccessAdmin(admin.ModelAdmin):
    """Every emergency access, for review; none is created or changed here."""

    list_display = ("granted_at", "user", "patient", "expires_at", "reason")
    list_filter = ("granted_at",)
    search_fields = ("user__username", "patient__mrn", "reason")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
