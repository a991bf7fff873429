"""deploy/nginx-rtmp.conf rewritten for an ingest server on this machine's loopback ports
(the integration tests and bench/video.py run it; `make run` can too)."""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings

CONFIG = Path(settings.BASE_DIR) / "deploy" / "nginx-rtmp.conf"


def local_ingest_config(
    *, liveshop_url: str, secret: str, node: str, rtmp_port: int, hls_port: int, control_port: int, run_dir: Path
) -> str:
    """The production config with its placeholders filled and its ports and paths moved to
    loopback ports and `run_dir`; every line it rewrites must be there."""
    text = CONFIG.read_text()
    replacements = {
        "${LIVESHOP_URL}": liveshop_url,
        "${INGEST_CALLBACK_SECRET}": secret,
        "${INGEST_NODE}": node,
        "listen 1935;": f"listen 127.0.0.1:{rtmp_port};",
        "rtmp://127.0.0.1:1935/hls": f"rtmp://127.0.0.1:{rtmp_port}/hls",
        "listen 8080;": f"listen 127.0.0.1:{hls_port};",
        "listen 127.0.0.1:8081;": f"listen 127.0.0.1:{control_port};",
        "/tmp/liveshop-rtmp-error.log": str(run_dir / "rtmp-error.log"),
        "/tmp/liveshop-rtmp.pid": str(run_dir / "rtmp.pid"),
        "/tmp/liveshop-rtmp": str(run_dir / "rtmp"),
    }
    for old, new in replacements.items():
        if old not in text:
            raise ValueError(f"{CONFIG} no longer has {old!r}")
        text = text.replace(old, new)
    if os.geteuid() == 0:
        # nginx started by root runs its worker as nobody, who cannot enter private tmp
        # dirs; in production the HLS dir belongs to nginx's user.
        text = "user root;\n" + text
    return text
