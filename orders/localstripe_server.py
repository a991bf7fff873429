"""Run localstripe, the Stripe stand-in, on the loopback interface only.

localstripe's own command listens on every interface and pickles its whole store to
/tmp/localstripe.pickle after every write (shared by every copy on the machine, and
slower as it grows). This runs its aiohttp app bound to one host, with the store kept
in memory, or in a file of our choosing (`--state`) so that `make run` keeps its
payments across restarts.

    python -m orders.localstripe_server --port 8420 [--state var/localstripe.pickle]

With `--port 0` it picks a free port. Either way its first line on stdout is
`localstripe listening on http://HOST:PORT`, for whoever started it.
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

# What `make run` and `manage.py pay_order` use when no STRIPE_SECRET_KEY is set.
# localstripe takes any key that starts with sk_; the webhook secret is ours to pick.
LOCAL_SECRET_KEY = "sk_test_localstripe"
LOCAL_WEBHOOK_SECRET = "whsec_localstripe_liveshop"


def local_stripe_environment(*, port: int) -> dict[str, str]:
    """The environment that points liveshop's Stripe SDK at a local localstripe."""
    return {
        "STRIPE_SECRET_KEY": LOCAL_SECRET_KEY,
        "STRIPE_API_BASE": f"http://127.0.0.1:{port}",
        "STRIPE_WEBHOOK_SECRET": LOCAL_WEBHOOK_SECRET,
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--state", type=Path, default=None, help="keep the store in this file (default: memory)")
    parser.add_argument("--verbose", action="store_true", help="log every request and webhook")
    args = parser.parse_args(argv)

    _use_state_file(args.state)
    from aiohttp import web
    from localstripe.server import app

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    host, port = sock.getsockname()[:2]
    print(f"localstripe listening on http://{host}:{port}", flush=True)
    access_log = logging.getLogger("aiohttp.access") if args.verbose else None
    web.run_app(app, sock=sock, access_log=access_log, print=None, handle_signals=True)


if __name__ == "__main__":
    main()
