"""API tokens (django-rest-knox): hashed at rest (SHA-512 digest), each with an expiry, shown once.

A token is one factor. It is issued by the hospital's IT for a system account (``manage.py api_token_issue``),
never to a user who must sign in with a second factor (pharmacists, curators, auditors, staff): their token
would by-pass it. A user's tokens are revoked when the password changes or the account is deactivated
(``accounts.signals``).
"""

from __future__ import annotations

from typing import Any

from knox.auth import TokenAuthentication
from rest_framework import exceptions

from accounts.otp import second_factor_required
from audit import context


class ExpiringTokenAuthentication(TokenAuthentication):
    """Knox's token check (digest lookup, expiry), refused for accounts that need a second factor."""

    def authenticate_credentials(self, token: bytes) -> tuple[Any, Any]:
        user, auth_token = super().authenticate_credentials(token)
        if second_factor_required(user=user):
            raise exceptions.AuthenticationFailed(
                "this account signs in with a second factor: API tokens are for system accounts only"
            )
        # The audit entries of this request name the token's user (the middleware ran before DRF knew it).
        context.set_for_request(
            context.user_actor(user, **context.current().context, token=auth_token.token_key)
        )
        return user, auth_token
