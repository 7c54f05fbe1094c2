"""Verification of an audit trail of 1,000,000 entries, timed as a person runs it: ``manage.py audit_verify``.

A scratch PostgreSQL database is created and migrated; the demo users, the model library and a few demo
patients are written through the application (their entries are real). The trail is then extended to
``--entries`` with sealed, correctly chained read entries (what a busy hospital's trail is mostly made of:
one per patient record opened), written with COPY. Then:

* ``manage.py audit_verify`` runs ``--runs`` times as a fresh process (the whole command: start-up, every
  seal and link recomputed, the head, every audited row compared with its latest entry); its wall time and
  the entries per second are printed;
* one entry in the middle is changed with the triggers off (as only a database superuser can), and the
  command runs once more: it must exit 1 and name that entry as the first broken link.

The scratch database is dropped at the end. The CPU may be shared: quote the figures with the load.

    python benchmarks/bench_audit_chain.py [--entries 1000000] [--runs 2]
        [--postgres postgresql://postgres@127.0.0.1:5432] [--keep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

from _scratch_services import admin_execute, django_with_library, services_missing  # noqa: E402
from bench_patient_page import scratch_environment  # noqa: E402 (the same production-like settings)

COLUMNS = (
    "seq",
    "at",
    "actor_id",
    "actor",
    "action",
    "object_type",
    "object_id",
    "patient_id",
    "before",
    "after",
    "reason",
    "row_sha256",
    "context",
    "key_id",
    "prev_hash",
    "entry_hash",
)


def extend_trail(target: int) -> tuple[int, float]:
    """Append sealed read entries until the trail has ``target`` entries; returns (added, seconds)."""
    from django.db import connection, transaction

    from audit.canonical import canonical_json
    from audit.chain import chain_key, key_id, seal
    from audit.models import AuditEntry, ChainHead
    from patients.models import Patient

    key, kid = chain_key(), key_id()
    patients = list(Patient.objects.values_list("pk", "public_id"))
    users = list(AuditEntry.objects.exclude(actor_id=None).values_list("actor_id", "actor").distinct()[:20])
    users = users or [(None, "system")]
    head = ChainHead.objects.get(pk=1)
    seq, previous = head.seq, head.entry_hash
    added = target - seq
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    tic = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        with cursor.copy(f"COPY audit_auditentry ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for i in range(added):
                seq += 1
                patient_pk, public_id = patients[i % len(patients)]
                actor_id, actor = users[i % len(users)]
                context = canonical_json(
                    {
                        "path": f"/patients/{public_id}/",
                        "method": "GET",
                        "address": f"10.1.{i % 250}.{i % 200}",
                    }
                )
                values = (
                    seq,
                    start + dt.timedelta(seconds=2 * i),
                    actor_id,
                    actor,
                    "read",
                    "patients.patient",
                    str(patient_pk),
                    uuid.UUID(str(public_id)),
                    "",
                    "",
                    "",
                    "",
                    context,
                    kid,
                    previous,
                )
                previous = seal(values, key)
                copy.write_row((*values, previous))
        cursor.execute("UPDATE audit_chainhead SET seq = %s, entry_hash = %s WHERE id = 1", [seq, previous])
    return added, time.perf_counter() - tic


def run_verify(env: dict[str, str]) -> tuple[float, int, str]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "manage.py", "audit_verify", "--max-problems", "5"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    output = (result.stdout + result.stderr).strip().splitlines()
    return time.perf_counter() - started, result.returncode, output[0] if output else ""


def measure(args: argparse.Namespace, env: dict[str, str]) -> None:
    django_with_library()
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from audit.models import AuditEntry
    from dosing.demo import demo_patients_seed

    demo_patients_seed(clinician=get_user_model().objects.get(username="demo-clinician"))
    real = AuditEntry.objects.count()
    added, seconds = extend_trail(args.entries)
    print(
        f"trail: {real:,} entries written by the application, {added:,} read entries added ({seconds:.1f} s)"
    )
    connection.close()
    load = os.getloadavg()[0]
    print(f"\nmanage.py audit_verify on {args.entries:,} entries ({os.cpu_count()} CPUs, load {load:.2f}):")
    for run in range(args.runs):
        wall, code, first_line = run_verify(env)
        rate = args.entries / wall
        print(f"  run {run + 1}: {wall:6.1f} s wall, {rate:,.0f} entries/s, exit {code}: {first_line[:100]}")
    middle = args.entries // 2
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE audit_auditentry SET actor = 'someone else' WHERE seq = %s", [middle])
    connection.close()
    wall, code, first_line = run_verify(env)
    print(f"  entry #{middle:,} changed: {wall:6.1f} s wall, exit {code}: {first_line[:100]}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database (its name is printed)")
    args = parser.parse_args()
    missing = services_missing(args.postgres, None)
    if missing:
        print(f"skipped: {missing}")
        return
    database = f"mipd_bench_audit_{os.getpid()}"
    os.environ.update(scratch_environment(f"{args.postgres}/{database}"))
    env = {**os.environ}
    admin_execute(args.postgres, f'CREATE DATABASE "{database}"')
    try:
        measure(args, env)
    finally:
        from django.db import connections

        connections.close_all()
        if args.keep:
            print(f"scratch database kept: {args.postgres}/{database}")
        else:
            admin_execute(args.postgres, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    main()
