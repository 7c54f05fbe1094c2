"""Admin for API tokens: listed by their digest (the token itself is never stored), revoked by deleting.

Tokens are issued with ``manage.py api_token_issue`` only (it enforces the expiry and the account rules).
"""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from knox.models import AuthToken

admin.site.unregister(AuthToken)


@admin.register(AuthToken)
class AuthTokenAdmin(admin.ModelAdmin):
    list_display = ("token_key", "user", "created", "expiry")
    search_fields = ("token_key", "user__username")
    readonly_fields = ("token_key", "user", "created", "expiry")
    exclude = ("digest",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
