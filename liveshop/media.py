"""Uploads (images) and replays (HLS, clips) served from MEDIA_ROOT under MEDIA_URL, when they are on the file system.

`make run`, a single server and the tests keep uploads under MEDIA_ROOT (VAR_DIR/media);
this view serves them there, with DEBUG on or off. In production with a bucket (S3,
MinIO, OSS) or a CDN, those serve them and MEDIA_SERVE is off.

Only what liveshop itself wrote can come out: a path is joined under MEDIA_ROOT with
Django's safe_join (no `..`, no absolute path, no symlink out), hidden names are refused,
and only the image and video types liveshop stores are served, each with its own type and
`nosniff`, so no uploaded byte is ever served as HTML or script.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.http import FileResponse, Http404, HttpRequest, HttpResponseBase, HttpResponseNotModified
from django.utils._os import safe_join
from django.utils.http import http_date
from django.views.decorators.http import require_safe
from django.views.static import was_modified_since

SERVED_TYPES = {
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
    # Replays (an HLS playlist and its segments) and product clips.
    ".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t", ".mp4": "video/mp4",
}  # fmt: skip


@require_safe
def media_file(request: HttpRequest, path: str) -> HttpResponseBase:
    if any(part.startswith(".") for part in Path(path).parts):
        raise Http404("No such file.")
    content_type = SERVED_TYPES.get(os.path.splitext(path)[1].lower())
    if content_type is None:
        raise Http404("No such file.")
    try:
        full = Path(safe_join(str(settings.MEDIA_ROOT), path))
        # safe_join checks the text of the path; a symlink inside MEDIA_ROOT could still
        # point out of it. MEDIA_ROOT itself may be a symlink: compare resolved paths.
        root = Path(settings.MEDIA_ROOT).resolve()
        resolved = full.resolve()
    except (SuspiciousFileOperation, ValueError, OSError):
        raise Http404("No such file.") from None
    if not resolved.is_relative_to(root) or not resolved.is_file():
        raise Http404("No such file.")
    stat = resolved.stat()
    if not was_modified_since(request.META.get("HTTP_IF_MODIFIED_SINCE"), int(stat.st_mtime)):
        return HttpResponseNotModified()
    response = FileResponse(resolved.open("rb"), content_type=content_type)
    response["Last-Modified"] = http_date(stat.st_mtime)
    response["Content-Length"] = str(stat.st_size)
    # Names are random and a file is never rewritten: caches may keep it for good.
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    # Cross-origin pages (a partner's shop page, the apps' web views) may show the images.
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response
