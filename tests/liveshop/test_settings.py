"""The settings refuse an unsafe production configuration."""

from __future__ import annotations

import os
import subprocess
import sys


def _clean_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}


def _import_settings(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import liveshop.settings"],
        env={**_clean_environment(), **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_production_refuses_default_secret_key():
    result = _import_settings(DEBUG="0")
    assert result.returncode != 0
    assert "Set SECRET_KEY" in result.stderr


def test_production_starts_with_a_secret_key():
    assert _import_settings(DEBUG="0", SECRET_KEY="s3cret-from-the-vault").returncode == 0


def test_development_default_starts():
    assert _import_settings(DEBUG="1").returncode == 0


def test_debug_is_off_unless_asked_for():
    # Without DEBUG the settings are production's: the default secret is refused...
    result = _import_settings()
    assert (result.returncode, "Set SECRET_KEY" in result.stderr) == (1, True)
    # ...and with a secret, DEBUG is off.
    check = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.DEBUG)"],
        env={**_clean_environment(), "SECRET_KEY": "s3cret", "DJANGO_SETTINGS_MODULE": "liveshop.settings"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert check.stdout.strip() == "False"


def test_bad_boolean_is_refused():
    result = _import_settings(DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


def test_a_rate_limit_is_per_minute_and_burst_or_off():
    assert _import_settings(DEBUG="1", RATE_LIMIT_LOGIN_IP="120,60", RATE_LIMIT_ORDER_IP="off").returncode == 0
    for bad in ("fast", "10", "10,0", "-1,5"):
        result = _import_settings(DEBUG="1", RATE_LIMIT_LOGIN_IP=bad)
        assert result.returncode != 0, bad
        assert "RATE_LIMIT_LOGIN_IP" in result.stderr
