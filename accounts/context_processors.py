"""Template context: what the navigation shows depends on the roles."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.roles import Role
from accounts.selectors import user_has_role


def roles(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    return {
        "user_is_auditor": SimpleLazyObject(
            lambda: user is not None and user_has_role(user=user, role=Role.AUDITOR)
        ),
        # curators and pharmacists: the model performance page (local prediction errors and alerts)
        "user_sees_model_performance": SimpleLazyObject(
            lambda: (
                user is not None
                and any(user_has_role(user=user, role=role) for role in (Role.MODEL_CURATOR, Role.PHARMACIST))
            )
        ),
    }
