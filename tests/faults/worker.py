"""The Celery worker of the fault tests: the production worker, with each update's engine run held open.

``python -m tests.faults.worker CELERY-WORKER-ARGS...`` starts ``celery worker`` in this process after one
change: ``recommend_case`` (the engine's fit and regimen search, called by ``dosing.services.update_run``)
first writes ``started-<update id>-<pid>`` into ``FAULTS_MARK_DIR`` and sleeps ``FAULTS_ENGINE_DELAY_S``
seconds, then writes ``finished-<update id>-<pid>`` after the real engine call returns. The tests kill
processes while an update is inside that window: its row claimed and its inputs written, no result yet.
Prefork pool children are forked from this process, so they inherit the change.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any


def _hold_the_engine(mark_dir: Path, delay_s: float) -> None:
    from dosing import services, tasks

    running: dict[str, int] = {}  # the update this pool process is running (one task at a time)
    real_update_run, real_recommend_case = tasks.update_run, services.recommend_case

    def update_run(*, update_id: int, **kwargs: Any) -> Any:
        running["update_id"] = update_id
        return real_update_run(update_id=update_id, **kwargs)

    def recommend_case(case: Any, **kwargs: Any) -> dict[str, Any]:
        name = f"{running.get('update_id', 'unknown')}-{os.getpid()}"
        (mark_dir / f"started-{name}").touch()
        time.sleep(delay_s)
        result = real_recommend_case(case, **kwargs)
        (mark_dir / f"finished-{name}").touch()
        return result

    tasks.update_run = update_run
    services.recommend_case = recommend_case


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mipd_web.settings")
    import django

    django.setup()
    _hold_the_engine(Path(os.environ["FAULTS_MARK_DIR"]), float(os.environ["FAULTS_ENGINE_DELAY_S"]))
    from mipd_web.celery import app

    app.worker_main(["worker", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
