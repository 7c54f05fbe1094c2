"""Issue an API token for a hospital system's account: printed once, stored as a digest, with an expiry."""

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from knox.models import AuthToken

from accounts.otp import second_factor_required
from audit import context


class Command(BaseCommand):
    help = (
        "Issue an API token for a system account (an EHR bridge, a lab interface). The token is printed "
        "once and stored only as a digest; it expires after --hours (default API_TOKEN_TTL_HOURS) and is "
        "revoked when the account's password changes. Accounts that need a second factor get none."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="the system account's user name")
        parser.add_argument(
            "--hours", type=int, default=settings.API_TOKEN_TTL_HOURS, help="lifetime in hours"
        )

    def handle(self, *args: Any, user: str, hours: int, **options: Any) -> None:
        account = get_user_model()._default_manager.filter(username=user, is_active=True).first()
        if account is None:
            raise CommandError(f"no active user '{user}'")
        if second_factor_required(user=account):
            raise CommandError(
                f"'{user}' signs in with a second factor (pharmacist, curator, auditor or staff): a token "
                "would by-pass it. Issue tokens to system accounts only."
            )
        if not 1 <= hours <= settings.API_TOKEN_TTL_HOURS:
            raise CommandError(f"--hours must be between 1 and {settings.API_TOKEN_TTL_HOURS}")
        with context.because(f"API token issued for {hours} h"):
            token_row, token = AuthToken.objects.create(user=account, expiry=dt.timedelta(hours=hours))
        self.stdout.write(f"Token for {user} (expires {token_row.expiry:%Y-%m-%d %H:%M} UTC), shown once:")
        self.stdout.write(token)
