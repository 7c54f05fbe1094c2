"""Create the demo users of the embedded default (one per role) and print their passwords once; load the model
library and the demo patients."""

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.services import demo_users_seed
from dosing.demo import demo_device_seed, demo_patients_seed
from performance.demo import demo_history_seed


class Command(BaseCommand):
    help = (
        "Create the demo users (one per role, two curators), load the published model library and create "
        "the demo patients (idempotent). New passwords are printed once; existing users keep theirs unless "
        "--reset-passwords is given. Runs only with DEBUG on unless --force is given."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset-passwords", action="store_true", help="give every demo user a new password"
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="run with DEBUG off (never on a production database: the demo users can log in)",
        )

    def handle(self, *args: Any, reset_passwords: bool, force: bool, **options: Any) -> None:
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_demo creates demo users that can log in; it runs only for the embedded default "
                "(DEBUG on). Use --force for a throw-away database, never for production."
            )
        seeded = demo_users_seed(reset_passwords=reset_passwords)
        self.stdout.write("Demo users (log in at /accounts/login/):")
        for user in seeded:
            totp = f"  totp secret {user.totp_secret}" if user.totp_secret else ""
            if user.password is not None:
                state = "created" if user.created else "new password"
                who = f"  {user.username:<16} role {user.role.value:<14}"
                line = f"{who} password {user.password}{totp}  ({state})"
                self.stdout.write(self.style.SUCCESS(line))
            else:
                self.stdout.write(
                    f"  {user.username:<16} role {user.role.value:<14} (exists, password unchanged){totp}"
                )
        if any(user.password is None for user in seeded):
            self.stdout.write("Passwords are printed only when set: `make demo-passwords` sets new ones.")
        if any(user.totp_secret for user in seeded):
            self.stdout.write(
                "Users with a totp secret sign in with a second factor: add the secret to an authenticator "
                "app (6 digits, 30 s), or run `oathtool --totp -b SECRET`, and type the code after the "
                "password."
            )
        # The shipped model library, published by the two demo curators (four-eyes, as in production).
        call_command(
            "load_model_library",
            requested_by="demo-curator",
            approved_by="demo-curator-2",
            stdout=self.stdout,
        )
        # Demo patients on the published models; their first Bayesian updates run as each one is saved.
        self.stdout.write("Demo patients:")
        clinician = get_user_model().objects.get(username="demo-clinician")
        for line in demo_patients_seed(clinician=clinician):
            self.stdout.write(f"  {line}")
        # A synthetic history of scored levels, so that the model performance page has figures and an alert.
        self.stdout.write(f"  {demo_history_seed(clinician=clinician)}")
        self.stdout.write(f"Monitoring devices:\n  {demo_device_seed()}")
