"""Verification of the audit trail: every seal, every link, the head, and every audited row against it.

1. Each entry's seal is recomputed from its stored fields with the chain key: an entry changed in place
   no longer matches. Each entry must name the previous entry's hash and follow it without a gap: a removed
   or inserted entry breaks the link.
2. The chain head must be the last entry (a truncated tail shows as a head that is ahead).
3. Each row of a registered model (patients, measurements, levels, recommendations, signatures, drugs, model
   versions, users and their roles, ...) must be exactly the state its latest entry recorded: a row changed,
   inserted or deleted outside the application (e.g. by SQL) is reported with the entry it contradicts.

The report gives the first broken link and up to ``max_problems`` problems in chain order.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from audit.chain import GENESIS, SEALED_FIELDS, chain_key, key_id, seal
from audit.models import AuditEntry, ChainHead
from audit.recorder import row_hash, split_state
from audit.registry import specs

ROW_ACTIONS = frozenset(
    {
        AuditEntry.Action.CREATE,
        AuditEntry.Action.CHANGE,
        AuditEntry.Action.MARK_ENTERED_IN_ERROR,
        AuditEntry.Action.EXCLUDE,
    }
)


@dataclass
class VerificationReport:
    ok: bool = True
    entries: int = 0
    rows: int = 0
    first_broken_seq: int | None = None
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    head_hash: str = ""
    seconds: float = 0.0

    def problem(self, text: str, *, seq: int | None = None, limit: int) -> None:
        self.ok = False
        self.problem_count += 1
        if seq is not None and (self.first_broken_seq is None or seq < self.first_broken_seq):
            self.first_broken_seq = seq
        if len(self.problems) < limit:
            self.problems.append(text)

    @property
    def summary(self) -> str:
        if self.ok:
            return (
                f"intact: {self.entries} entries, {self.rows} audited rows match the trail; "
                f"head {self.head_hash[:16]}"
            )
        where = f"; first broken link at entry #{self.first_broken_seq}" if self.first_broken_seq else ""
        return f"BROKEN: {self.problem_count} problem(s){where}"


def verify_chain(
    *,
    using: str = "default",
    max_problems: int = 50,
    check_rows: bool = True,
    progress: Callable[[int], None] | None = None,
) -> VerificationReport:
    started = time.perf_counter()
    report = VerificationReport()
    key = chain_key()
    kid = key_id(key)
    # object type -> object id -> (the row hash recorded last, or None once deleted; the entry's seq)
    latest: dict[str, dict[str, tuple[str | None, int]]] = {}
    previous_hash, expected_seq = GENESIS, 1
    columns = (*SEALED_FIELDS, "entry_hash")
    rows = AuditEntry.objects.using(using).order_by("seq").values_list(*columns)
    for values in rows.iterator(chunk_size=5000):
        seq = values[0]
        report.entries += 1
        if seq != expected_seq:
            report.problem(
                f"entry #{expected_seq} is missing: the chain goes on at #{seq}",
                seq=expected_seq,
                limit=max_problems,
            )
        if values[13] != kid:
            report.problem(
                f"entry #{seq} was sealed with another key ({values[13]}; this server's is {kid})",
                seq=seq,
                limit=max_problems,
            )
        elif seal(values[:15], key) != values[15]:
            report.problem(
                f"entry #{seq} was altered: its seal does not match its content", seq=seq, limit=max_problems
            )
        if values[14] != previous_hash:
            report.problem(
                f"entry #{seq} does not follow entry #{seq - 1}: the previous hash it names differs",
                seq=seq,
                limit=max_problems,
            )
        action, object_type, object_id = values[4], values[5], values[6]
        if action in ROW_ACTIONS:
            latest.setdefault(object_type, {})[object_id] = (values[11], seq)
        elif action == AuditEntry.Action.DELETE:
            latest.setdefault(object_type, {})[object_id] = (None, seq)
        previous_hash, expected_seq = values[15], seq + 1
        if progress is not None and report.entries % 100_000 == 0:
            progress(report.entries)
    report.head_hash = previous_hash if report.entries else ""
    head = ChainHead.objects.using(using).filter(pk=1).first()
    last_seq = expected_seq - 1
    if head is not None and (head.seq != last_seq or (head.seq and head.entry_hash != previous_hash)):
        report.problem(
            f"the chain head names entry #{head.seq} but the last entry is #{last_seq}: entries were removed",
            seq=min(head.seq, last_seq) + 1,
            limit=max_problems,
        )
    if check_rows:
        _check_rows(report, latest, using=using, limit=max_problems)
    report.seconds = time.perf_counter() - started
    return report


def _check_rows(
    report: VerificationReport,
    latest: dict[str, dict[str, tuple[str | None, int]]],
    *,
    using: str,
    limit: int,
) -> None:
    for spec in specs():
        recorded_rows = latest.get(spec.label, {})
        seen: set[str] = set()
        pk_name = spec.model._meta.pk.attname
        values = spec.model._base_manager.using(using).order_by("pk").values(pk_name, *spec.attnames)
        for state in values.iterator(chunk_size=2000):
            report.rows += 1
            object_id = str(state[pk_name])
            seen.add(object_id)
            row, _ = split_state(spec, state)
            recorded = recorded_rows.get(object_id)
            if recorded is None:
                report.problem(
                    f"{spec.label} {object_id} is not in the audit trail: it was written outside the "
                    "application",
                    limit=limit,
                )
            elif recorded[0] is None:
                report.problem(
                    f"{spec.label} {object_id} exists although entry #{recorded[1]} records its deletion",
                    seq=recorded[1],
                    limit=limit,
                )
            elif recorded[0] != row_hash(row):
                report.problem(
                    f"{spec.label} {object_id} was changed outside the application: it no longer matches "
                    f"entry #{recorded[1]}",
                    seq=recorded[1],
                    limit=limit,
                )
        for object_id, (digest, seq) in recorded_rows.items():
            if digest is not None and object_id not in seen:
                report.problem(
                    f"{spec.label} {object_id} was deleted outside the application (last entry #{seq})",
                    seq=seq,
                    limit=limit,
                )


def summary_lines(report: VerificationReport) -> list[str]:
    lines = [report.summary]
    lines.extend(f"  - {problem}" for problem in report.problems)
    if report.problem_count > len(report.problems):
        lines.append(f"  ... and {report.problem_count - len(report.problems)} more")
    return lines


def report_as_dict(report: VerificationReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "entries": report.entries,
        "rows": report.rows,
        "first_broken_seq": report.first_broken_seq,
        "problems": report.problems,
        "problem_count": report.problem_count,
        "head_hash": report.head_hash,
        "seconds": report.seconds,
    }
