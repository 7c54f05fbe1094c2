"""With a broker, a burst of new scores queues one recompute of a model version's figures per period."""

from unittest import mock

import pytest
from django.conf import settings
from django.core.cache import caches

from performance import services


@pytest.fixture
def broker_mode(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.PERFORMANCE_REFRESH_PERIOD_S = 120
    caches[settings.THROTTLE_CACHE].delete_many([f"performance-refresh:{pk}" for pk in (7, 8)])
    yield
    caches[settings.THROTTLE_CACHE].delete_many([f"performance-refresh:{pk}" for pk in (7, 8)])


@pytest.mark.usefixtures("broker_mode")
def test_a_burst_of_scores_queues_one_recompute_per_version_at_the_end_of_the_period() -> None:
    with mock.patch("performance.tasks.refresh_summary.apply_async") as queued:
        for _ in range(5):
            services._summary_refresh_later(7)
        services._summary_refresh_later(8)
    assert queued.call_args_list == [
        mock.call(kwargs={"model_version_id": 7}, countdown=120),
        mock.call(kwargs={"model_version_id": 8}, countdown=120),
    ]


@pytest.mark.usefixtures("broker_mode")
def test_once_the_period_is_over_the_next_score_queues_again() -> None:
    with mock.patch("performance.tasks.refresh_summary.apply_async") as queued:
        services._summary_refresh_later(7)
        caches[settings.THROTTLE_CACHE].delete("performance-refresh:7")  # the period has run out
        services._summary_refresh_later(7)
    assert queued.call_count == 2


def test_in_process_every_score_recomputes_at_once(settings) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    with mock.patch("performance.tasks.refresh_summary.delay") as ran:
        services._summary_refresh_later(7)
        services._summary_refresh_later(7)
    assert ran.call_count == 2
