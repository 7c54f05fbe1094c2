"""Queue a Bayesian update for every active course of a drug (``dosing.refit``), and wait for them."""

from collections import Counter
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dosing.refit import refit_queue, refit_report, refit_scope, refit_wait


class Command(BaseCommand):
    help = (
        "Refit every active course of a drug (after an engine or library release): one Bayesian update per "
        "course, queued through the outbox. Courses with an update queued or running are skipped; pending "
        "recommendations stay until the refit replaces them, signed ones are never touched. --wait polls "
        "until every update has finished; exit 1 when some failed or --timeout passed first. --report "
        "(implies --wait) lists per course the recommended regimen and PTA before and after, and the change."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--drug", required=True, help="the drug's name in the catalog, e.g. vancomycin")
        parser.add_argument(
            "--model-version",
            default="",
            help="only the courses pinned to this version: MODEL_ID@VERSION, or VERSION when it is unique",
        )
        parser.add_argument(
            "--requested-by", required=True, help="the clinician account the updates are recorded for"
        )
        parser.add_argument("--wait", action="store_true", help="wait until every queued update finished")
        parser.add_argument("--timeout", type=float, default=3600.0, help="seconds --wait waits at most")
        parser.add_argument(
            "--report",
            action="store_true",
            help="wait, then list per course the recommended regimen and PTA before and after the refit",
        )

    def handle(
        self,
        *args: Any,
        drug: str,
        model_version: str,
        requested_by: str,
        wait: bool,
        timeout: float,
        report: bool,
        **options: Any,
    ) -> None:
        if timeout <= 0:
            raise CommandError("--timeout must be a positive number of seconds")
        user = get_user_model()._default_manager.filter(username=requested_by, is_active=True).first()
        if user is None:
            raise CommandError(f"no active user '{requested_by}'")
        try:
            found_drug, version = refit_scope(drug=drug, model_version=model_version)
            queued = refit_queue(drug=found_drug, model_version=version, user=user)
        except (PermissionDenied, ValidationError) as exc:
            raise CommandError("; ".join(getattr(exc, "messages", [str(exc)]))) from None
        self.stdout.write(
            f"active courses: {queued.courses}; updates queued: {len(queued.update_ids)}; "
            f"skipped (an update already queued or running): {queued.skipped_pending}"
        )
        if not (wait or report) or not queued.update_ids:
            return
        progress = refit_wait(update_ids=queued.update_ids, timeout_s=timeout)
        counts = ", ".join(f"{status} {n}" for status, n in sorted(progress.counts.items()))
        self.stdout.write(f"after {progress.waited_s:.1f} s: {counts}")
        if report:
            changes = refit_report(update_ids=queued.update_ids)
            for change in changes:
                self.stdout.write(change.line())
            outcomes = Counter(change.outcome for change in changes)
            self.stdout.write("changes: " + ", ".join(f"{k} {n}" for k, n in sorted(outcomes.items())))
        if progress.pending:
            raise CommandError(f"{progress.pending} update(s) still queued or running after {timeout:g} s")
        failed = progress.counts.get("failed", 0)
        if failed:
            raise CommandError(f"{failed} update(s) failed: their reasons are on the course pages")
