"""What every WebSocket consumer checks at the handshake: the browser's Origin, and the
user of the session cookie (pages) when the socket brings no ticket (apps)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user
from django.http import parse_cookie
from django.http.request import split_domain_port, validate_host
from django.utils.module_loading import import_string


def header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1")).strip()
    return None


def origin_allowed(scope: dict[str, Any]) -> bool:
    """Apps and scripts send no Origin and are allowed. A browser's Origin must be the
    whole origin (scheme, host and port) of the site the socket was opened on, a host of
    ALLOWED_HOSTS, or one of CSRF_TRUSTED_ORIGINS: a page of another origin on the same
    host name (http://127.0.0.1:9999) must not ride a viewer's session cookie."""
    origin = header(scope, b"origin")
    if origin is None:
        return True
    origin = origin.lower().rstrip("/")
    if origin in {trusted.lower().rstrip("/") for trusted in settings.CSRF_TRUSTED_ORIGINS}:
        return True
    host = (header(scope, b"host") or "").lower()
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    # The handshake's own scheme: wss behind TLS (uvicorn sets it from X-Forwarded-Proto
    # with --proxy-headers), so an https page's origin matches.
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    return origin == f"{scheme}://{host}"


def session_user(scope: dict[str, Any]) -> Any:
    cookies: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            cookies = parse_cookie(value.decode("latin-1"))
            break
    session_key = cookies.get(settings.SESSION_COOKIE_NAME)
    if not session_key:
        return None
    store = import_string(f"{settings.SESSION_ENGINE}.SessionStore")(session_key)
    # django.contrib.auth.get_user reads only request.session (and checks its hash).
    user = get_user(SimpleNamespace(session=store))  # type: ignore[arg-type]
    return user if user.is_authenticated else None
