"""Run localstripe, the Stripe stand-in, on the loopback interface only.

localstripe's own command listens on every interface and pickles its whole store to
/tmp/localstripe.pickle after every write (shared by every copy on the machine, and
slower as it grows). This runs its aiohttp app bound to one host, with the store kept
in memory, or in a file of our choosing (`--state`) so that `make run` keeps its
payments across restarts.

    python -m orders.localstripe_server --port 8420 [--state var/localstripe.pickle]

With `--port 0` it picks a free port. Either way its first line on stdout is
`localstripe listening on http://HOST:PORT`, for whoever started it.

It also adds the few Stripe Connect endpoints that payouts use (orders/localstripe_connect.py),
and teaches localstripe the one call of Stripe.js that a web page needs to pay:
confirming a PaymentIntent with the card typed into the page, the intent's client
secret and a publishable key (`browser_confirm_middleware`), and serves localstripe's
Stripe.js stand-in at `/js.stripe.com/v3/` with the matching `confirmCardPayment`
(localstripe_stripe.js). The web page then runs the same code against localstripe as
against Stripe (`STRIPE_JS_URL`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import pickle
import re
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from aiohttp import web

# What `make run` and `manage.py pay_order` use when no STRIPE_SECRET_KEY is set.
# localstripe takes any key that starts with sk_; the webhook secret is ours to pick.
LOCAL_SECRET_KEY = "sk_test_localstripe"
LOCAL_WEBHOOK_SECRET = "whsec_localstripe_liveshop"
# localstripe takes any publishable key that starts with pk_ from a browser.
LOCAL_PUBLISHABLE_KEY = "pk_test_localstripe"
STRIPE_JS_PATH = "/js.stripe.com/v3/"


def local_stripe_environment(*, port: int) -> dict[str, str]:
    """The environment that points liveshop's Stripe SDK at a local localstripe."""
    return {
        "STRIPE_SECRET_KEY": LOCAL_SECRET_KEY,
        "STRIPE_API_BASE": f"http://127.0.0.1:{port}",
        "STRIPE_WEBHOOK_SECRET": LOCAL_WEBHOOK_SECRET,
        "STRIPE_PUBLISHABLE_KEY": LOCAL_PUBLISHABLE_KEY,
        "STRIPE_JS_URL": f"http://127.0.0.1:{port}{STRIPE_JS_PATH}",
    }


def webhook_register(*, api_base: str, url: str, secret: str, wait_s: float = 15) -> None:
    """Make localstripe sign and send every event to `url` (its /_config/webhooks API).

    Waits up to `wait_s` for localstripe to answer, as it may still be starting.
    """
    body = json.dumps({"url": url, "secret": secret}).encode()
    request = urllib.request.Request(
        f"{api_base}/_config/webhooks/liveshop", data=body, headers={"Content-Type": "application/json"}
    )
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                response.read()
            return
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _use_state_file(path: Path | None) -> None:
    from localstripe import resources

    def load(self: dict[str, object]) -> None:
        if path is not None and path.exists():
            with path.open("rb") as f:
                self.clear()
                self.update(pickle.load(f))

    def dump(self: dict[str, object]) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            with tmp.open("wb") as f:
                pickle.dump(dict(self), f, protocol=pickle.HIGHEST_PROTOCOL)
            tmp.replace(path)

    resources.Store.try_load_from_disk = load
    resources.Store.dump_to_disk = dump
    resources.store.try_load_from_disk()


_CONFIRM_PATH = re.compile(r"^/v1/payment_intents/(pi_\w+)/confirm$")


def _stripe_js() -> str:
    """localstripe's Stripe.js stand-in followed by liveshop's card confirmation."""
    import localstripe

    stand_in = Path(localstripe.__file__).with_name("localstripe-v3.js").read_text()
    addition = Path(__file__).with_name("localstripe_stripe.js").read_text()
    return f"{stand_in}\n{addition}"


def browser_confirm(*, intent_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Stripe.js's confirmation of a PaymentIntent from a page, in localstripe's store.

    The client secret authenticates the page for this one intent (as at Stripe); the
    card becomes a PaymentMethod of the intent, which is then confirmed exactly as
    localstripe confirms one (a declined card raises a 402, a card that asks for 3-D
    Secure leaves the intent `requires_action`, success sends the webhook).
    """
    from localstripe.errors import UserError
    from localstripe.resources import PaymentIntent, PaymentMethod, store

    key, secret, method = body.get("key"), body.get("client_secret"), body.get("payment_method_data")
    if not (isinstance(key, str) and key.startswith("pk_")):
        raise UserError(401, "Unauthorized")
    intent = PaymentIntent._api_retrieve(intent_id)
    if secret != intent.client_secret:
        raise UserError(401, "Unauthorized")
    if intent.status not in ("requires_payment_method", "requires_confirmation"):
        raise UserError(
            400, f"This PaymentIntent's status is {intent.status}.", {"code": "payment_intent_unexpected_state"}
        )
    if not isinstance(method, dict):
        raise UserError(400, "Missing payment_method_data.", {"code": "parameter_missing"})
    card = method.get("card")
    details = method.get("billing_details")
    payment_method = PaymentMethod._api_create(
        type="card",
        card=card if isinstance(card, dict) else None,
        billing_details=details if isinstance(details, dict) and details else None,
    )
    if intent.status == "requires_payment_method" and intent.latest_charge is not None:
        # A new attempt after a declined card, as Stripe allows: localstripe would
        # otherwise refuse to charge an intent whose last charge failed.
        intent.latest_charge = None
    intent.payment_method = payment_method.id
    try:
        intent._confirm(on_failure_now=intent._report_failure)
    finally:
        store.dump_to_disk()
    exported: dict[str, Any] = intent._export()
    return exported


@web.middleware
async def browser_confirm_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Answer what localstripe lacks for a web page: Stripe.js and its card confirmation.

    A confirmation with the secret key (the server's SDK) goes on to localstripe's own
    route; one without it is Stripe.js's, from a page.
    """
    from localstripe.errors import UserError

    if request.method == "GET" and request.path == STRIPE_JS_PATH:
        return web.Response(text=_stripe_js(), content_type="application/javascript")
    match = _CONFIRM_PATH.match(request.path)
    if request.method == "POST" and match and "Authorization" not in request.headers:
        try:
            body = await request.json()
        except ValueError:
            body = None
        try:
            if not isinstance(body, dict):
                raise UserError(400, "Bad request")
            return web.json_response(browser_confirm(intent_id=match[1], body=body))
        except UserError as error:
            response: web.StreamResponse = error.to_response()
            return response
    return await handler(request)


class StripeLimits:
    """Stripe's own pace, for benchmarks (`--latency-ms`, `--write-rate`): every API call
    answers after the latency, and writes (POST) past `write_rate` a second are refused
    with 429, as Stripe's token bucket refuses them (a second's worth of burst). GET
    /_sim/stats counts both (DELETE resets them)."""

    def __init__(self, *, latency_ms: int, write_rate: int) -> None:
        self.latency_s = latency_ms / 1000
        self.write_rate = write_rate
        self.tokens = float(write_rate)
        self.at = time.monotonic()
        self.writes = 0
        self.throttled = 0

    def admit_write(self) -> bool:
        now = time.monotonic()
        self.tokens = min(float(self.write_rate), self.tokens + (now - self.at) * self.write_rate)
        self.at = now
        if self.write_rate and self.tokens < 1:
            self.throttled += 1
            return False
        self.tokens -= 1
        self.writes += 1
        return True

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/_sim/stats":
            if request.method == "DELETE":
                self.writes = self.throttled = 0
            return web.json_response({"writes": self.writes, "throttled": self.throttled})
        if not request.path.startswith("/v1/") or "Authorization" not in request.headers:
            return await handler(request)
        await asyncio.sleep(self.latency_s)
        if request.method == "POST" and not self.admit_write():
            error = {"code": "rate_limit", "type": "invalid_request_error", "message": "Too many requests."}
            return web.json_response({"error": error}, status=429)
        return await handler(request)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--state", type=Path, default=None, help="keep the store in this file (default: memory)")
    parser.add_argument("--verbose", action="store_true", help="log every request and webhook")
    parser.add_argument("--latency-ms", type=int, default=None, help="answer every API call this late (benchmarks)")
    parser.add_argument("--write-rate", type=int, default=None, help="429 past this many writes a second (benchmarks)")
    args = parser.parse_args(argv)

    _use_state_file(args.state)
    from localstripe.server import app

    from orders import localstripe_connect

    # First, so that Stripe.js's confirmation never reaches localstripe's secret-key check.
    app.middlewares.insert(0, browser_confirm_middleware)
    if args.latency_ms is not None or args.write_rate is not None:
        limits = StripeLimits(latency_ms=args.latency_ms or 0, write_rate=args.write_rate or 0)
        app.middlewares.insert(0, limits.middleware)

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    host, port = sock.getsockname()[:2]
    localstripe_connect.install(app, base_url=f"http://{host}:{port}")
    print(f"localstripe listening on http://{host}:{port}", flush=True)
    access_log = logging.getLogger("aiohttp.access") if args.verbose else None
    web.run_app(app, sock=sock, access_log=access_log, print=None, handle_signals=True)


if __name__ == "__main__":
    main()
