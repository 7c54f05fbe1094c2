# mipd-web image: the same image runs the web server (gunicorn), the Celery worker and migrations.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system mipd && useradd --system --gid mipd --home-dir /app --shell /usr/sbin/nologin mipd

WORKDIR /app

# Dependencies first (cached until pyproject.toml changes), then the project itself.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .
# The project runs from /app, where templates/ and static/ sit beside the packages: install it in place.
RUN pip install --no-deps -e . \
    && SECRET_KEY=collectstatic-only DATABASE_URL=sqlite:////tmp/unused.sqlite3 \
       python manage.py collectstatic --noinput --verbosity 0 \
    && chmod +x docker/entrypoint.sh

USER mipd
EXPOSE 8000

ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["gunicorn", "mipd_web.wsgi:application", "--bind", "0.0.0.0:8000", "--access-logfile", "-", "--timeout", "60"]
