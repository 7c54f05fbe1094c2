"""Django settings for mipd-web: every value comes from an environment variable.

Defaults are safe for production (DEBUG off, secure cookies, HSTS, HTTPS redirect). The dev command
(``make run``) turns DEBUG on and provides a local SECRET_KEY. README.md lists every variable.
"""

import datetime as dt
from pathlib import Path

from mipd_web.env import (
    ConfigurationError,
    env_bool,
    env_database,
    env_float,
    env_int,
    env_list,
    env_log_level,
    env_origins,
    env_proxy_ssl_header,
    env_rate,
    env_secret,
    env_str,
    env_time_zone,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", default=False)
SECRET_KEY = env_secret("SECRET_KEY", required=not DEBUG) or "django-insecure-debug-only-not-for-production"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "csp",
    "audit",
    "accounts",
    "health",
    "patients",
    "models_catalog",
    "dosing",
    "ehr_integration",
    "performance",
    "fhir_interop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "mipd_web.middleware.QueryStringGuardMiddleware",  # a NUL byte or a '²' in a query: 400 before any view
    "mipd_web.middleware.ApiBodyMiddleware",  # the raw body stays readable after a multipart form is parsed
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Below WhiteNoise: static files keep their long cache; every page and API answer is no-store.
    "mipd_web.middleware.NoStoreMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "accounts.middleware.RequestRoleCacheMiddleware",  # roles read once per request
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "accounts.middleware.SessionIdleTimeoutMiddleware",
    "accounts.middleware.SecondFactorRequiredMiddleware",
    "audit.middleware.AuditRequestMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "mipd_web.middleware.EngineUnavailableMiddleware",  # an engine call refused or out of time: 503
    "mipd_web.middleware.DatabaseUnavailableMiddleware",  # the database gone mid-request: 503, not 500
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into the lockout page
]

ROOT_URLCONF = "mipd_web.urls"
WSGI_APPLICATION = "mipd_web.wsgi.application"

# Django's form templates, the plain select built in Python (the same HTML, without a template per option).
FORM_RENDERER = "mipd_web.form_renderer.FormRenderer"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.roles",
            ],
        },
    },
]

# Database: PostgreSQL in production, a SQLite file under var/ for the embedded default.
DATABASES = {
    "default": env_database(
        "DATABASE_URL",
        default=f"sqlite:///{BASE_DIR / 'var' / 'mipd.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", default=60, minimum=0),
    )
}
# The same backends with the audit trail written as part of each commit (audit.backends).
DATABASES["default"]["ENGINE"] = {
    "django.db.backends.postgresql": "audit.backends.postgresql",
    "django.db.backends.sqlite3": "audit.backends.sqlite3",
}[DATABASES["default"]["ENGINE"]]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Authentication: Argon2id for new and changed passwords (older hashes are upgraded at the next sign-in).
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
# django-axes counts failed sign-ins (login page, admin, anything calling authenticate()) per user name.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:home"
LOGOUT_REDIRECT_URL = "accounts:login"
# A clinical workstation is shared: sessions end after a shift (8 h), when the browser closes, and after
# SESSION_IDLE_TIMEOUT seconds without a request (accounts.middleware.SessionIdleTimeoutMiddleware).
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", default=8 * 60 * 60, minimum=60)
SESSION_IDLE_TIMEOUT = env_int("SESSION_IDLE_TIMEOUT", default=15 * 60, minimum=60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# Lockout: after LOGIN_FAILURE_LIMIT failed sign-ins a user name is locked for LOGIN_LOCKOUT_MINUTES. By user
# name, not by address: behind the hospital's reverse proxy every workstation has the proxy's address.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", default=5, minimum=1)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", default=15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username"]
# axes.W006 warns that parameters without the address can be dodged by rotating cookies or user agents; a
# lock on the user name cannot (and one on the proxy's address would lock out the whole hospital).
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
# Emergency access to a patient outside one's care teams (break the glass) lasts this long.
BREAK_GLASS_HOURS = env_int("BREAK_GLASS_HOURS", default=8, minimum=1)
# Second factor (TOTP, django-otp): required for pharmacists, curators, auditors and staff (accounts.otp).
OTP_TOTP_ISSUER = "mipd-web"
# API tokens (django-rest-knox): only a SHA-512 digest is stored; each token expires.
API_TOKEN_TTL_HOURS = env_int("API_TOKEN_TTL_HOURS", default=30 * 24, minimum=1)
REST_KNOX = {
    "TOKEN_TTL": dt.timedelta(hours=API_TOKEN_TTL_HOURS),
    "TOKEN_PREFIX": "mipd_",  # recognisable by secret scanners
    "AUTO_REFRESH": False,
}
# The audit trail's chain is keyed (HMAC-SHA256): nobody without this key can append a forged entry.
# Default: derived from SECRET_KEY; set AUDIT_HMAC_KEY so that rotating SECRET_KEY keeps old entries
# verifiable.
AUDIT_HMAC_KEY = env_secret("AUDIT_HMAC_KEY", required=False) or ""

# Internationalisation: store UTC, show TIME_ZONE.
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_time_zone("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# Static files: collected into STATIC_ROOT and served by WhiteNoise with hashed names in production.
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", default=str(BASE_DIR / "var" / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Security: on by default outside DEBUG; each can be overridden for a specific proxy setup.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers and container health checks speak plain HTTP
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 365 * 24 * 60 * 60, minimum=0)
# The HSTS header only covers this host and its subdomains; preloading still needs a manual submission.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER")
USE_X_FORWARDED_HOST = env_bool("USE_X_FORWARDED_HOST", default=False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts, styles and everything else from this site only; no inline
# script (data for scripts travels in json_script blocks), no plug-ins, no framing, forms post here only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
# An EHR that shows the app inside its own window (a SMART launch in an iframe) must be named here: its
# origins become the only ones allowed to frame the app. X-Frame-Options cannot list origins, so it goes
# (CSP frame-ancestors replaces it in every current browser), and the session and CSRF cookies must be sent
# to a cross-site frame (SameSite=None, which browsers accept only on Secure cookies). Unset: no framing.
EHR_FRAME_ANCESTORS = env_origins("EHR_FRAME_ANCESTORS")
if EHR_FRAME_ANCESTORS:
    if not (SESSION_COOKIE_SECURE and CSRF_COOKIE_SECURE):
        raise ConfigurationError(
            "EHR_FRAME_ANCESTORS",
            "needs SESSION_COOKIE_SECURE and CSRF_COOKIE_SECURE on: browsers refuse cookies for a cross-site "
            "frame unless they are Secure, so nobody could sign in inside the EHR",
        )
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["frame-ancestors"] = list(EHR_FRAME_ANCESTORS)
    MIDDLEWARE.remove("django.middleware.clickjacking.XFrameOptionsMiddleware")
    SESSION_COOKIE_SAMESITE = "None"
    CSRF_COOKIE_SAMESITE = "None"
# Permissions-Policy: a dosing application needs no camera, microphone, location, payment or USB.
PERMISSIONS_POLICY: dict[str, list[str]] = {
    name: []
    for name in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "usb",
        "xr-spatial-tracking",
    )
}

# EHR integration (ehr_integration/, docs/ehr-integration.md): CDS Hooks services and SMART App Launch.
# EHR_PUBLIC_BASE_URL: this site's address as the EHR reaches it (https://mipd.hospital.example), the base of
# the CDS Hooks audience (the JWT's aud), of card links and of the SMART redirect URI; empty: the request's.
EHR_PUBLIC_BASE_URL = env_str("EHR_PUBLIC_BASE_URL", default="").rstrip("/")
EHR_HTTP_TIMEOUT_S = env_float("EHR_HTTP_TIMEOUT_S", default=5.0, minimum=0.5)  # JWKS, SMART config, token
EHR_JWKS_CACHE_S = env_int("EHR_JWKS_CACHE_S", default=300, minimum=1)  # an EHR's fetched public keys

# Engine calls made inside a request (what-if, a pharmacist's change, the starting dose, a curator's
# preview): each gets this wall-clock budget, and at most this many run at once in one web process
# (mipd_web.engine_calls).
ENGINE_REQUEST_BUDGET_S = env_float("ENGINE_REQUEST_BUDGET_S", default=10.0, minimum=0.1)
ENGINE_MAX_CONCURRENT_PER_PROCESS = env_int("ENGINE_MAX_CONCURRENT_PER_PROCESS", default=2, minimum=1)

# REST API: authenticated by default; session for the browser, tokens for hospital systems.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "accounts.tokens.ExpiringTokenAuthentication",
    ],
    # Counted in the THROTTLE_CACHE (shared through Redis in production); sign-in lockout is django-axes'
    # job, in the database. The engine scope is shared by the endpoints that run the engine, per user.
    "DEFAULT_THROTTLE_CLASSES": [
        "mipd_web.throttles.AnonRateThrottle",
        "mipd_web.throttles.UserRateThrottle",
        "mipd_web.throttles.ScopedRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_rate("THROTTLE_ANON", default="60/minute"),
        "user": env_rate("THROTTLE_USER", default="2000/minute"),
        "engine": env_rate("THROTTLE_ENGINE", default="30/minute"),
    },
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "mipd_web.parsers.DepthLimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        *(["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "mipd-web API",
    "DESCRIPTION": "Model-informed precision dosing: patients, population models, drug levels and dose "
    "recommendations. Every recommendation needs a pharmacist's review.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Every error code an operation can answer, with its JSON shape (mipd_web/api_errors.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "mipd_web.api_errors.document_error_responses",
    ],
    # Hospital networks block CDNs: Swagger UI and ReDoc are served from our own static files.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Celery: REDIS_URL unset → tasks run eagerly in the calling process (embedded default);
# set → tasks go through the Redis broker to the workers, results come back through Redis.
REDIS_URL = env_str("REDIS_URL", default="")
if REDIS_URL:
    if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError("REDIS_URL", "must start with redis://, rediss:// or unix://")
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = False
else:
    CELERY_BROKER_URL = "memory://"
    CELERY_RESULT_BACKEND = None
    CELERY_TASK_ALWAYS_EAGER = True
    CELERY_TASK_EAGER_PROPAGATES = True
# The throttles' counts (mipd_web.throttles): in Redis when REDIS_URL is set, so that a user's rate holds
# across every gunicorn process and web machine; in local memory (per process) for the embedded default.
# Same Redis as the broker, apart by key prefix; keys expire with their throttle's period. Never call
# clear() on this cache with Redis: it empties the whole database, broker queues included.
THROTTLE_CACHE = "throttles"
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    THROTTLE_CACHE: (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "mipd-throttle",
            # A Redis that is down must not hold a request: the throttles then let it through (logged).
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "mipd-throttles"}
    ),
}
# Redis redelivers an unacknowledged task after the visibility timeout. With late acknowledgement a task
# still running at that moment would run twice, so every time limit stays below it.
# Lows for fast models and the fault tests (tests/faults/ run with 20 + 5 s); 0 would mean no limit at all.
TASK_TIME_LIMIT_S = env_int("TASK_TIME_LIMIT_S", default=600, minimum=10)  # the worker kills the task
TASK_REDELIVERY_MARGIN_S = env_int("TASK_REDELIVERY_MARGIN_S", default=60, minimum=5)
UPDATE_MAX_ATTEMPTS = env_int("UPDATE_MAX_ATTEMPTS", default=5, minimum=1)  # then failed, with the reason
CELERY_TASK_TIME_LIMIT = TASK_TIME_LIMIT_S
# Redelivery soon after the limit: a whole-worker kill costs minutes, not an hour (the claim stops doubles).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": TASK_TIME_LIMIT_S + TASK_REDELIVERY_MARGIN_S,
    # kombu looks for unacknowledged messages past that timeout every interval x throttle seconds (100 s by
    # default): within the margin, so that a dead worker's task is handed on about one margin after it.
    "unacked_restore_interval": min(10, TASK_REDELIVERY_MARGIN_S),
    "unacked_restore_throttle": 1,
}
# SoftTimeLimitExceeded a tenth before the hard limit (540 of 600 s) lets the task record its failure.
CELERY_TASK_SOFT_TIME_LIMIT = TASK_TIME_LIMIT_S - TASK_TIME_LIMIT_S // 10
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ACKS_LATE = True  # a worker that dies mid-task leaves the task to another one
CELERY_TASK_REJECT_ON_WORKER_LOST = True  # a killed pool child requeues its task instead of acking it
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # long numerical tasks: take one at a time
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 24 * 60 * 60
CELERY_TIMEZONE = TIME_ZONE
# A broker that is down must not hold a request: the outbox keeps the update and delivers it later.
CELERY_BROKER_CONNECTION_TIMEOUT = 2  # seconds
CELERY_BROKER_TRANSPORT_OPTIONS |= {"socket_connect_timeout": 2, "socket_timeout": 5}
OUTBOX_DISPATCH_EVERY_S = env_int("OUTBOX_DISPATCH_EVERY_S", default=30, minimum=1)  # between beat passes
REAP_EVERY_S = env_int("REAP_EVERY_S", default=60, minimum=1)  # seconds between the reaper's passes
# The clinician account a refit is recorded for when a model version of a drug is published or retired
# (dosing.refit): empty, no automatic refit (run manage.py refit_courses).
REFIT_ON_CATALOG_CHANGE_AS = env_str("REFIT_ON_CATALOG_CHANGE_AS", default="")
BEAT_HEARTBEAT_EVERY_S = env_int("BEAT_HEARTBEAT_EVERY_S", default=60, minimum=1)
# /healthz: degraded past these ages (README, "Environment variables"; docs/operations.md, "Health").
HEALTHZ_BEAT_MAX_AGE_S = env_int("HEALTHZ_BEAT_MAX_AGE_S", default=180, minimum=1)
HEALTHZ_QUEUED_MAX_AGE_S = env_int("HEALTHZ_QUEUED_MAX_AGE_S", default=120, minimum=1)
HEALTHZ_OUTBOX_MAX_AGE_S = env_int("HEALTHZ_OUTBOX_MAX_AGE_S", default=90, minimum=1)
HEALTHZ_TOKEN = env_secret("HEALTHZ_TOKEN", required=False) or ""  # bearer token: /healthz with details
CELERY_BEAT_SCHEDULE = {
    "dispatch-outbox": {"task": "dosing.dispatch_outbox", "schedule": OUTBOX_DISPATCH_EVERY_S},
    "reap-updates": {"task": "dosing.reap_updates", "schedule": REAP_EVERY_S},  # stuck: requeue or fail
    "beat-heartbeat": {
        "task": "health.beat_heartbeat",
        "schedule": BEAT_HEARTBEAT_EVERY_S,
        # A heartbeat that waited past the staleness limit proves nothing about beat now: dropped.
        "options": {"expires": HEALTHZ_BEAT_MAX_AGE_S},
    },
}

# Logging: to stderr, collected by the container runtime or the service manager.
LOG_LEVEL = env_log_level("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "celery": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        # django-axes logs every successful sign-in at INFO; the audit trail has them already.
        "axes": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        # Tasks run in process (no REDIS_URL): one "succeeded" line per task would bury what `make run`
        # prints (the demo logins); failures are still logged.
        "celery.app.trace": {
            "handlers": ["console"],
            "level": "WARNING" if CELERY_TASK_ALWAYS_EAGER else LOG_LEVEL,
            "propagate": False,
        },
        # The in-process broker (memory://) has no host name, and kombu warns so once per process.
        "kombu.connection": {
            "handlers": ["console"],
            "level": "ERROR" if CELERY_TASK_ALWAYS_EAGER else LOG_LEVEL,
            "propagate": False,
        },
    },
}

# FHIR import from the hospital's FHIR R4 server (fhir_interop.client): empty base URL = no pull offered.
FHIR_SERVER_BASE_URL = env_str("FHIR_SERVER_BASE_URL", default="").rstrip("/")
FHIR_SERVER_TOKEN = env_secret("FHIR_SERVER_TOKEN", required=False) or ""  # sent as a Bearer token when set
FHIR_SERVER_TIMEOUT_S = env_float("FHIR_SERVER_TIMEOUT_S", default=10.0, minimum=0.1)
FHIR_MRN_SYSTEM = env_str("FHIR_MRN_SYSTEM", default="")  # the system of our MRNs (every FHIR channel)
FHIR_MAX_UPLOAD_BYTES = env_int("FHIR_MAX_UPLOAD_BYTES", default=10 * 1024 * 1024, minimum=1024)

# Model performance figures (performance/): with a broker, at most one recompute per model version per this
# many seconds (the figures lag the newest level by at most that much); 0 recomputes after every level.
PERFORMANCE_REFRESH_PERIOD_S = env_int("PERFORMANCE_REFRESH_PERIOD_S", default=120, minimum=0)
