"""Bosun's one settings module, read from environment variables through helpers that fail loudly."""

import os
import secrets
from pathlib import Path
from urllib.parse import unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={value!r}: use true or false")


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_networks(name: str, default: str = "") -> list:
    """Addresses or networks (CIDR), comma-separated."""
    import ipaddress

    try:
        return [ipaddress.ip_network(item, strict=False) for item in env_list(name, default)]
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}") from None


def env_duration(name: str, default: str) -> float:
    from sequences.rules.durations import parse_duration

    value = os.environ.get(name) or default
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}") from None


DATA_DIR = Path(env_str("BOSUN_DATA_DIR", str(BASE_DIR / "var"))).resolve()


def _secret_key() -> str:
    key = env_str("BOSUN_SECRET_KEY")
    if key:
        return key
    path = DATA_DIR / "secret_key"
    if path.exists():
        return path.read_text().strip()
    DATA_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_urlsafe(50)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(key)
    return key


SECRET_KEY = _secret_key()
DEBUG = env_bool("BOSUN_DEBUG", False)
ALLOWED_HOSTS = env_list("BOSUN_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("BOSUN_CSRF_TRUSTED_ORIGINS", "http://127.0.0.1:8000,http://localhost:8000")

# Behind HTTPS (BOSUN_HTTPS=true): secure cookies, redirect to https and HSTS unless said otherwise.
HTTPS = env_bool("BOSUN_HTTPS", False)
SECURE_SSL_REDIRECT = env_bool("BOSUN_SECURE_SSL_REDIRECT", HTTPS)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("BOSUN_SECURE_COOKIES", HTTPS)
SECURE_HSTS_SECONDS = int(env_str("BOSUN_HSTS_SECONDS", "31536000" if HTTPS else "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("BOSUN_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("BOSUN_HSTS_PRELOAD", False)
if env_bool("BOSUN_PROXY_SSL_HEADER", False):  # a TLS proxy in front sets X-Forwarded-Proto: https
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "template_partials",
    "ninja",
    "sequences",
    "bridge",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "bridge.apierrors.JsonErrors",  # every error under /api/ is Keptn's JSON {code, message}
    "bridge.staticfiles.StaticFilesMiddleware",  # WhiteNoise, for STATIC_URL only
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "bridge.logins.login_throttle",
    "bridge.failures.StorageTrouble",
]

ROOT_URLCONF = "bridge.urls"
ASGI_APPLICATION = "bridge.asgi.application"
WSGI_APPLICATION = None

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
    }
]


def _database() -> dict:
    url = env_str("DATABASE_URL")
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "bosun.sqlite3",
            "OPTIONS": {
                # WAL lets readers go on while one writer writes; IMMEDIATE takes the write lock at BEGIN
                # so a transaction never fails half-way on an upgrade from reader to writer. A 32 MB page
                # cache and reads through mmap keep a large history from costing each event a read call
                # per index page it touches.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000; "
                                "PRAGMA cache_size=-32000; PRAGMA mmap_size=268435456;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            # Requests share one sync thread (bridge/asgi.py): its connection lives on, pragmas run once.
            "CONN_MAX_AGE": None,
            # A file, not memory: tests with threads then see SQLite as it runs (WAL, one writer).
            "TEST": {"NAME": env_str("BOSUN_TEST_SQLITE", "") or str(DATA_DIR / "test-bosun.sqlite3")},
        }
    parsed = urlparse(url)
    if parsed.scheme not in ("postgres", "postgresql"):
        raise ImproperlyConfigured(f"DATABASE_URL: only postgres:// URLs are supported, not {parsed.scheme}://")
    name = unquote(parsed.path.lstrip("/")) or "bosun"
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "",
        "PORT": str(parsed.port or ""),
        # Bosun's hot statements are prepared once per connection (sequences/store/prepared.py): parsing
        # them again costs PostgreSQL more than running them, and planning them more again. PostgreSQL keeps
        # one plan for all calls of a statement once it is no worse than one made per call (auto, its
        # default, set here in case a server's default differs); the values a query fixes itself are
        # written into its SQL, so a partial index still serves them.
        # The pool: the intake's four threads, the engine, the pusher and the webhook sender of one process
        # never wait for each other's connections (each gives its own back before it waits).
        "OPTIONS": {"pool": {"min_size": 2, "max_size": 8, "timeout": 10},
                    "options": "-c plan_cache_mode=auto"},
        "TEST": {"NAME": env_str("BOSUN_TEST_DATABASE", f"test_{name}")},
    }


DATABASES = {"default": _database()}
# Off behind a connection pooler that cannot carry prepared statements (PgBouncer before 1.21 in
# transaction mode): every statement is then sent whole each time.
BOSUN_PG_PREPARE = env_bool("BOSUN_PG_PREPARE", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")


def channel_layers(redis_url: str) -> dict:
    """The Redis channel layer. Its receive blocks on BZPOPMIN for 5 s at a time, so the socket's read timeout
    must outlast that (redis-py 8 defaults it to 5 s, which tore every idle page's socket down)."""
    return {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [
        {"address": redis_url, "socket_timeout": 30, "socket_connect_timeout": 5, "socket_keepalive": True}]}}}


if REDIS_URL:
    CHANNEL_LAYERS = channel_layers(REDIS_URL)
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/bridge/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True  # serve straight from the apps' static folders; no collectstatic step

# One event is at most 64 KiB; a CloudEvents batch may carry many.
DATA_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024  # sequences/transitions/arrivals.py MAX_BATCH_BYTES

# Failed credentials (sequences/store/throttle.py): per client address within the window, and per user.
BOSUN_THROTTLE_FAILURES = int(env_str("BOSUN_THROTTLE_FAILURES", "20"))
BOSUN_THROTTLE_USER_FAILURES = int(env_str("BOSUN_THROTTLE_USER_FAILURES", "50"))
BOSUN_THROTTLE_WINDOW = env_duration("BOSUN_THROTTLE_WINDOW", "5m")
# Proxies (addresses or networks) whose X-Forwarded-For names the client: a TLS proxy in front of Bosun.
BOSUN_TRUSTED_PROXIES = env_networks("BOSUN_TRUSTED_PROXIES")

BOSUN_TASK_START_TIMEOUT = env_duration("BOSUN_TASK_START_TIMEOUT", "10m")
BOSUN_KILL_GRACE = env_duration("BOSUN_KILL_GRACE", "5s")
BOSUN_WEBHOOK_TIMEOUT = env_duration("BOSUN_WEBHOOK_TIMEOUT", "5s")  # one delivery attempt, all of it
# Networks webhooks may reach besides public addresses (internal receivers), e.g. 10.1.2.0/24
BOSUN_WEBHOOK_ALLOWED = env_networks("BOSUN_WEBHOOK_ALLOWED")
BOSUN_RUN_ENGINE = env_bool("BOSUN_RUN_ENGINE", True)
BOSUN_RUN_EXECUTOR = env_bool("BOSUN_RUN_EXECUTOR", True)  # `up` starts a local job executor

LOG_FORMAT = env_str("LOG_FORMAT", "text")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}")
# With LOG_FORMAT=json, one JSON object per line; a transition's line carries its fields.
METRICS_PUBLIC = env_bool("BOSUN_METRICS_PUBLIC", False)  # /metrics without a token (a private network)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "sequences.notices.metrics.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler",
                             **({"formatter": "json"} if LOG_FORMAT == "json" else {})}},
    "root": {"handlers": ["console"], "level": env_str("BOSUN_LOG_LEVEL", "INFO")},
    "loggers": {"daphne": {"level": "WARNING"}, "django.channels.server": {"level": "WARNING"}},
}
