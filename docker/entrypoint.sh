#!/bin/sh
# Check the configuration before starting anything: a missing or malformed variable stops the container
# with one line naming it (see mipd_web/env.py), whatever the command is (web, worker, migrate).
set -eu
cd /app
python manage.py check --fail-level ERROR >/dev/null
exec "$@"
