"""The ingest server on this machine: deploy/nginx-rtmp.conf rewritten for loopback ports
and a run directory, and a test-pattern publisher for it. `make run` (manage.py serve),
the integration tests and bench/video.py all run the ingest server through this module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

CONFIG = Path(settings.BASE_DIR) / "deploy" / "nginx-rtmp.conf"
RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
# The font the test pattern's title is drawn in (Debian's fonts-noto-cjk: Chinese titles).
TITLE_FONT = "Noto Sans CJK SC"


def video_tools_missing() -> list[str]:
    """What of nginx with the RTMP module and ffmpeg this machine lacks (`make system-deps`)."""
    missing = []
    if not nginx_binary():
        missing.append("nginx")
    if not RTMP_MODULE.exists():
        missing.append("libnginx-mod-rtmp")
    if shutil.which("ffmpeg") is None:
        missing.append("ffmpeg")
    return missing


def nginx_binary() -> str:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")


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


@dataclass(frozen=True)
class LocalIngest:
    """deploy/nginx-rtmp.conf on this machine's loopback ports, its files under run_dir."""

    run_dir: Path
    secret: str
    rtmp_port: int = 1935
    hls_port: int = 8080
    control_port: int = 8081
    node: str = "local"

    @property
    def hls_dir(self) -> Path:
        return self.run_dir / "rtmp" / "hls"

    @property
    def recordings_dir(self) -> Path:
        return self.run_dir / "rtmp" / "rec"

    @property
    def hls_url(self) -> str:
        return f"http://127.0.0.1:{self.hls_port}/hls/"

    def rtmp_url(self, key: str = "") -> str:
        return f"rtmp://127.0.0.1:{self.rtmp_port}/{settings.RTMP_APP}" + (f"/{key}" if key else "")

    def liveshop_env(self) -> dict[str, str]:
        """The settings a liveshop process needs to work with this ingest server."""
        return {
            "INGEST_CALLBACK_SECRET": self.secret,
            "RTMP_INGEST_URL": self.rtmp_url(),
            "HLS_PUBLIC_URL": self.hls_url,
            "RTMP_CONTROL_URL": f"http://127.0.0.1:{self.control_port}/control",
            "INGEST_RECORDINGS_DIR": str(self.recordings_dir),
        }

    def argv(self, *, liveshop_url: str) -> list[str]:
        """Write the config (and the HLS dir) and return the command that runs nginx on it
        in the foreground."""
        self.hls_dir.mkdir(parents=True, exist_ok=True)
        self.recordings_dir.mkdir(parents=True, exist_ok=True)
        config = self.run_dir / "nginx-rtmp.conf"
        config.write_text(
            local_ingest_config(
                liveshop_url=liveshop_url, secret=self.secret, node=self.node, rtmp_port=self.rtmp_port,
                hls_port=self.hls_port, control_port=self.control_port, run_dir=self.run_dir,
            )
        )  # fmt: skip
        error_log = self.run_dir / "rtmp-error.log"
        return [nginx_binary(), "-p", str(self.run_dir), "-e", str(error_log), "-c", str(config), "-g", "daemon off;"]


def title_font() -> str:
    """The file of TITLE_FONT, or '' when fontconfig does not have it."""
    try:
        found = subprocess.run(
            ["fc-match", "-f", "%{file}", TITLE_FONT], capture_output=True, text=True, timeout=10, check=False
        )
    except OSError:
        return ""
    path = found.stdout.strip()
    return path if path and Path(path).exists() else ""


def pattern_publisher_argv(
    url: str,
    *,
    title_file: Path | None = None,
    size: str = "640x360",
    rate: int = 15,
    muxer: Sequence[str] = ("-f", "flv"),
) -> list[str]:
    """ffmpeg publishing a moving test pattern (testsrc2, a clock in it) and a quiet tone
    to `url` as OBS would: H.264 with a key frame every second (the HLS fragment), AAC,
    in FLV over RTMP (or through another `muxer` to a file, for bench/video.py's baseline).
    With title_file, its text (UTF-8, read by ffmpeg: no escaping) is drawn on the picture."""
    video = f"testsrc2=size={size}:rate={rate}"
    font = title_font() if title_file is not None else ""
    if title_file is not None and font:
        video += (
            f",drawtext=fontfile='{font}':textfile='{title_file}':fontsize=h/14:fontcolor=white"
            ":box=1:boxcolor=black@0.55:boxborderw=10:x=(w-text_w)/2:y=h-text_h-24"
        )
    return [
        "ffmpeg", "-hide_banner", "-nostats", "-loglevel", "warning",
        "-re", "-f", "lavfi", "-i", video,
        "-re", "-f", "lavfi", "-i", "sine=frequency=330:sample_rate=44100",
        "-filter:a", "volume=0.05",
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
        "-g", str(rate), "-b:v", "800k",
        "-c:a", "aac", "-b:a", "64k",
        *muxer, url,
    ]  # fmt: skip
