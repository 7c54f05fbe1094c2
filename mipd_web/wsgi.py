"""WSGI entry point (gunicorn mipd_web.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

from mipd_web.env import exit_on_configuration_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mipd_web.settings")

# Exit code 3 is gunicorn's "worker failed to boot": the master stops instead of respawning workers forever.
with exit_on_configuration_error(exit_code=3):
    application = get_wsgi_application()
