"""Alexia settings.

Defaults run the whole product on one machine with no servers (SQLite under var/, a filesystem Celery
broker, an in-process channel layer relayed to the web process). DATABASE_URL and REDIS_URL switch on
the production topology (PostgreSQL, Redis broker and channel layer).
"""

from pathlib import Path

from .env import BASE_DIR, VAR_DIR, env

VAR_DIR.mkdir(exist_ok=True)

DEBUG = env.bool("DEBUG", default=False)

def _local_secret_key() -> str:
    """No SECRET_KEY given: a random one kept under var/, so no two installs share a known key (it signs
    sessions, attachment links and the embedded live-event relay)."""
    import os
    import secrets
    import time

    path = VAR_DIR / "secret_key"
    try:
        # O_EXCL: when web, worker and beat start together, exactly one of them writes the key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # the writer may not have finished yet
            key = path.read_text().strip()
            if key:
                return key
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty: delete it or set SECRET_KEY") from None
    key = secrets.token_urlsafe(50)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


SECRET_KEY = env("SECRET_KEY", default="") or _local_secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

# Fernet key (32 url-safe base64 bytes). The default only suits local demos: set your own in production.
FIELD_ENCRYPTION_KEY = (
    env("FIELD_ENCRYPTION_KEY", default="") or "bG9jYWwtZGV2LW9ubHktZmVybmV0LWtleS0zMmJ5dGU="
)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "encrypted_model_fields",
    "anymail",
    "organizations",
    "providers",
    "inbox",
    "billing",
    "channels_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, on purpose: it is sync-only, and under ASGI Django switches to async at the innermost
    # sync-only middleware; placed before Messages and XFrame it made those two run in async mode, a
    # thread hop per hook (measured under daphne: webhook intake 80 -> 115 req/s). bench/, docs/performance.md
    "organizations.middleware.CurrentOrganizationMiddleware",
]

ROOT_URLCONF = "alexia.urls"
WSGI_APPLICATION = "alexia.wsgi.application"
ASGI_APPLICATION = "alexia.asgi.application"

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
                "organizations.context_processors.current_organization",
                "billing.context_processors.banner",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url_config(env("DATABASE_URL", default="") or f"sqlite:///{VAR_DIR / 'alexia.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Under ASGI a sync view cannot keep a persistent connection (see STACK-NOTES): use psycopg's pool.
    if env.bool("DATABASE_POOL", default=False):
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {"min_size": 2, "max_size": 20}
        DATABASES["default"]["CONN_MAX_AGE"] = 0
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# ESPs post whole e-mails (attachments included) to the inbound webhook.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=40 * 1024 * 1024)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Mail (invitations, low-balance alerts). Default: printed to the console; set EMAIL_URL for SMTP.
_email = env.email_url_config(env("EMAIL_URL", default="") or "consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS"))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Alexia <no-reply@alexia.local>")
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "inbox:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default="") or VAR_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Redis, Celery, Channels ---------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")

if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py 8 reads with a 5 s socket timeout by default, and the layer's blocking receive
            # waits 5 s too: an idle socket would be dropped with "Timeout reading" (channels_redis
            # #422). No read timeout (None, stated explicitly) keeps it; a finite one (15 s) made
            # cancelled receives linger at consumer shutdown.
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
                "prefix": env("CHANNELS_PREFIX", default="alexia"),
                # Events queued per socket before group sends drop them (channels_redis default 100).
                # Measured (bench/, inbound open loop): with daphne serving webhooks too, an agent's
                # socket fell behind at 50 webhooks/s (two events each) and lost events at 100.
                "capacity": env.int("CHANNELS_CAPACITY", default=1000),
            },
        }
    }
else:
    # No server: kombu's filesystem transport is a real broker shared by the web process, the worker
    # and beat through files under var/. Live events from the worker reach the web process's
    # in-memory layer through the relay endpoint (channels_app.relay).
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# The cache is shared by every process (locks, presence): Redis, else files under var/.
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
# The inbox's view counts (open conversations per view) are cached per organization this long; an
# agent's own action drops them at once (0 turns the cache off).
INBOX_COUNTS_CACHE_SECONDS = env.int("INBOX_COUNTS_CACHE_SECONDS", default=5)

LIVE_RELAY_URL = env("LIVE_RELAY_URL", default="") or (
    "" if REDIS_URL else f"{PUBLIC_BASE_URL}/internal/live/"
)

# Task modules not named tasks.py (autodiscovery finds only those).
CELERY_IMPORTS = ("inbox.tasks_ui",)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# Live traffic (inbound processing, agent replies) never waits behind bulk work.
CELERY_TASK_ROUTES = {
    "inbox.tasks.webhook_event_process_task": {"queue": "live"},
    "inbox.tasks.webhook_events_process_task": {"queue": "live"},
    "inbox.tasks.message_send_task": {"queue": "live"},
    "inbox.tasks.channel_sends_run_task": {"queue": "live"},
    "inbox.tasks.attachment_download_task": {"queue": "default"},
    "inbox.tasks.message_send_bulk_task": {"queue": "bulk"},
    "inbox.tasks.telegram_poll_task": {"queue": "live"},
    "inbox.tasks.email_poll_task": {"queue": "default"},
}
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- REST API ----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "organizations.authentication.ApiKeyAuthentication",
        "organizations.authentication.OrganizationSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["organizations.authentication.IsOrganizationMember"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "inbox.api.errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "inbox.api.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Alexia API",
    "DESCRIPTION": "Omnichannel messaging: channels, contacts, conversations, messages, usage.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs page's JavaScript is served by us (no CDN): it works offline and under a strict CSP.
    "REDOC_DIST": "SIDECAR",
}

# --- Platform API base URLs (tests and benchmarks point channels at local fakes) --------------------
WHATSAPP_API_BASE = env("WHATSAPP_API_BASE", default="https://graph.facebook.com/v21.0")
META_GRAPH_API_BASE = env("META_GRAPH_API_BASE", default="https://graph.facebook.com/v21.0")
TELEGRAM_API_BASE = env("TELEGRAM_API_BASE", default="https://api.telegram.org")
TWILIO_API_BASE = env("TWILIO_API_BASE", default="https://api.twilio.com")
PROVIDER_HTTP_TIMEOUT = env.float("PROVIDER_HTTP_TIMEOUT", default=15.0)
# Webhook intake caches the channel of a token this long per process (a pause or a rotated secret
# applies after at most this delay).
WEBHOOK_CHANNEL_CACHE_SECONDS = env.float("WEBHOOK_CHANNEL_CACHE_SECONDS", default=5.0)
# Webhook intake queues processing through a per-process batching thread (inbox/webhooks/dispatch.py);
# false: one Celery message per webhook from the request itself.
WEBHOOK_DISPATCH_BATCHED = env.bool("WEBHOOK_DISPATCH_BATCHED", default=True)
WEBHOOK_DISPATCH_LINGER_MS = env.float("WEBHOOK_DISPATCH_LINGER_MS", default=10.0)
# Outbound sends run per channel in chunks (inbox/services/sending.py): at most this many platform calls
# of one channel in flight at once, and a runner hands its worker back after this many seconds.
SEND_CONCURRENCY = env.int("SEND_CONCURRENCY", default=8)
SEND_RUN_SECONDS = env.float("SEND_RUN_SECONDS", default=20.0)
# How long each process keeps the default billing plan (billing.services.plan_default).
BILLING_PLAN_CACHE_SECONDS = env.float("BILLING_PLAN_CACHE_SECONDS", default=5.0)
# The demo's fake platforms listen on FAKES_PORT_BASE (+0 WhatsApp, +1 Telegram, +2 Twilio).
FAKES_PORT_BASE = env.int("FAKES_PORT_BASE", default=8401)

# --- Billing ----------------------------------------------------------------------------------------
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env("STRIPE_API_BASE", default="https://api.stripe.com")
BILLING_CURRENCY = env("BILLING_CURRENCY", default="EUR")
BILLING_TOPUP_MIN = env("BILLING_TOPUP_MIN", default="5")
BILLING_TOPUP_MAX = env("BILLING_TOPUP_MAX", default="10000")

# --- Security -----------------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
if not DEBUG and PUBLIC_BASE_URL.startswith("https://"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
    # TLS usually ends at the proxy in front of daphne; redirect here only when asked.
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

from celery.schedules import crontab  # noqa: E402

CELERY_BEAT_SCHEDULE = {
    "message-sweep": {"task": "inbox.tasks.message_sweep_task", "schedule": 30.0},
    "webhook-event-sweep": {"task": "inbox.tasks.webhook_event_sweep_task", "schedule": 60.0},
    "telegram-poll": {"task": "inbox.tasks.telegram_poll_all_task", "schedule": 3.0},
    "email-poll": {"task": "inbox.tasks.email_poll_all_task", "schedule": 60.0},
    "billing-invoices": {"task": "billing.tasks.invoices_issue_monthly_task", "schedule": crontab(hour=1, minute=0)},
    "billing-hold-sweep": {"task": "billing.tasks.credit_hold_sweep_task", "schedule": 3600.0},
    "conversation-snooze-wake": {"task": "inbox.tasks_ui.conversation_snooze_wake_task", "schedule": 30.0},
}

# TLS redirect and HSTS preload are the reverse proxy's and the operator's calls (docs/deployment.md).
SILENCED_SYSTEM_CHECKS = env.list("SILENCED_SYSTEM_CHECKS", default=["security.W008", "security.W021"])
