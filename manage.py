#!/usr/bin/env python
"""Django's command-line utility for mipd-web."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mipd_web.settings")
    from django.conf import settings
    from django.core.management import execute_from_command_line

    from mipd_web.env import exit_on_configuration_error

    with exit_on_configuration_error():
        settings.INSTALLED_APPS  # noqa: B018 (load the settings first: bad configuration is one line, not a traceback)
        execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
