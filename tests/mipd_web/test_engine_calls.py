"""Engine calls inside a request (``mipd_web.engine_calls``): the budget of the settings and a per-process
cap on calls at once; the 503s they lead to are tested in tests/dosing/test_engine_unavailable.py."""

from __future__ import annotations

import threading
import time

import pytest
from django.test import override_settings

from mipd_engine.deadline import remaining_s
from mipd_web import engine_calls
from mipd_web.engine_calls import EngineBusy, EngineTimedOut, engine_call


@pytest.fixture
def quick_queue(monkeypatch):
    monkeypatch.setattr(engine_calls, "QUEUE_WAIT_S", 0.05)


def test_it_returns_the_result_within_the_budget_of_the_settings() -> None:
    def work(a, *, b):
        return a + b, remaining_s()

    with override_settings(ENGINE_REQUEST_BUDGET_S=3.0):
        total, left = engine_call(work, 1, b=2)
        assert total == 3 and 2.5 < left <= 3.0
        _, left = engine_call(work, 1, b=2, budget_s=0.5)
        assert 0 < left <= 0.5  # a caller's own budget
    assert remaining_s() is None  # the budget ends with the call


@override_settings(ENGINE_MAX_CONCURRENT_PER_PROCESS=2)
def test_a_third_call_while_two_run_is_refused_and_the_slots_come_back(quick_queue) -> None:
    started, release = threading.Barrier(3), threading.Event()
    results: list[str] = []

    def hold():
        started.wait()
        release.wait(5)
        return "done"

    workers = [threading.Thread(target=lambda: results.append(engine_call(hold))) for _ in range(2)]
    for worker in workers:
        worker.start()
    started.wait()
    time.sleep(0.05)  # both workers are inside their slot
    with pytest.raises(EngineBusy, match="all 2 of this server's engine slots"):
        engine_call(lambda: "third")
    release.set()
    for worker in workers:
        worker.join()
    assert results == ["done", "done"]
    assert engine_call(lambda: "again") == "again"  # released, also after a failure:
    with pytest.raises(ZeroDivisionError):
        engine_call(lambda: 1 / 0)
    assert [engine_call(abs, -n) for n in range(3)] == [0, 1, 2]


def test_a_budget_that_runs_out_is_an_engine_timeout_not_a_result() -> None:
    from mipd_engine.deadline import check_deadline

    def slow():
        while True:
            time.sleep(0.01)
            check_deadline()

    started = time.monotonic()
    with pytest.raises(EngineTimedOut, match=r"budget of 0\.05 s") as stopped:
        engine_call(slow, budget_s=0.05)
    assert time.monotonic() - started < 1.0
    assert stopped.value.retry_after_s == engine_calls.DEADLINE_RETRY_AFTER_S
