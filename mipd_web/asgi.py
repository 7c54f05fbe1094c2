"""ASGI entry point (for an ASGI server; production uses gunicorn with WSGI)."""

import os

from django.core.asgi import get_asgi_application

from mipd_web.env import exit_on_configuration_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mipd_web.settings")

with exit_on_configuration_error(exit_code=3):
    application = get_asgi_application()
