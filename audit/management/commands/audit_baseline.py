"""Record the rows of audited models that have no entry yet (after a data migration), with a reason."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.baseline import record_baseline


class Command(BaseCommand):
    help = (
        "Give every audited row without an entry a baseline entry, stating why (e.g. a data migration). "
        "Only for rows IT knows were written legitimately outside the application: the verification reports "
        "every other one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--reason", required=True, help="why these rows were written outside the app")

    def handle(self, *args: Any, reason: str, **options: Any) -> None:
        if not reason.strip():
            raise CommandError("say why the rows were written outside the application")
        count = record_baseline(reason=f"baseline: {reason.strip()}")
        self.stdout.write(f"{count} row(s) recorded in the audit trail.")
