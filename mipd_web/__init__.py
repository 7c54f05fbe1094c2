"""Wiring of the mipd-web Django project: settings, URLs, Celery app, WSGI/ASGI entry points."""

# Load the Celery app whenever Django starts, so that @shared_task binds to it.
from mipd_web.celery import app as celery_app

__all__ = ("celery_app",)
