"""The processes the fault tests start, stop and kill: Redis, PostgreSQL, a Celery worker and beat.

Everything listens on 127.0.0.1 only, on the ports below, keeps its files in a temporary directory and is
stopped by the fixture that started it, whatever the test's outcome.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

REPO_ROOT = Path(__file__).resolve().parents[2]
REDIS_PORT = 16141
POSTGRES_PORT = 15441
# Overridable for machines that keep them elsewhere (and to check that CI fails without them).
POSTGRES_BIN = Path(os.environ.get("MIPD_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
REDIS_SERVER = os.environ.get("MIPD_REDIS_SERVER", "redis-server")
HOW_TO_INSTALL = "apt-get install -y redis-server postgresql-15 (.ci/run's machine has both)"


def binary_problem() -> str | None:
    """Why the fault tests cannot start their processes, or None when they can."""
    missing = [name for name in (REDIS_SERVER, "runuser") if shutil.which(name) is None]
    missing += [
        str(POSTGRES_BIN / name) for name in ("initdb", "pg_ctl") if not (POSTGRES_BIN / name).is_file()
    ]
    if missing:
        return f"not found: {', '.join(missing)}"
    if os.geteuid() != 0:
        return "not root: initdb runs as user postgres through runuser, which needs root"
    return None


def wait_for(check: Callable[[], bool], *, timeout_s: float, what: str, interval_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval_s)
    raise AssertionError(f"{what}: not within {timeout_s:g} s")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class RedisServer:
    """A redis-server of the test's own, without persistence: a restart starts empty, as a crash would."""

    def __init__(self, directory: Path, port: int = REDIS_PORT) -> None:
        self.directory = directory
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_connect_timeout=0.5, socket_timeout=2)

    def answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        assert not self.answers(), f"something already listens on 127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_for(self.answers, timeout_s=10, what=f"redis-server answering on port {self.port}")

    def kill(self) -> None:
        """SIGKILL: nothing is written, every queued and unacknowledged message is gone."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


class CeleryProcess:
    """``celery worker`` (through tests.faults.worker) or ``celery beat`` in a process of its own."""

    def __init__(
        self, *, argv: list[str], env: dict[str, str], log: Path, stop_signal: int = signal.SIGTERM
    ) -> None:
        self.argv, self.env, self.log, self.stop_signal = argv, env, log, stop_signal
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def worker(cls, *, name: str, env: dict[str, str], directory: Path) -> CeleryProcess:
        argv = [sys.executable, "-m", "tests.faults.worker", "--pool=prefork", "--concurrency=1"]
        argv += [f"--hostname={name}@faults", "--without-mingle", "--without-gossip", "--loglevel=INFO"]
        # The test is over when it stops a worker: a cold shutdown does not wait for queued periodic tasks.
        return cls(argv=argv, env=env, log=directory / f"{name}.log", stop_signal=signal.SIGQUIT)

    @classmethod
    def beat(cls, *, env: dict[str, str], directory: Path) -> CeleryProcess:
        argv = [sys.executable, "-m", "celery", "-A", "mipd_web", "beat", "--loglevel=INFO"]
        argv += [f"--schedule={directory / 'beat-schedule'}", f"--pidfile={directory / 'beat.pid'}"]
        return cls(argv=argv, env=env, log=directory / "beat.log")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def pool_children(self) -> list[int]:
        """The pids of the worker's pool processes (its children), read from /proc."""
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # the process ended meanwhile
            if int(fields[1]) == self.pid:  # fields: state, ppid, ...
                children.append(int(stat.parent.name))
        return sorted(children)

    def kill(self) -> None:
        """SIGKILL the process and its pool processes at once, as the end of its container or machine does."""
        assert self.process is not None and self.alive()
        children = self.pool_children()
        self.process.kill()
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop it and its pool children, whatever state they are in."""
        if self.process is None:
            return
        children = self.pool_children() if self.alive() else []
        if self.alive():
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def log_tail(self) -> str:
        return f"--- {self.log.name} ---\n{_tail(self.log)}"


class PostgresCluster:
    """A PostgreSQL 15 cluster of the test's own (initdb as user postgres), stopped and started at will."""

    def __init__(self, directory: Path, port: int = POSTGRES_PORT) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.log = directory / "postgres.log"
        self.port = port

    def _as_postgres(self, *argv: str, timeout_s: float = 60) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *argv],
            check=True,
            timeout=timeout_s,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def init(self) -> None:
        shutil.chown(self.directory, user="postgres")
        self._as_postgres(
            str(POSTGRES_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        )

    def start(self) -> None:
        options = f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(
            str(POSTGRES_BIN / "pg_ctl"),
            "start",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "30",
            "-o",
            options,
        )

    def stop(self, mode: str = "fast") -> None:
        """``fast``: open transactions are rolled back and every client is disconnected (a restart)."""
        if (self.data / "postmaster.pid").exists():
            self._as_postgres(str(POSTGRES_BIN / "pg_ctl"), "stop", "-D", str(self.data), "-m", mode, "-w")

    def _address(self) -> list[str]:
        return ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]

    def copy_database(self, *, source: dict[str, Any], name: str) -> None:
        """Create ``name`` here as a copy of the database ``source`` (Django settings) names: its schema, as
        the migrations made it, and its rows. Faster than migrating again (seconds, not half a minute)."""
        subprocess.run(
            [str(POSTGRES_BIN / "createdb"), *self._address(), name],
            check=True,
            timeout=30,
        )
        dump = subprocess.Popen(
            [
                str(POSTGRES_BIN / "pg_dump"),
                "--no-owner",
                "--no-privileges",
                "-h",
                source["HOST"] or "127.0.0.1",
                "-p",
                str(source["PORT"] or 5432),
                "-U",
                source["USER"],
                source["NAME"],
            ],
            env={**os.environ, "PGPASSWORD": source["PASSWORD"] or ""},
            stdout=subprocess.PIPE,
        )
        try:
            subprocess.run(
                [
                    str(POSTGRES_BIN / "psql"),
                    "-X",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    *self._address(),
                    "-d",
                    name,
                ],
                stdin=dump.stdout,
                stdout=subprocess.DEVNULL,
                check=True,
                timeout=60,
            )
        finally:
            assert dump.stdout is not None
            dump.stdout.close()
            assert dump.wait(timeout=30) == 0, "pg_dump failed"

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def log_tail(self) -> str:
        return f"--- postgres.log ---\n{_tail(self.log)}"
