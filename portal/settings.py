"""Settings come from the environment (django-environ); see .env.example for every variable."""

import ipaddress
from datetime import timedelta
from pathlib import Path

import environ

from portal.settings_checks import check_production_settings, dev_field_key

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# Every setting is read once, below, after .env: the process environment wins over the file.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=False)
DEFAULT_SECRET_KEY = "insecure-dev-only-secret-key-change-me"
SECRET_KEY = env.str("SECRET_KEY", default=DEFAULT_SECRET_KEY)
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
if DEBUG and not FIELD_ENCRYPTION_KEYS:
    # Dev only: a key generated once per checkout, so `make run` needs no configuration.
    FIELD_ENCRYPTION_KEYS = [dev_field_key(VAR_DIR / "dev-field-key")]
check_production_settings(
    debug=DEBUG,
    secret_key=SECRET_KEY,
    default_secret_key=DEFAULT_SECRET_KEY,
    field_keys=FIELD_ENCRYPTION_KEYS,
)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# The base URL the portal is reached at; OAuth callback URLs are built from it.
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# The emulated providers (demo and tests): installed (their tables) and mounted at /sandbox/
# only when enabled. On with DEBUG off is an explicit opt-in that `check` warns about
# (portal.W001): their fault-control endpoints are unauthenticated.
SANDBOX_ENABLED = env.bool("SANDBOX_ENABLED", default=DEBUG)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.forms",  # its widget templates, for FORM_RENDERER below
    "csp",  # django-csp: its system checks; the header comes from CSPMiddleware
    "axes",  # django-axes: sign-in throttling, on /login/ and /admin/login/ alike
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",  # recovery codes
    "portal",
    "connections",
    *(["sandbox"] if SANDBOX_ENABLED else []),
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "portal.middleware.IdleTimeoutMiddleware",
    "portal.middleware.SignOutEverywhereMiddleware",
    "portal.middleware.SecondFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
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
                "portal.context_processors.tenancy",
            ],
        },
    },
]

# Every form renders through templates/forms/ (labels above inputs, an error summary).
FORM_RENDERER = "portal.forms.PortalFormRenderer"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one SQLite file: WAL lets readers run beside the writer,
    # IMMEDIATE takes the write lock up front so writers queue instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL;",
    }
    # A file, not :memory:, so worker subprocesses in the tests see the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
# The refresh's hot statements (connections/prepared.py) are prepared on the PostgreSQL
# server, once per connection. Off behind a pooler that cannot keep prepared statements
# across transactions (PgBouncer in transaction mode before 1.21).
DB_PREPARED_STATEMENTS = env.bool("DB_PREPARED_STATEMENTS", default=True)
# A worker's threads keep their database connections this long (portal/celery.py): opening
# one per task cost more CPU than the refresh itself. The web keeps CONN_MAX_AGE.
WORKER_CONN_MAX_AGE = env.int("WORKER_CONN_MAX_AGE", default=300)
# Celery's Django fixup otherwise closes every connection before and after each task,
# whatever CONN_MAX_AGE says; with this it closes them only every this many tasks, and
# portal/celery.py closes one that is broken or older than WORKER_CONN_MAX_AGE, as Django
# does between requests.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# django-axes first: a locked-out username or address is refused before any password check.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Sign-in throttling (django-axes): after LOGIN_FAILURE_LIMIT wrong passwords for one username,
# or from one client address, that username or address is locked for LOGIN_LOCKOUT_MINUTES.
# `manage.py axes_reset_username NAME` / `axes_reset_ip ADDRESS` / `axes_reset` lift it.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The client address is REMOTE_ADDR; behind LOGIN_TRUSTED_PROXIES proxies, the address they
# appended to X-Forwarded-For (portal/client_ip.py). Never a header a client can forge.
LOGIN_TRUSTED_PROXIES = env.int("LOGIN_TRUSTED_PROXIES", default=0)
AXES_CLIENT_IP_CALLABLE = "portal.client_ip.client_ip"
# TOTP second factor (django-otp): anyone can enrol on their profile; with this on, tenant
# admins must, before any page but enrolment.
REQUIRE_TOTP_FOR_ADMINS = env.bool("REQUIRE_TOTP_FOR_ADMINS", default=False)
OTP_TOTP_ISSUER = "Integration portal"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="portal@localhost")
# Notices go out from a task queued after commit; an SMTP server that hangs still lets go.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)

SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not DEBUG)

# Celery: Redis when REDIS_URL is set, else kombu's filesystem transport (no server needed).
BROKER_DIR = VAR_DIR / "broker"
# (Empty is unset, as for REDIS_URL: the test settings use that to leave .env's aside.)
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or REDIS_URL or "filesystem://"
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport, with each message written whole (see portal/broker.py).
    CELERY_BROKER_TRANSPORT = "portal.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR),
        "data_folder_out": str(BROKER_DIR),
        # kombu's default is "control" relative to the working directory: the checkout.
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        # kombu waits this long after finding nothing it may take, also when a pool slot has
        # just freed up; its default 1 s capped a worker at `concurrency` tasks per second.
        "polling_interval": 0.05,
    }
# Deliveries to tenants' listeners have their own worker (a thread pool: they wait on the
# network), so a slow listener never holds up a refresh.
CELERY_TASK_ROUTES = {"connections.deliver_webhook": {"queue": "webhooks"}}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # runserver's request lines without the query string: the OAuth callback's carries the
    # authorization code and state (portal/log_filters.py). Every other line goes to root's
    # console handler, once: no logger below root has a console handler of its own.
    "filters": {
        "no_query": {"()": "portal.log_filters.DropQueryString"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
    },
    "formatters": {
        "server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "server": {"class": "logging.StreamHandler", "formatter": "server"},
        "mail_admins": {
            "level": "ERROR",
            "filters": ["require_debug_false"],
            "class": "django.utils.log.AdminEmailHandler",
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Named so that Django's default console handler on it (DEBUG only) is replaced:
        # left in place, every django.* line (a 403's warning and its traceback) printed
        # once there and once more through root's console. The e-mails to ADMINS stay.
        "django": {"handlers": ["mail_admins"], "level": "INFO"},
        "django.db.backends": {"level": "WARNING"},
        "django.server": {
            "handlers": ["server"],
            "filters": ["no_query"],
            "level": "INFO",
            "propagate": False,
        },
    },
}

# Talking to providers and keeping tokens alive.
PROVIDER_CONNECT_TIMEOUT = env.float("PROVIDER_CONNECT_TIMEOUT", default=5.0)
PROVIDER_READ_TIMEOUT = env.float("PROVIDER_READ_TIMEOUT", default=15.0)
# Hosts (names, IPs or networks) the portal may reach over plain http or at private
# addresses: an on-premises provider. Everything else must be public https (destinations.py).
EGRESS_ALLOWED_HOSTS = env.list("EGRESS_ALLOWED_HOSTS", default=[])
# Whether admins may override a catalogue provider's endpoints (custom domains); the sandbox
# needs it, production does not unless the operator says so.
ALLOW_CUSTOM_ENDPOINTS = env.bool("ALLOW_CUSTOM_ENDPOINTS", default=SANDBOX_ENABLED)
# One request to a provider never takes longer than this, connect to last byte (egress.py).
PROVIDER_DEADLINE = env.float(
    "PROVIDER_DEADLINE", default=PROVIDER_CONNECT_TIMEOUT + PROVIDER_READ_TIMEOUT
)
# The lease Reconnect and Disconnect take. A refresh's lease covers each request's deadline
# plus LEASE_MARGIN_SECONDS, on the database's clock: its take does for a request sent at
# once, an extension for any other (connections/lifecycle/lease.py: Cover).
REFRESH_LEASE_SECONDS = env.int("REFRESH_LEASE_SECONDS", default=90)
LEASE_MARGIN_SECONDS = env.float("LEASE_MARGIN_SECONDS", default=10.0)
# How long a worker keeps retrying to store a provider's answer the database refused; the
# answer waits, encrypted, in the spool (VAR_DIR/spool, and Redis) meanwhile.
STORE_RETRY_SECONDS = env.float("STORE_RETRY_SECONDS", default=600.0)
# The token API refreshes one connection on demand at most once per this many seconds.
ON_DEMAND_REFRESH_FLOOR = env.float("ON_DEMAND_REFRESH_FLOOR", default=5.0)
# Together they cap how fast due connections are handed to workers: 2,000 per 10 s is 200
# refreshes/s. A 30-minute access token is refreshed some 23-25 minutes after the last
# refresh (schedule.py's margin), so 180,000 such connections need about 125/s: 1,000 a tick
# held a box that refreshes 125/s to 100 (and 200 a minute once held it to 3.3/s). The scan
# is an index read that a backlog of queued rows does not slow (conn_unqueued_due_idx).
REFRESH_BATCH_SIZE = env.int("REFRESH_BATCH_SIZE", default=2000)
REFRESH_BEAT_SECONDS = env.float("REFRESH_BEAT_SECONDS", default=10.0)
# Each tick's claim goes to workers a few connections to a task, refreshed one after another
# on a worker thread (a broker message and a database health check per task, not per
# refresh): spread over REFRESH_THREADS tasks, the refresh threads of all workers together
# (WORKER_CONCURRENCY each), at most REFRESH_TASK_SIZE connections each.
REFRESH_THREADS = env.int("REFRESH_THREADS", default=env.int("WORKER_CONCURRENCY", default=16))
REFRESH_TASK_SIZE = env.int("REFRESH_TASK_SIZE", default=20)
# Beat sends a heartbeat this often (a worker runs it); /healthz is unhealthy after three
# periods without one.
BEAT_HEARTBEAT_SECONDS = env.float("BEAT_HEARTBEAT_SECONDS", default=30.0)

# --- Ops: the audit trail, alerts, metrics ---
# Audit events older than this are deleted by a daily task (the report's hourly activity
# counts are kept apart and survive it).
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=365)
# Inbound webhook deliveries older than this are deleted by a daily task.
WEBHOOK_RETENTION_DAYS = env.int("WEBHOOK_RETENTION_DAYS", default=30)
# The largest webhook body the portal accepts (a larger one is answered 413, not read).
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=256 * 1024)
# Outbound deliveries to tenants' listeners (connections/webhooks_outbound.py): the most one
# attempt may take, connect to last byte; the same while a provider's request waits
# (synchronous mode); a tenant's deliveries in flight at once (one tenant's slow listener holds
# at most this many of the webhook worker's threads); attempts before a delivery fails; the
# backoff (base × 4^n, capped, with jitter); how long a rotated signing secret keeps signing.
WEBHOOK_DEADLINE = env.float("WEBHOOK_DEADLINE", default=10.0)
WEBHOOK_SYNC_DEADLINE = env.float("WEBHOOK_SYNC_DEADLINE", default=5.0)
WEBHOOK_TENANT_IN_FLIGHT = env.int("WEBHOOK_TENANT_IN_FLIGHT", default=2)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=8)
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=30.0)
WEBHOOK_RETRY_MAX_SECONDS = env.float("WEBHOOK_RETRY_MAX_SECONDS", default=6 * 3600.0)
WEBHOOK_SECRET_OVERLAP_HOURS = env.float("WEBHOOK_SECRET_OVERLAP_HOURS", default=24.0)
# The sweep sends due retries (and anything the broker lost) this often.
WEBHOOK_SWEEP_SECONDS = env.float("WEBHOOK_SWEEP_SECONDS", default=5.0)
# The weekly digest lists refresh tokens ending within this many days.
DIGEST_LAPSING_DAYS = env.int("DIGEST_LAPSING_DAYS", default=30)
# /metrics: scraped from these networks, or with `Authorization: Bearer <METRICS_TOKEN>`.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = [
    ipaddress.ip_network(net, strict=False)
    for net in env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"])
]
# prometheus-client's multiprocess mode: web, worker and beat processes of one host add up.
PROMETHEUS_MULTIPROC_DIR = Path(
    env.str("PROMETHEUS_MULTIPROC_DIR", default=str(VAR_DIR / "metrics"))
)

CELERY_BEAT_SCHEDULE = {
    "heartbeat": {"task": "portal.tasks.heartbeat", "schedule": BEAT_HEARTBEAT_SECONDS},
    "enqueue-due-refreshes": {
        "task": "connections.enqueue_due_refreshes",
        "schedule": REFRESH_BEAT_SECONDS,
    },
    "retry-revocations": {"task": "connections.retry_revocations", "schedule": 60.0},
    "roll-up-activity": {"task": "connections.roll_up_activity", "schedule": 300.0},
    "send-expiry-digests": {"task": "connections.send_expiry_digests", "schedule": 3600.0},
    "prune-audit-events": {"task": "connections.prune_audit_events", "schedule": 86400.0},
    "prune-inbound-webhooks": {"task": "connections.prune_inbound_webhooks", "schedule": 86400.0},
    "send-due-webhooks": {"task": "connections.send_due_webhooks", "schedule": WEBHOOK_SWEEP_SECONDS},
    "emit-lapsing-events": {"task": "connections.emit_lapsing_events", "schedule": 3600.0},
}

# --- Beat lock (portal/single_beat.py) ---
# Seconds the beat lock in Redis outlives its holder: a standby beat takes over this long
# after the active one dies. The holder renews it every TTL/3 at most.
BEAT_LOCK_TTL = env.float("BEAT_LOCK_TTL", default=30.0)

if not CELERY_BROKER_URL.startswith("filesystem://"):
    # acks_late: a task whose whole worker died (no parent left to requeue it) comes back
    # after the visibility timeout. It must outlive the longest legitimate run (a rate-limit
    # wait, three sends within their deadlines), or a slow task would run twice; it need not
    # be short, because the beat's picker already takes a row whose lease lapsed, within the
    # lease plus one beat. Redelivery is the second net, not the first.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": int(REFRESH_LEASE_SECONDS + 4 * PROVIDER_DEADLINE + 60)
    }

# --- HTTPS, cookies, sessions and security headers (`manage.py check --deploy` is clean) ---
# (SESSION_COOKIE_SECURE and CSRF_COOKIE_SECURE come from SECURE_COOKIES, above.)
# TLS ends at a proxy: set SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https, and have the
# proxy overwrite X-Forwarded-Proto (never pass on the client's). Otherwise Django sees http and
# SECURE_SSL_REDIRECT redirects every request, forever.
_ssl_header = env.list("SECURE_PROXY_SSL_HEADER", default=[])
if _ssl_header:
    if len(_ssl_header) != 2:
        raise environ.ImproperlyConfigured(
            "SECURE_PROXY_SSL_HEADER is HEADER,value: e.g. HTTP_X_FORWARDED_PROTO,https"
        )
    SECURE_PROXY_SSL_HEADER = tuple(_ssl_header)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Load balancers and Prometheus often probe over plain http inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
if not SECURE_HSTS_PRELOAD:
    # security.W021 asks for preload. Getting onto the browsers' preload list is hard to undo
    # and binds the whole domain: the operator's decision, not a default.
    SILENCED_SYSTEM_CHECKS = ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Lax, not Strict: the provider's redirect back to the callback is a cross-site navigation,
# and must arrive with the session.
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True  # forms carry the token; no script reads the cookie
# The longest a sign-in lasts, and how long it survives without a request (0: no idle limit;
# portal/middleware.py).
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=12 * 3600)
SESSION_IDLE_SECONDS = env.int("SESSION_IDLE_SECONDS", default=30 * 60)

# Content-Security-Policy (django-csp 4, csp.middleware.CSPMiddleware). No inline script,
# style or event handler anywhere: what pages do in the browser is in static/portal/portal.js.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        # Browsers check form-action on every redirect a form submission follows: the pages
        # with Connect or Reconnect add their provider's authorize origin
        # (portal.csp_helpers.allow_form_redirect). CSP_FORM_ACTION_EXTRA: origins a provider's
        # authorize page redirects on to (a sign-in page on another host).
        "form-action": ["'self'", *env.list("CSP_FORM_ACTION_EXTRA", default=[])],
    },
}

# Error reports leave out query strings (the OAuth callback's carries a code and the state).
DEFAULT_EXCEPTION_REPORTER = "portal.error_reports.QueryCleansingReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "portal.error_reports.QueryCleansingFilter"
