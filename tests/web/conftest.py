"""The web client's tests in a real browser: Debian's Chromium driven by Playwright.

One stack per module, as `make run` runs it but on free loopback ports and the test
database: localstripe (with the Stripe.js stand-in the pages load), uvicorn serving the
pages, the API and the room WebSocket, a Celery worker on the Redis broker that settles
payments from localstripe's signed webhooks, and Celery beat for the deadline sweepers.
Users sign in through a session made in the database (the pages' own login is tested
through its form).

Screenshots go to tests/artifacts/ (gitignored; CI keeps them).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from django.db import connection

from liveshop.models import User
from orders import localstripe_server
from tests.push_support import vapid_pair
from tests.servers import BASE_DIR, database_url, free_port, start_uvicorn

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = BASE_DIR / "tests" / "artifacts"
WEBHOOK_SECRET = "whsec_browser_tests"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-first-run",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/web/test_browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.integration)


@dataclass
class Stack:
    web: str
    stripe: str
    logs: Path
    vapid_public: str = ""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def log_tail(self, chars: int = 3000) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}" for p in sorted(self.logs.glob("*.log"))
        )


@pytest.fixture(scope="session")
def collected_static() -> None:
    """The servers run with DEBUG off, as in production, where WhiteNoise serves only the
    collected files (STATIC_ROOT): collect them once, as a deploy does."""
    call_command("collectstatic", "--noinput", verbosity=0)


@pytest.fixture(scope="module")
def stack(
    realtime_prefix: str, tmp_path_factory: pytest.TempPathFactory, django_db_setup: Any, collected_static: None
) -> Iterator[Stack]:
    if not settings.REDIS_URL or connection.vendor != "postgresql":
        pytest.skip("the browser tests need PostgreSQL and Redis (DATABASE_URL, REDIS_URL)")
    test_database = database_url()  # created by django_db_setup
    logs = tmp_path_factory.mktemp("web-stack")
    stripe_port = free_port()
    api_base = f"http://127.0.0.1:{stripe_port}"
    vapid_public, vapid_private = vapid_pair()
    env = {
        "DATABASE_URL": test_database,
        "REDIS_URL": settings.REDIS_URL,
        "LIVESHOP_REDIS_PREFIX": realtime_prefix,
        "LIVESHOP_VAR_DIR": str(logs),
        "STRIPE_SECRET_KEY": "sk_test_browser",
        "STRIPE_API_BASE": api_base,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_PUBLISHABLE_KEY": localstripe_server.LOCAL_PUBLISHABLE_KEY,
        "STRIPE_JS_URL": f"{api_base}{localstripe_server.STRIPE_JS_PATH}",
        "PYTHONUNBUFFERED": "1",
        "LEDGER_ACCOUNT_CACHE": "0",  # each test empties the database under the stack
        # Web Push to the tests' local push service (tests/push_support.py).
        "VAPID_PUBLIC_KEY": vapid_public,
        "VAPID_PRIVATE_KEY": vapid_private,
        "WEB_PUSH_ALLOWED_HOSTS": "127.0.0.1",
        "WEB_PUSH_ALLOW_HTTP": "1",
    }
    child_env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"} | env
    processes: dict[str, subprocess.Popen[bytes]] = {}
    processes["stripe"] = subprocess.Popen(
        [sys.executable, "-m", "orders.localstripe_server", "--port", str(stripe_port)],
        cwd=BASE_DIR, env=child_env, stdout=(logs / "stripe.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    processes["worker"] = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "liveshop", "worker", "-P", "solo", "-l", "warning",
         "--without-mingle", "--without-gossip", "--without-heartbeat"],
        cwd=BASE_DIR, env=child_env, stdout=(logs / "worker.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    processes["beat"] = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "liveshop", "beat", "-l", "warning", "-s", str(logs / "beat-schedule")],
        cwd=BASE_DIR, env=child_env, stdout=(logs / "beat.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    server = start_uvicorn(env, logs, drop=frozenset({"DJANGO_ALLOW_ASYNC_UNSAFE"}))
    result = Stack(web=server.http, stripe=api_base, logs=logs, vapid_public=vapid_public, processes=processes)
    try:
        localstripe_server.webhook_register(
            api_base=api_base, url=f"{server.http}/api/v1/payments/stripe/webhook/", secret=WEBHOOK_SECRET
        )
        yield result
    finally:
        server.stop()
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium for a module's tests (Debian's; Playwright downloads nothing)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browsers` installs Debian's chromium (make test does)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API leaves its event loop marked as running in this thread between
    # calls, which Django takes for async code, refusing the ORM. The tests' own ORM calls
    # (factories, assertions) run between browser steps, never inside that loop.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


def session_cookie(user: User, base_url: str) -> dict[str, Any]:
    """A signed-in session for the user, as Django's login() makes it."""
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    assert session.session_key is not None
    return {"name": settings.SESSION_COOKIE_NAME, "value": session.session_key, "url": base_url}


@dataclass
class Pages:
    """Opens pages in fresh browser contexts (separate cookies: separate people) and
    fails the test on any uncaught error in a page's JavaScript."""

    browser: Any
    stack: Stack
    contexts: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def open(
        self,
        path: str,
        *,
        user: User | None = None,
        locale: str = "en-US",
        phone: bool = True,
        before: Callable[[Any], None] | None = None,
    ) -> Any:
        viewport = {"width": 390, "height": 844} if phone else {"width": 1280, "height": 900}
        context = self.browser.new_context(
            base_url=self.stack.web, locale=locale, viewport=viewport, device_scale_factor=1, is_mobile=phone
        )
        context.set_default_timeout(15_000)
        self.contexts.append(context)
        if user is not None:
            context.add_cookies([session_cookie(user, self.stack.web)])
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(f"{path}: {error}"))
        if before is not None:
            before(page)
        page.goto(path)
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser: Any, stack: Stack) -> Iterator[Pages]:
    opened = Pages(browser=browser, stack=stack)
    yield opened
    opened.close()
    assert not opened.errors, f"JavaScript errors: {opened.errors}"


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.evaluate("window.scrollTo(0, 0)")  # the sticky header belongs at the top of a full-page shot
    page.screenshot(path=str(path), full_page=True)
    return path
