"""liveshop settings: one module, driven by the environment.

Every knob an operator may turn is read here from an environment variable (see the
README's configuration table). With none set, the project runs on the embedded default:
SQLite under var/, an in-process channel layer and cache, and a Celery broker on the
file system, so `make run` needs no server. Production sets DATABASE_URL and REDIS_URL.
"""

from __future__ import annotations

import os
import zoneinfo
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

# Lets Django's generic classes be subscripted at run time (ModelAdmin[Shop], QuerySet[X]).
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("LIVESHOP_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_rate(name: str, default: str) -> tuple[int, int] | None:
    """A rate limit written `<per minute>,<burst>` ("30,10"), or None for `off` (or 0)."""
    value = env_str(name, default).strip().lower()
    if value in {"off", "0", "none"}:
        return None
    try:
        per_minute, burst = (int(part) for part in value.split(","))
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be `<per minute>,<burst>` or `off`, not {value!r}") from None
    if per_minute < 1 or burst < 1:
        raise ImproperlyConfigured(f"{name}: the rate and the burst must be at least 1, not {value!r}")
    return per_minute, burst


# --- Core -----------------------------------------------------------------------------

# Off unless asked for: Django's debug pages list every URL and the settings. `make run`
# (the demo) turns it on; with it off, the default secret is refused below.
DEBUG = env_bool("DEBUG", False)
_DEFAULT_SECRET_KEY = "liveshop-insecure-development-key"
SECRET_KEY = env_str("SECRET_KEY", _DEFAULT_SECRET_KEY)
if not DEBUG and SECRET_KEY == _DEFAULT_SECRET_KEY:
    raise ImproperlyConfigured("Set SECRET_KEY: the default key is for development only (DEBUG=1).")

# Error reports (the debug page, mails to admins) hide credentials, URLs' passwords too.
DEFAULT_EXCEPTION_REPORTER_FILTER = "liveshop.reporting.SettingsFilter"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    # API tokens, stored hashed, one per device, expiring (liveshop/auth.py).
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "liveshop",
    "catalog",
    "rooms",
    "orders",
    "streams",
    "notifications",
    "envelopes",
    "payouts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The web pages follow the browser's language (the API's answers stay as they are).
    "liveshop.web.WebLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "liveshop.web.WebMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "liveshop.urls"
ASGI_APPLICATION = "liveshop.asgi.application"
AUTH_USER_MODEL = "liveshop.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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

# --- Database -------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'liveshop.sqlite3'}")
# Reusing connections matters: opening a PostgreSQL connection per request costs more
# than the request itself (PERFORMANCE.md: ~200 req/s with CONN_MAX_AGE=0 against
# ~1,300). Under ASGI, Django runs each request's sync code in a thread of its own
# (asgiref's ThreadSensitiveContext per request), and connections belong to threads:
# persistent connections (CONN_MAX_AGE) are then opened once per request and never
# reused, and pile up until PostgreSQL refuses more ("too many clients" at 64 concurrent
# requests, measured: docs/PERFORMANCE.md, benchmark 2). So with PostgreSQL the default
# is Django's connection pool (psycopg_pool), shared by the threads of a process:
# a request borrows a connection and gives it back when it ends.
DATABASE_POOL = env_bool("DATABASE_POOL", True)
DATABASE_POOL_MAX_SIZE = env_int("DATABASE_POOL_MAX_SIZE", 10)
# Each process remembers ledger accounts once made (they are never deleted): off only for
# processes whose database is emptied under them, as the browser tests' stack between tests.
LEDGER_ACCOUNT_CACHE = env_bool("LEDGER_ACCOUNT_CACHE", True)
_db_url = dj_database_url.parse(DATABASE_URL)
_pooled = DATABASE_POOL and _db_url["ENGINE"] == "django.db.backends.postgresql"
DATABASES: dict[str, dict[str, Any]] = {
    "default": dict(
        dj_database_url.parse(
            DATABASE_URL,
            # The pool keeps the connections; Django must close (return) them per request.
            conn_max_age=0 if _pooled else env_int("CONN_MAX_AGE", 600),
            conn_health_checks=not _pooled,
        )
    )
}
if _pooled:
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_MAX_SIZE,
        # A request waits this long for a free connection before failing.
        "timeout": env_int("DATABASE_POOL_TIMEOUT_S", 10),
    }
# A process frozen in the middle of a transaction (a paused VM, a stopped worker) keeps
# its connection open and its row locks held: one holding a sku's row would stall every
# order of that sku and every sweeper behind it. PostgreSQL ends a session left idle in a
# transaction this long, rolling it back (tests/chaos/test_worker_kill.py). No code path
# keeps a transaction idle (network calls happen outside transactions); 0 turns it off.
DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_S = env_int("DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_S", 60)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
        f"-c idle_in_transaction_session_timeout={DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_S * 1000}"
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # The embedded default runs the web process, a worker and beat on one file: WAL lets
    # readers run beside the writer, and IMMEDIATE transactions take the write lock up
    # front so that two writers queue (up to the timeout) instead of failing mid-way.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

# Requests one web process works on at once (threads running Django's sync code; see
# liveshop/wsgi_threads.py). Each holds a database connection while it runs. More
# threads overlap more waiting (database, Stripe) but contend for the GIL: in the
# flash-sale benchmark 8 did better than 16 (docs/PERFORMANCE.md).
HTTP_THREADS = env_int("HTTP_THREADS", 8)

# --- Redis, cache, channel layer --------------------------------------------------------

REDIS_URL = env_str("REDIS_URL")
# Pools are sized for connect storms: redis-py's asyncio pool defaults to 100 connections
# and raises when full, which broke group_add/group_discard at 5,000 sockets.
REDIS_MAX_CONNECTIONS = env_int("REDIS_MAX_CONNECTIONS", 1000)
# Redis pub/sub is not scoped by the /N database index: every key *and channel* liveshop
# uses (liveshop.redis_client, the cache) starts with this prefix, so deployments (or test
# runs) sharing one Redis never hear each other.
LIVESHOP_REDIS_PREFIX = env_str("LIVESHOP_REDIS_PREFIX", "liveshop")

if REDIS_URL:
    CACHES: dict[str, dict[str, Any]] = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": LIVESHOP_REDIS_PREFIX,
            # Blocking: a full pool makes a caller wait for a connection instead of failing.
            "OPTIONS": {"max_connections": REDIS_MAX_CONNECTIONS, "pool_class": "redis.BlockingConnectionPool"},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# No Channels channel layer: room events reach sockets through the room hub
# (rooms/realtime/), one Redis subscription per room per process; a group_send per
# socket measured 8-18x the CPU per frame (docs/PERFORMANCE.md).

# --- The real-time path (rooms/broadcast.py, rooms/realtime/) -----------------------------

# Where room events travel between processes: "redis" (seq, replay stream, pub/sub,
# counters in Redis; any number of web processes) or "database" (the embedded default:
# an event log table that the one web process tails, so Celery's worker and beat reach
# its sockets too). Follows REDIS_URL unless set.
REALTIME_BACKEND = env_str("REALTIME_BACKEND", "redis" if REDIS_URL else "database")
if REALTIME_BACKEND not in {"redis", "database"}:
    raise ImproperlyConfigured(f"REALTIME_BACKEND must be redis or database, not {REALTIME_BACKEND!r}")
if REALTIME_BACKEND == "redis" and not REDIS_URL:
    raise ImproperlyConfigured("REALTIME_BACKEND=redis needs REDIS_URL")
# Past what one Redis carries, the rooms go to a Redis Cluster (Redis 7; comma-separated
# startup nodes, `redis://rt-0:6379,redis://rt-1:6379`): a room's seq, history, sharded
# pub/sub channel, presence, counters and the comment rate limits live in its hash slot
# (rooms/realtime/redis_cluster.py), and each flash sale's gate in its own. Unset: all on
# REDIS_URL. Tickets, the cache, red-envelope gates and the Celery broker stay on
# REDIS_URL either way.
REDIS_CLUSTER_URL = env_str("REDIS_CLUSTER_URL")
if REDIS_CLUSTER_URL and REALTIME_BACKEND != "redis":
    raise ImproperlyConfigured("REDIS_CLUSTER_URL needs the redis real-time backend (REDIS_URL)")
if env_str("REALTIME_REDIS_URLS"):
    raise ImproperlyConfigured(
        "REALTIME_REDIS_URLS (rooms sharded by crc32) was replaced by REDIS_CLUSTER_URL: "
        "see docs/reliability/scale-out.md, 'From REALTIME_REDIS_URLS to a cluster'"
    )
# Pending events of a room go out as one `batch` frame per tick (a quiet room's first
# event goes at once): a socket gets at most 1000/ROOM_TICK_MS frames a second.
ROOM_TICK_MS = env_int("ROOM_TICK_MS", 100)
# Past this many comments a second, viewers get a fair sample (hosts and moderators
# get all); other events are never thinned.
ROOM_VIEWER_COMMENTS_PER_S = env_int("ROOM_VIEWER_COMMENTS_PER_S", 10)
# A socket that cannot take frames (its client stopped reading) buffers at most this many
# frames, then is closed (1013) so the client reconnects with ?since= and catches up.
ROOM_SOCKET_BACKLOG = env_int("ROOM_SOCKET_BACKLOG", 200)
# ?since= replay keeps every event for at least this long and at least this many.
ROOM_REPLAY_MIN_AGE_S = env_int("ROOM_REPLAY_MIN_AGE_S", 600)
ROOM_REPLAY_MIN_EVENTS = env_int("ROOM_REPLAY_MIN_EVENTS", 1000)
# Each web process reports its sockets per room every second; a process that stops
# reporting (it died) drops out of `viewers.now` after this many seconds.
PRESENCE_TTL_S = env_int("PRESENCE_TTL_S", 5)
# Comments: a burst of COMMENT_BURST, then COMMENT_RATE_PER_MIN a minute, per user
# (GCRA); the room's slow_mode_s applies on top to viewers.
COMMENT_BURST = env_int("COMMENT_BURST", 5)
COMMENT_RATE_PER_MIN = env_int("COMMENT_RATE_PER_MIN", 20)
# Comments from room sockets are written in batches (group commit): a batch starts this
# many ms after the first comment waiting, or as soon as the one before it committed.
COMMENT_BATCH_MS = env_int("COMMENT_BATCH_MS", 2)
# A red envelope's shares can be grabbed this long after it opens; then what is left goes
# back to its sender (envelopes/services.py).
RED_ENVELOPE_TTL_S = env_int("RED_ENVELOPE_TTL_S", 300)
WS_TICKET_TTL_S = env_int("WS_TICKET_TTL_S", 60)

# --- Rate limits and sizes (liveshop/ratelimit.py) ------------------------------------------

# Per-user and per-IP limits on the paths one client could flood (login, register, order
# creation, comments), each `<per minute>,<burst>` or `off`. The client's IP is the
# socket's peer as uvicorn gives it: the X-Forwarded-For address only when the peer is a
# proxy listed in uvicorn's FORWARDED_ALLOW_IPS. Per-IP limits are higher than per-user
# ones because a county office or a mobile carrier puts many people behind one address.
RATE_LIMITS = env_bool("RATE_LIMITS", True)
# Login: per username tried *from one address* (the tight limit: an address guessing a
# password locks out that address, not the account's owner), per username tried from
# anywhere (higher: it stops a guess spread over many addresses), and per address.
RATE_LIMIT_LOGIN_USER_IP = env_rate("RATE_LIMIT_LOGIN_USER_IP", "10,10")
RATE_LIMIT_LOGIN_USER = env_rate("RATE_LIMIT_LOGIN_USER", "10,30")
RATE_LIMIT_LOGIN_IP = env_rate("RATE_LIMIT_LOGIN_IP", "120,60")
RATE_LIMIT_REGISTER_IP = env_rate("RATE_LIMIT_REGISTER_IP", "30,30")
RATE_LIMIT_ORDER_USER = env_rate("RATE_LIMIT_ORDER_USER", "30,10")
RATE_LIMIT_ORDER_IP = env_rate("RATE_LIMIT_ORDER_IP", "600,200")
RATE_LIMIT_COMMENT_IP = env_rate("RATE_LIMIT_COMMENT_IP", "600,100")  # per user: COMMENT_* above
# The largest WebSocket text frame a client may send (a comment is 200 characters): a
# bigger one closes the socket with 1009. uvicorn's --ws-max-size caps what it buffers.
WS_MAX_FRAME_BYTES = env_int("WS_MAX_FRAME_BYTES", 4096)

# --- Celery ---------------------------------------------------------------------------

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {}
if CELERY_BROKER_URL == "filesystem://":
    # A broker that needs no server: kombu's file-system transport, shared by the web
    # process, the worker and beat on one machine.
    _queue_dir = VAR_DIR / "celery" / "queue"
    _queue_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "store_processed": False,
        # Remote-control messages (celery inspect) go here instead of ./control.
        "control_folder": str(VAR_DIR / "celery" / "control"),
    }
elif CELERY_BROKER_URL.startswith(("amqp://", "amqps://", "pyamqp://")):
    # RabbitMQ, the production broker: a task a dead worker had taken goes back to the
    # queue the moment its connection drops (acks_late, reject_on_worker_lost), not after
    # a timeout; publisher confirms make a publish return only once the broker has the
    # message. The queues are quorum queues (CELERY_TASK_QUEUES below): replicated on a
    # cluster, kept on disk across a restart.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
else:
    # acks_late tasks are redelivered after the visibility timeout when a worker dies.
    # Every worker looks for such tasks every unacked_restore_interval (10 s), but kombu
    # only scans on every unacked_restore_throttle-th look (10 by default): 100 s more
    # on top of the timeout. Scanning every time (one small sorted-set read) keeps the
    # delay to the visibility timeout plus 10 s (tests/chaos/test_worker_kill.py).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT_S", 300),
        "unacked_restore_throttle": 1,
    }
# PaymentIntents that waited for Stripe's write limit (a flash sale's winners) are network
# waits of ~300 ms each: with STRIPE_TASK_QUEUE set they get their own queue, for a
# worker of threads (`celery -A liveshop worker -Q stripe -P threads -c 25`). Unset: the
# default queue, served by every worker.
STRIPE_TASK_QUEUE = env_str("STRIPE_TASK_QUEUE")
CELERY_TASK_ROUTES = (
    {"orders.tasks.order_payment_prepare_task": {"queue": STRIPE_TASK_QUEUE}} if STRIPE_TASK_QUEUE else {}
)
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "celery")
if CELERY_BROKER_URL.startswith(("amqp://", "amqps://", "pyamqp://")):
    from kombu import Queue

    CELERY_TASK_QUEUES = [
        Queue(name, routing_key=name, queue_arguments={"x-queue-type": "quorum"})
        for name in dict.fromkeys(q for q in (CELERY_TASK_DEFAULT_QUEUE, STRIPE_TASK_QUEUE) if q)
    ]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Sweepers that act on deadlines run at least every 2 seconds (the operators' contract);
# each is idempotent, so an overlap or a redelivery changes nothing.
CELERY_BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # A sweep not started within a few seconds is dropped: the next one does its work.
    "orders-expire-due": {"task": "orders.tasks.orders_expire_due_task", "schedule": 1.0, "options": {"expires": 5}},
    "flash-sales-sweep": {"task": "rooms.tasks.flash_sales_sweep_task", "schedule": 1.0, "options": {"expires": 5}},
    "giveaways-sweep": {"task": "rooms.tasks.giveaways_sweep_task", "schedule": 1.0, "options": {"expires": 5}},
    "red-envelopes-expire": {
        "task": "envelopes.tasks.red_envelopes_expire_task",
        "schedule": 2.0,
        "options": {"expires": 10},
    },
    "stripe-events-requeue": {"task": "orders.tasks.stripe_events_requeue_task", "schedule": 30.0},
    "comments-retention": {"task": "rooms.tasks.comments_retention_task", "schedule": 3600.0},
    "orders-deliver-due": {"task": "orders.tasks.orders_deliver_due_task", "schedule": 3600.0},
    # Money out: release what is due, build the period's payouts, send what is approved,
    # and every night check that every fen adds up (payouts/tasks.py).
    "payouts-sweep": {"task": "payouts.tasks.payouts_sweep_task", "schedule": 600.0, "options": {"expires": 300}},
    "reconcile-nightly": {
        "task": "payouts.tasks.reconcile_task",
        "schedule": crontab(hour=3, minute=30),
        "options": {"expires": 3600},
    },
    "idempotency-records-purge": {"task": "orders.tasks.idempotency_records_purge_task", "schedule": 3600.0},
    "room-stats-reports-sweep": {"task": "rooms.tasks.room_stats_reports_sweep_task", "schedule": 60.0},
    # Replays whose recordings never said they were done, and replays past their retention.
    "replays-sweep": {"task": "streams.tasks.replays_sweep_task", "schedule": 300.0, "options": {"expires": 60}},
    # Live rooms' likes, views, peak and visitors into PostgreSQL, for a Redis that restarts empty.
    "room-counters-checkpoint": {
        "task": "rooms.tasks.room_counters_checkpoint_task",
        "schedule": float(env_int("ROOM_COUNTERS_CHECKPOINT_S", 10)),
        "options": {"expires": 10},
    },
}
CELERY_TIMEZONE = "UTC"

# --- Business settings -----------------------------------------------------------------

CURRENCY = "cny"

# Web Push (notifications on a phone's lock screen): the VAPID key pair that
# `manage.py vapid_keys` prints; unset, no push.
VAPID_PUBLIC_KEY = env_str("VAPID_PUBLIC_KEY")  # base64url, uncompressed P-256 point
VAPID_PRIVATE_KEY = env_str("VAPID_PRIVATE_KEY")  # base64url DER or PEM
VAPID_SUBJECT = env_str("VAPID_SUBJECT", "mailto:ops@liveshop.example")
# Browsers' push services a subscription's endpoint may name (the worker POSTs there: any
# other host would let a user aim liveshop's requests at anything). `*.` covers subdomains.
WEB_PUSH_ALLOWED_HOSTS = env_list(
    "WEB_PUSH_ALLOWED_HOSTS",
    "fcm.googleapis.com,updates.push.services.mozilla.com,*.notify.windows.com,*.push.apple.com",
)
# Plain-http endpoints (a local push service in the tests); never in production.
WEB_PUSH_ALLOW_HTTP = env_bool("WEB_PUSH_ALLOW_HTTP", False)

# --- Video ingest (streams/) -----------------------------------------------------------
# The secret nginx-rtmp puts in its on_publish/on_publish_done URLs (?secret=...); empty
# refuses every callback, so no stream is accepted until it is set.
INGEST_CALLBACK_SECRET = env_str("INGEST_CALLBACK_SECRET")
# What the host types into OBS as the server (the key is the stream key); empty: no ingest
# server, and rooms keep the playback URL their host typed.
RTMP_INGEST_URL = env_str("RTMP_INGEST_URL")
# Where viewers fetch HLS: playback_url = HLS_PUBLIC_URL + <public stream name> + ".m3u8".
HLS_PUBLIC_URL = env_str("HLS_PUBLIC_URL")
# The ingest server's loopback control endpoint (nginx-rtmp `rtmp_control`), through
# which liveshop drops a publisher: "http://127.0.0.1:8081/control".
RTMP_CONTROL_URL = env_str("RTMP_CONTROL_URL")
# The nginx-rtmp application the hosts publish to.
RTMP_APP = env_str("RTMP_APP", "live")
# Where the ingest server records each publish (nginx-rtmp `record_path`), as the Celery
# workers that make replays see it: the same host, or a volume both mount. Empty: no
# replays (on_record_done is answered and ignored).
INGEST_RECORDINGS_DIR = env_str("INGEST_RECORDINGS_DIR")
# Replays and product clips are deleted this many days after the show (the stats stay).
REPLAY_RETENTION_DAYS = env_int("REPLAY_RETENTION_DAYS", 90)
# A product clip runs from its chapter to the next one, at most this long.
REPLAY_CLIP_MAX_S = env_int("REPLAY_CLIP_MAX_S", 60)
# A replay's HLS segment length: a seek lands within it.
REPLAY_SEGMENT_S = env_int("REPLAY_SEGMENT_S", 4)
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
STRIPE_API_BASE = env_str("STRIPE_API_BASE")
# What the web page pays with: Stripe.js from this address, with this publishable key
# (`make run` and the tests point both at localstripe's stand-in).
STRIPE_PUBLISHABLE_KEY = env_str("STRIPE_PUBLISHABLE_KEY")
STRIPE_JS_URL = env_str("STRIPE_JS_URL", "https://js.stripe.com/v3/")
# Payment method types offered besides `card`, where the Stripe account has them enabled
# ("alipay,wechat_pay"); a type the account lacks makes Stripe refuse the PaymentIntent,
# so the default is card alone.
STRIPE_PAYMENT_METHOD_TYPES = env_list("STRIPE_PAYMENT_METHOD_TYPES", "card")
# How old a webhook's signed timestamp may be (replay protection), as Stripe's SDK does.
STRIPE_WEBHOOK_TOLERANCE_S = env_int("STRIPE_WEBHOOK_TOLERANCE_S", 300)
# The port `make run` starts localstripe on when STRIPE_SECRET_KEY is unset.
LOCALSTRIPE_PORT = env_int("LOCALSTRIPE_PORT", 8420)
# Celery tasks applying stored Stripe events at once (orders/services/payments.py: a flood
# of webhooks wakes this many drainers, not a task per webhook).
SETTLEMENT_DRAINERS = env_int("SETTLEMENT_DRAINERS", 2)
# Writes a second to Stripe, shared by every process (orders/stripe_limiter.py): Stripe's
# default limit per endpoint, and its whole limit in test mode. 0: no limit.
STRIPE_WRITE_RATE = env_int("STRIPE_WRITE_RATE", 25)
ORDER_PAYMENT_TIMEOUT_S = env_int("ORDER_PAYMENT_TIMEOUT_S", 900)
FLASH_ORDER_PAYMENT_TIMEOUT_S = env_int("FLASH_ORDER_PAYMENT_TIMEOUT_S", 300)
GIVEAWAY_CLAIM_WINDOW_S = env_int("GIVEAWAY_CLAIM_WINDOW_S", 48 * 3600)
# What a coin costs in a top-up, in minor units of CURRENCY (default: 1 coin = 10 fen).
COIN_PRICE_FEN = env_int("COIN_PRICE_FEN", 10)
# The platform's share of every gift, in basis points of its coins; the host earns the rest.
GIFT_PLATFORM_SHARE_BPS = env_int("GIFT_PLATFORM_SHARE_BPS", 3000)
if COIN_PRICE_FEN < 1 or not 0 <= GIFT_PLATFORM_SHARE_BPS <= 10_000:
    raise ImproperlyConfigured("COIN_PRICE_FEN must be >= 1 and GIFT_PLATFORM_SHARE_BPS from 0 to 10000.")
# The platform's fee, in basis points of every paid order. A host's commission comes from
# the seller's offer (catalog.Offer, at most 5000), so the two never pass the whole amount.
PLATFORM_FEE_BPS = env_int("PLATFORM_FEE_BPS", 500)
if not 0 <= PLATFORM_FEE_BPS <= 5000:
    raise ImproperlyConfigured("PLATFORM_FEE_BPS must be from 0 to 5000.")
# Comments older than this many days are removed (0: kept for ever). In PostgreSQL the
# comments are partitioned by month and a month goes as a whole once all of it is older
# (rooms/services/retention.py).
COMMENT_RETENTION_DAYS = env_int("COMMENT_RETENTION_DAYS", 0)
# Money out (payouts/; CONTRACT.md "Money out"). A shipped order nobody confirmed is
# delivered this long after shipping; its payees' shares become payable this long after
# delivery (the buyer's window to ask for a refund).
AUTO_DELIVER_DAYS = env_int("AUTO_DELIVER_DAYS", 14)
PAYOUT_HOLD_DAYS = env_int("PAYOUT_HOLD_DAYS", 7)
# Payouts are built for each period that ended: "daily", "weekly" (Monday to Sunday) or
# "monthly"; only for a payee owed at least PAYOUT_MINIMUM_FEN. A payout up to
# PAYOUT_AUTO_APPROVE_FEN is approved without staff (0: staff approve every one).
PAYOUT_SCHEDULE = env_str("PAYOUT_SCHEDULE", "weekly")
PAYOUT_MINIMUM_FEN = env_int("PAYOUT_MINIMUM_FEN", 100)
PAYOUT_AUTO_APPROVE_FEN = env_int("PAYOUT_AUTO_APPROVE_FEN", 0)
# What the platform pays a host for one earned coin, in fen (default: what a coin costs;
# the platform's share was taken when the gift was sent), and the fewest coins a
# cash-out takes.
COIN_CASHOUT_FEN = env_int("COIN_CASHOUT_FEN", COIN_PRICE_FEN)
COIN_CASHOUT_MINIMUM_COINS = env_int("COIN_CASHOUT_MINIMUM_COINS", 100)
if PAYOUT_SCHEDULE not in ("daily", "weekly", "monthly"):
    raise ImproperlyConfigured("PAYOUT_SCHEDULE must be daily, weekly or monthly.")
if min(AUTO_DELIVER_DAYS, PAYOUT_HOLD_DAYS, PAYOUT_AUTO_APPROVE_FEN) < 0 or PAYOUT_MINIMUM_FEN < 1:
    raise ImproperlyConfigured("AUTO_DELIVER_DAYS, PAYOUT_HOLD_DAYS must be >= 0 and PAYOUT_MINIMUM_FEN >= 1.")
if not 1 <= COIN_CASHOUT_FEN <= COIN_PRICE_FEN or COIN_CASHOUT_MINIMUM_COINS < 1:
    raise ImproperlyConfigured("COIN_CASHOUT_FEN must be from 1 to COIN_PRICE_FEN; COIN_CASHOUT_MINIMUM_COINS >= 1.")
# What one buyer may hold in unpaid orders at once (units of one sku, and in all), so that
# one free account cannot hold a shop's stock with orders it never pays.
UNPAID_UNITS_PER_SKU = env_int("UNPAID_UNITS_PER_SKU", 20)
UNPAID_UNITS_PER_BUYER = env_int("UNPAID_UNITS_PER_BUYER", 60)
if not 1 <= UNPAID_UNITS_PER_SKU <= UNPAID_UNITS_PER_BUYER:
    raise ImproperlyConfigured("UNPAID_UNITS_PER_SKU must be >= 1 and at most UNPAID_UNITS_PER_BUYER.")
# Idempotency-Key records are kept at least this long (the contract says 24 hours).
IDEMPOTENCY_KEY_TTL_S = env_int("IDEMPOTENCY_KEY_TTL_S", 24 * 3600)
# How long a request may work on a key before a retry may take it over: a process that
# crashed (or lost the database) never releases its key; a live request finishes far
# sooner, Stripe's timeouts included.
IDEMPOTENCY_LEASE_S = env_int("IDEMPOTENCY_LEASE_S", 60)
# The district report's days (`?from=`, `?to=`) are days in this time zone: a show at
# 07:00 in Chongqing on 1 April belongs to April, though it is still 31 March in UTC.
STATS_TIME_ZONE = env_str("STATS_TIME_ZONE", "Asia/Shanghai")
try:
    zoneinfo.ZoneInfo(STATS_TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(f"STATS_TIME_ZONE must be an IANA time zone, not {STATS_TIME_ZONE!r}") from None

# --- Auth, passwords, sessions --------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# An API token (knox's: only its hash is stored) lives this long after the login that made
# it, then the client logs in again. Each login makes a token of its own (one per device).
API_TOKEN_TTL_S = env_int("API_TOKEN_TTL_S", 30 * 24 * 3600)
if API_TOKEN_TTL_S < 60:
    raise ImproperlyConfigured("API_TOKEN_TTL_S must be at least 60 seconds.")
REST_KNOX: dict[str, Any] = {
    "TOKEN_TTL": timedelta(seconds=API_TOKEN_TTL_S),
    # Clients send `Authorization: Token <token>` (docs/CONTRACT.md), as with DRF's tokens.
    "AUTH_HEADER_PREFIX": "Token",
    # A fixed life: no write to the token's row on every request.
    "AUTO_REFRESH": False,
}
SESSION_COOKIE_SECURE = not DEBUG
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"
CSRF_COOKIE_SECURE = not DEBUG
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- REST framework and the schema --------------------------------------------------------

REST_FRAMEWORK: dict[str, Any] = {
    # Token first: an anonymous request is then answered 401 with WWW-Authenticate.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "liveshop.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PARSER_CLASSES": ["liveshop.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "liveshop.pagination.PageNumberPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "liveshop.api_docs.AutoSchema",
    "EXCEPTION_HANDLER": "liveshop.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "PAGE_SIZE": 20,
}

SPECTACULAR_SETTINGS: dict[str, Any] = {
    "TITLE": "liveshop API",
    "DESCRIPTION": "Live-selling backend: storefronts, broadcast rooms, orders and payments.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "RoomStatusEnum": "rooms.models.Room.Status",
        "FlashSaleStatusEnum": "rooms.models.FlashSale.Status",
        "HostKindEnum": "rooms.models.Host.Kind",
        "OrderStatusEnum": "orders.models.Order.Status",
        "RefundStatusEnum": "orders.models.Refund.Status",
        "RefundKindEnum": "orders.models.Refund.Kind",
        "ModerationActionEnum": "rooms.models.ModerationAction.Action",
        "ReportStatusEnum": "rooms.models.Report.Status",
        "ReportResolutionEnum": "rooms.models.Report.Resolution",
        "ReportQueueStatusEnum": [("open", "open"), ("resolved", "resolved"), ("all", "all")],
        "GiveawayStatusEnum": "rooms.models.Giveaway.Status",
        "GiveawayWinnerStatusEnum": "rooms.models.GiveawayWinner.Status",
        "TopUpStatusEnum": "orders.models.TopUp.Status",
    },
}

# --- Static files, i18n, logging ---------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# --- Uploaded media: product photos, room covers (liveshop/images.py) ----------------------

# Where uploads go: the file system under MEDIA_ROOT by default, served by liveshop itself
# under MEDIA_URL (liveshop/media.py); an S3-compatible bucket (AWS S3, MinIO, Aliyun OSS,
# Cloudflare R2) when AWS_STORAGE_BUCKET_NAME is set, served by the bucket or a CDN in
# front of it (AWS_S3_CUSTOM_DOMAIN), never by liveshop.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or VAR_DIR / "media")
# A path ("/media/") gives site-relative photo URLs; a full URL (a CDN in front of
# MEDIA_ROOT) gives absolute ones.
MEDIA_URL = env_str("MEDIA_URL", "/media/")
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
if AWS_STORAGE_BUCKET_NAME:
    _default_storage: dict[str, Any] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL") or None,
            "region_name": env_str("AWS_S3_REGION_NAME") or None,
            "access_key": env_str("AWS_ACCESS_KEY_ID") or None,
            "secret_key": env_str("AWS_SECRET_ACCESS_KEY") or None,
            "custom_domain": env_str("AWS_S3_CUSTOM_DOMAIN") or None,
            # Photos are public and their URLs go into cached room events: plain URLs,
            # not signed ones that expire (the bucket or the CDN makes them readable).
            "querystring_auth": env_bool("AWS_QUERYSTRING_AUTH", False),
            # Names are random and never rewritten: a second upload never overwrites one.
            "file_overwrite": False,
            "object_parameters": {"CacheControl": "public, max-age=31536000, immutable"},
        },
    }
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES: dict[str, dict[str, Any]] = {
    "default": _default_storage,
    # As Django's default: WhiteNoise serves what collectstatic gathered in STATIC_ROOT.
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# liveshop serves MEDIA_URL from MEDIA_ROOT itself (liveshop/media.py) when uploads are on
# the file system; off when a web server or CDN in front serves MEDIA_ROOT.
MEDIA_SERVE = env_bool("MEDIA_SERVE", not AWS_STORAGE_BUCKET_NAME)
# An uploaded image: at most this many bytes (the HTTP layer refuses a bigger body as it
# arrives, liveshop/wsgi_threads.py) and this many pixels (width x height, checked from
# the header before decoding: a small file can declare a huge image).
IMAGE_UPLOAD_MAX_BYTES = env_int("IMAGE_UPLOAD_MAX_BYTES", 8 * 1024 * 1024)
IMAGE_MAX_PIXELS = env_int("IMAGE_MAX_PIXELS", 40_000_000)
# Photos one product may have (Taobao allows nine on a listing).
PRODUCT_PHOTOS_MAX = env_int("PRODUCT_PHOTOS_MAX", 9)
LANGUAGE_CODE = "en"
# The web pages' languages (liveshop/locale/); the browser's Accept-Language chooses.
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Bodies larger than this are refused with 413 as they arrive (liveshop/wsgi_threads.py).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 256 * 1024)

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        # The Stripe SDK logs every request at INFO.
        "stripe": {"level": "WARNING"},
        # Beat sends the deadline sweepers every second: their "sent", "received" and
        # "succeeded" lines at INFO would drown everything else. Failures still show.
        "celery.beat": {"level": env_str("CELERY_TASK_LOG_LEVEL", "WARNING")},
        "celery.app.trace": {"level": env_str("CELERY_TASK_LOG_LEVEL", "WARNING")},
        "celery.worker.strategy": {"level": env_str("CELERY_TASK_LOG_LEVEL", "WARNING")},
        # A sweep that waited past its `expires` is dropped by design (the next one does
        # its work): "Discarding revoked task" at INFO, every second on a busy worker.
        "celery.worker.request": {"level": env_str("CELERY_TASK_LOG_LEVEL", "WARNING")},
    },
}
