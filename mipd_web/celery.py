"""The Celery application.

Tasks live in each app's ``tasks.py``, take primary keys, call one service and are enqueued with
``task.delay_on_commit(...)`` so that a worker never sees a row before its transaction commits.
Configuration comes from the ``CELERY_*`` names in :mod:`mipd_web.settings`.
"""

import os
from typing import Any

from celery import Celery

from mipd_web.env import exit_on_configuration_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mipd_web.settings")

app = Celery("mipd_web", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_configure.connect
def _load_django_settings(sender: Celery, **kwargs: Any) -> None:
    """Load the Django settings before Celery reads them, so that a worker started with bad configuration
    prints the one-line message instead of a traceback."""
    from django.conf import settings

    with exit_on_configuration_error():
        settings.INSTALLED_APPS  # noqa: B018 (forces the settings module to load)
