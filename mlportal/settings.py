"""Settings, all from the environment with typed defaults.

PORTAL_ENV picks the profile: ``dev`` (the embedded default: SQLite, a broker that needs no server,
media on local disk), ``test`` or ``production`` (refuses to start without SECRET_KEY and turns on
every deploy check).
"""

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("PORTAL_VAR_DIR", default=str(BASE_DIR / "var")))

VAR_DIR.mkdir(parents=True, exist_ok=True)
env = environ.Env()
PORTAL_ENV = env.str("PORTAL_ENV", default="dev")
if PORTAL_ENV not in {"dev", "test", "production"}:
    raise ImproperlyConfigured(f"PORTAL_ENV must be dev, test or production, not {PORTAL_ENV!r}")
PRODUCTION = PORTAL_ENV == "production"

if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY", default="")
    if len(SECRET_KEY) < 50:
        raise ImproperlyConfigured("SECRET_KEY must be set (at least 50 random characters) when PORTAL_ENV=production")
else:
    SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-key-never-use-in-production-0123456789")

# Off unless asked for, in dev too: `make run` shows the portal's own error pages, never a traceback.
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["*"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "apps.core.devserver",  # first: its runserver (TCP_NODELAY) wraps whitenoise's
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "apps.core",
    "apps.accounts",
    "apps.projects",
    "apps.datasets",
    "apps.labeling",
    "apps.profiling",
    "apps.training",
    "apps.registry",
    "apps.serving",
    "apps.monitoring",
]

MIDDLEWARE = [
    "apps.monitoring.middleware.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "apps.core.middleware.RejectNulBytesMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Repeated failed sign-ins lock the username and the address (django-axes; settings below).
    "axes.middleware.AxesMiddleware",
    # Last, so its process_exception sees a view's error first: a database that is down or
    # restarting and a broker that refuses a job answer 503 with a clear message, never a 500.
    "apps.core.middleware.ServiceUnavailableMiddleware",
]

ROOT_URLCONF = "mlportal.urls"
WSGI_APPLICATION = "mlportal.wsgi.application"
ASGI_APPLICATION = "mlportal.asgi.application"

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
            ],
        },
    },
]

# Database: SQLite file by default, anything by DATABASE_URL (postgres://user@host:5432/name).
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that a real worker process in the integration tests sees the test data.
    # One file per test process, so two suites running at once never share (or delete) a database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
    # IMMEDIATE: a write transaction takes the lock when it begins, so concurrent writers (two
    # labelers, a job's heartbeat thread and its main thread) wait for each other (timeout) instead
    # of failing at once with "database is locked" on a lock upgrade.
    # WAL + synchronous=NORMAL: readers never block the writer and a commit needs no disk flush (the
    # WAL is synced at checkpoints), so a labeling write costs about a millisecond, not a flush.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
if PORTAL_ENV == "test":
    # Fast hashing keeps a suite that makes hundreds of users quick; never outside tests.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGIN_URL = "login"

# Login throttling (django-axes): LOGIN_FAILURE_LIMIT failed sign-ins for one username (from anywhere)
# or from one address (for any usernames) lock that username or address for LOGIN_LOCKOUT_MINUTES.
# The lockout answers 429 with a page saying when to retry, is logged and audited
# (apps.accounts.signals), and a site admin lifts it in the admin site (Access attempts: delete) or
# with ``manage.py axes_reset_username NAME`` / ``axes_reset_ip ADDRESS``. A success resets the count.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = __import__("datetime").timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_VERBOSE = False  # the portal logs the lockout itself, once, with the username and address
# Behind a proxy, the address axes counts is the one the proxy saw (X-Forwarded-For's first hop
# only when TRUST_X_FORWARDED_FOR is set: otherwise a client could pick its own address).
AXES_CLIENT_IP_CALLABLE = "apps.accounts.signals.client_ip"
TRUST_X_FORWARDED_FOR = env.bool("TRUST_X_FORWARDED_FOR", default=False)

# Content-Security-Policy on every response (django-csp): scripts, styles, fonts and images from the
# portal itself only (vendored under static/, no CDN); no inline script, no eval (page data travels
# in JSON blocks and data- attributes). Inline styles are allowed: Plotly injects <style> elements for
# its charts, and styles cannot run code. data:/blob: images for thumbnails, heatmaps and Plotly's
# PNG export.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"

# Storage: local disk by default; any S3-compatible store with STORAGE_BACKEND=s3 (django-storages).
STORAGE_BACKEND = env.str("STORAGE_BACKEND", default="local")
if STORAGE_BACKEND == "s3":
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("S3_BUCKET"),
            "endpoint_url": env.str("S3_ENDPOINT_URL", default=None),
            "access_key": env.str("S3_ACCESS_KEY_ID", default=None),
            "secret_key": env.str("S3_SECRET_ACCESS_KEY", default=None),
            "region_name": env.str("S3_REGION", default=None),
            "default_acl": None,
            "querystring_auth": True,
        },
    }
elif STORAGE_BACKEND == "local":
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT)},
    }
else:  # a dotted path to a storage class that takes ``location`` (e.g. a test double for a full disk)
    _default_storage = {"BACKEND": STORAGE_BACKEND, "OPTIONS": {"location": str(MEDIA_ROOT)}}
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        # Compressed (gzip) in dev and production: plotly.js is 4.8 MB raw, 1.4 MB gzipped, on every
        # chart page's first visit. Tests skip collectstatic and read the source folders.
        "BACKEND": {
            "production": "whitenoise.storage.CompressedManifestStaticFilesStorage",
            "dev": "whitenoise.storage.CompressedStaticFilesStorage",
        }.get(PORTAL_ENV, "django.contrib.staticfiles.storage.StaticFilesStorage")
    },
}
# Unhashed names in dev: cached for an hour, not forever (production's hashed names are immutable).
WHITENOISE_MAX_AGE = env.int("WHITENOISE_MAX_AGE", default=3600)

# Celery: the database row is the truth for every job; Celery carries only ids.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _d in ("queue", "processed", "control"):
        (_broker_dir / _d).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        # kombu polls the folder once a second by default: every queued task would wait for it.
        "polling_interval": env.float("CELERY_BROKER_POLLING_INTERVAL", default=0.1),
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # A broker host that is down must fail a publish in seconds, not hang the request that launched a job.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": env.float("CELERY_BROKER_CONNECT_TIMEOUT", default=3)}
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HEARTBEAT_SECONDS = env.int("WORKER_HEARTBEAT_SECONDS", default=10)


def _time_limits(queue, soft, hard):
    """CELERY_TIME_LIMIT_<QUEUE>="soft,hard" seconds ("none": no limit); the soft one raises
    SoftTimeLimitExceeded in the task (its job fails with the reason), the hard one kills the child."""
    raw = env.str(f"CELERY_TIME_LIMIT_{queue.upper()}", default=f"{soft},{hard}").strip().lower()
    if raw == "none":
        return (None, None)
    try:
        s, h = (int(x) for x in raw.split(","))
    except ValueError:
        raise ImproperlyConfigured(
            f'CELERY_TIME_LIMIT_{queue.upper()} must be "soft,hard" seconds or "none", not {raw!r}'
        ) from None
    if not 0 < s < h:
        raise ImproperlyConfigured(f"CELERY_TIME_LIMIT_{queue.upper()}: the soft limit must be under the hard one")
    return (s, h)


# Per-queue time limits (soft, hard), put on each message by apps.core.jobs.dispatch (a worker may serve
# several queues); a task that sets tighter limits of its own keeps them (webhooks 60/90 s).
CELERY_QUEUE_TIME_LIMITS = {
    "default": _time_limits("default", 15 * 60, 15 * 60 + 60),
    "ingest": _time_limits("ingest", 4 * 3600, 4 * 3600 + 120),
    "profile": _time_limits("profile", 3 * 3600, 3 * 3600 + 60),
    "training": _time_limits("training", 24 * 3600, 24 * 3600 + 300),
    "gpu": _time_limits("gpu", 24 * 3600, 24 * 3600 + 300),
}
WORKER_STALE_AFTER_SECONDS = env.int("WORKER_STALE_AFTER_SECONDS", default=45)
JOB_HEARTBEAT_TIMEOUT_SECONDS = env.int("JOB_HEARTBEAT_TIMEOUT_SECONDS", default=120)
# A run queued for the gpu queue while no live worker listens there fails after this wait (seconds).
GPU_QUEUE_WAIT_SECONDS = env.int("GPU_QUEUE_WAIT_SECONDS", default=600)
# Test hook: a pause per image (import, profile) and per training batch, so that fault tests can
# kill a worker mid-job (docs/operations.md). Ignored unless PORTAL_ENV=test.
JOB_STEP_DELAY_SECONDS = env.float("JOB_STEP_DELAY_SECONDS", default=0.0) if PORTAL_ENV == "test" else 0.0

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://portal")}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ML Portal API",
    "DESCRIPTION": "Scope, data, labeling, profiling, training, registry, serving and monitoring.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its viewers are for people who can use the API: signed in (session or token).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"ScopeStatusEnum": "apps.projects.models.ScopeStatus"},
}

EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="ml-portal@localhost")
# Absolute links in notification emails and webhook payloads (e.g. https://portal.example.com).
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="")
# Webhooks call public addresses only (no loopback, private, link-local/metadata addresses: SSRF);
# true lets them reach receivers on the internal network on purpose.
WEBHOOK_ALLOW_PRIVATE_NETWORKS = env.bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", default=False)

# Datasets: what an upload may contain (each limit overridable from the environment).
# Sizes are counted in decimal units everywhere the portal states them (1 MB = 1,000,000 bytes).
DATASET_MAX_FILE_BYTES = env.int("DATASET_MAX_FILE_BYTES", default=50_000_000)
DATASET_MAX_PIXELS = env.int("DATASET_MAX_PIXELS", default=50_000_000)
DATASET_MAX_SIDE = env.int("DATASET_MAX_SIDE", default=20_000)  # pixels, each side
DATASET_MAX_ASPECT = env.float("DATASET_MAX_ASPECT", default=20.0)  # longer side / shorter side
DATASET_ALLOWED_FORMATS = env.list("DATASET_ALLOWED_FORMATS", default=["PNG", "JPEG", "BMP", "TIFF", "WEBP"])
DATASET_ZIP_MAX_BYTES = env.int("DATASET_ZIP_MAX_BYTES", default=2_000_000_000)
DATASET_ZIP_MAX_ENTRIES = env.int("DATASET_ZIP_MAX_ENTRIES", default=100_000)
DATASET_ZIP_MAX_UNCOMPRESSED_BYTES = env.int("DATASET_ZIP_MAX_UNCOMPRESSED_BYTES", default=8_000_000_000)
DATASET_ZIP_MAX_RATIO = env.int("DATASET_ZIP_MAX_RATIO", default=100)
DATASET_THUMBNAIL_PX = env.int("DATASET_THUMBNAIL_PX", default=256)
DATASET_UPLOAD_CHUNK_BYTES = env.int("DATASET_UPLOAD_CHUNK_BYTES", default=2_000_000)
DATASET_INGEST_CHUNK_FILES = env.int("DATASET_INGEST_CHUNK_FILES", default=40)

# The demo seed imports sample images from here when the folder exists.
PORTAL_SHARED = Path(env.str("PORTAL_SHARED", default=str(BASE_DIR.parent / "shared")))
DEMO_IMAGES_DIR = Path(env.str("DEMO_IMAGES_DIR", default=str(PORTAL_SHARED / "datasets" / "mvtec-screw")))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

# Monitoring (docs/monitoring.md)
MONITORING_METRICS_TOKEN = env.str(
    "MONITORING_METRICS_TOKEN", default=""
)  # Bearer token for /metrics; empty: staff only
# Tests flush explicitly: a flush inside someone else's request would add queries to their counts.
MONITORING_FLUSH_SECONDS = env.int("MONITORING_FLUSH_SECONDS", default=86400 if PORTAL_ENV == "test" else 10)
MONITORING_LOW_CONFIDENCE = env.float("MONITORING_LOW_CONFIDENCE", default=0.6)
MONITORING_LOW_CONFIDENCE_LIMIT = env.int("MONITORING_LOW_CONFIDENCE_LIMIT", default=50)
MONITORING_RANDOM_SHARE = env.float("MONITORING_RANDOM_SHARE", default=0.05)
MONITORING_REFERENCE_EMBEDDINGS = env.int("MONITORING_REFERENCE_EMBEDDINGS", default=200)

# Serving (docs/serving.md)
SERVING_MAX_BATCH = env.int("SERVING_MAX_BATCH", default=32)  # images per model call
SERVING_MAX_WAIT_MS = env.float("SERVING_MAX_WAIT_MS", default=5.0)  # how long a batch waits to fill
SERVING_DECODE_THREADS = env.int("SERVING_DECODE_THREADS", default=0)  # requests decoding at once; 0: 2 per core
SERVING_MAX_IMAGES = env.int("SERVING_MAX_IMAGES", default=64)  # images per request
SERVING_MAX_REQUEST_BYTES = env.int("SERVING_MAX_REQUEST_BYTES", default=64 * 1024 * 1024)
SERVING_POLL_SECONDS = env.float("SERVING_POLL_SECONDS", default=2.0)  # serve: how often it asks the registry
SERVING_MAX_LOADED = env.int("SERVING_MAX_LOADED", default=4)  # pinned versions kept in memory (LRU)
SERVING_RATE_PER_MINUTE = env.int("SERVING_RATE_PER_MINUTE", default=6000)  # per token (or user), 429 beyond
SERVING_TOKEN_CACHE_SECONDS = env.int("SERVING_TOKEN_CACHE_SECONDS", default=0 if PORTAL_ENV == "test" else 10)
SERVING_LOG_ENABLED = env.bool("SERVING_LOG_ENABLED", default=True)
SERVING_LOG_FLUSH_ROWS = env.int("SERVING_LOG_FLUSH_ROWS", default=256)
# The drainer's batches: every 2 s (or 256 rows). Each batch costs a transaction and the monitoring
# rollups' upserts whatever its size: at 500 ms they cost the serving process ~5 % CPU at c=32
# (docs/benchmarks.md#serving); the rows are durable in the spool meanwhile.
SERVING_LOG_FLUSH_MS = env.int("SERVING_LOG_FLUSH_MS", default=2000)
# The durable spool between an answer and its log row (apps/serving/spool.py): one folder on local disk
# per host, shared by its serving processes; rows beyond SERVING_SPOOL_MAX_BYTES not yet in the
# database are lost and counted (an alert fires).
# Decoded, resized training images kept across runs of the same data at the same size (a rerun, a
# sweep's next trial): their first epoch reads this instead of decoding every photograph again.
# Empty: off. The least recently used caches go beyond TRAINING_CACHE_MAX_BYTES.
TRAINING_CACHE_DIR = env.str("TRAINING_CACHE_DIR", default=str(VAR_DIR / "cache" / "decoded"))
TRAINING_CACHE_MAX_BYTES = env.int("TRAINING_CACHE_MAX_BYTES", default=20 * 2**30)
SERVING_SPOOL_DIR = Path(env.str("SERVING_SPOOL_DIR", default=str(VAR_DIR / "spool")))
SERVING_SPOOL_MAX_BYTES = env.int("SERVING_SPOOL_MAX_BYTES", default=512 * 2**20)
SERVING_LOG_SAMPLE_RATE = env.float("SERVING_LOG_SAMPLE_RATE", default=0.01)  # share of inputs whose image is kept
SERVING_LOW_CONFIDENCE = env.float("SERVING_LOW_CONFIDENCE", default=MONITORING_LOW_CONFIDENCE)  # below: image kept
