#!/usr/bin/env bash
# The embedded default for development: DEBUG on, a local secret key, SQLite under var/ and Celery tasks run
# in process unless DATABASE_URL / REDIS_URL are set in the environment.
#   scripts/dev.sh run            migrate, seed the demo data, serve http://127.0.0.1:8000
#   scripts/dev.sh manage ARGS... run manage.py ARGS with the same environment
# `make run` calls it after creating the virtual environment (VENV, default .venv).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
  echo "No virtual environment at $VENV: use 'make run', which creates it." >&2
  exit 1
fi

mkdir -p var
KEY_FILE=var/dev-secret-key
if [ ! -s "$KEY_FILE" ]; then
  (umask 077 && "$PY" -c 'import secrets; print(secrets.token_urlsafe(50))' >"$KEY_FILE")
  echo "Created a local secret key in $KEY_FILE (kept for later runs, never committed)."
fi

export DEBUG=1
export SECRET_KEY_FILE="$PWD/$KEY_FILE"
unset SECRET_KEY

case "${1:-run}" in
  run)
    "$PY" manage.py migrate --noinput
    "$PY" manage.py seed_demo
    echo
    echo "mipd-web: http://127.0.0.1:8000 (log in with a demo user above; Ctrl-C stops the server)"
    exec "$PY" manage.py runserver 127.0.0.1:8000
    ;;
  manage)
    shift
    exec "$PY" manage.py "$@"
    ;;
  *)
    echo "usage: $0 [run | manage ARGS...]" >&2
    exit 2
    ;;
esac
