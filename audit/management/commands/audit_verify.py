"""Verify the audit trail: seals, links, head, and every audited row against its latest entry."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from audit.services import verification_run


class Command(BaseCommand):
    help = (
        "Verify the audit trail (every entry's seal and link, the chain head, and each audited row against "
        "its latest entry). Prints the first broken link; exits 1 when the trail is broken."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--max-problems", type=int, default=50, help="problems listed (default 50)")

    def handle(self, *args: Any, max_problems: int, **options: Any) -> None:
        run = verification_run(max_problems=max_problems)
        if run.ok:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Audit trail intact: {run.entries} entries, {run.rows} audited rows match it "
                    f"({run.seconds:.1f} s). Head: {run.head_hash}"
                )
            )
            return
        where = f"first broken link: entry #{run.first_broken_seq}" if run.first_broken_seq else "rows only"
        self.stderr.write(self.style.ERROR(f"Audit trail BROKEN ({where}):"))
        for problem in run.problems:
            self.stderr.write(f"  - {problem}")
        raise SystemExit(1)
