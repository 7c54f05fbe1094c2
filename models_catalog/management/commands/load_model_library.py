"""Load the shipped model library, drug defaults, target protocols and PGx tables into the catalog."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from models_catalog.library import LibraryError, library_load


class Command(BaseCommand):
    help = (
        "Load models_catalog/library/ (idempotent). Versions are validated against their reference values "
        "and stay 'validated' until two curators publish them: give --requested-by and --approved-by (two "
        "different model curators) to publish them in the same step."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--requested-by", help="username of the curator who submits the library")
        parser.add_argument("--approved-by", help="username of the second curator who approves it")

    def handle(self, *args: Any, requested_by: str | None, approved_by: str | None, **options: Any) -> None:
        users = get_user_model().objects
        try:
            requester = users.get(username=requested_by) if requested_by else None
            approver = users.get(username=approved_by) if approved_by else None
        except get_user_model().DoesNotExist as exc:
            raise CommandError(f"unknown user: {exc}") from None
        try:
            report = library_load(requested_by=requester, approved_by=approver)
        except LibraryError as exc:
            raise CommandError(f"the library files are broken: {exc}") from None
        except (PermissionDenied, ValidationError) as exc:  # they name the rule that was broken
            raise CommandError("; ".join(getattr(exc, "messages", [str(exc)]))) from None
        for label, items in (
            ("drugs created", report.drugs_created),
            ("target protocols created", report.targets_created),
            ("model versions created", report.versions_created),
            ("model versions published", report.versions_published),
            ("model versions already loaded", report.versions_unchanged),
            ("PGx tables loaded", report.pgx_tables_loaded),
        ):
            self.stdout.write(f"{label}: {len(items)}")
        for problem in report.problems:
            self.stderr.write(self.style.WARNING(f"problem: {problem}"))
        if report.problems:
            raise CommandError(f"{len(report.problems)} library entr(y/ies) could not be loaded (see above)")
