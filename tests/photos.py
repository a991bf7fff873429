"""Images made in memory with Pillow, for the upload tests."""

from __future__ import annotations

import io
import zlib
from struct import pack

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def image_bytes(
    fmt: str = "JPEG",
    size: tuple[int, int] = (800, 600),
    color: tuple[int, ...] = (200, 40, 30),
    *,
    orientation: int | None = None,
    gps: bool = False,
    mode: str = "RGB",
) -> bytes:
    """A picture: left half `color`, right half white (so a rotation is visible)."""
    image = Image.new(mode, size, (255, 255, 255) if mode == "RGB" else (255, 255, 255, 0))
    image.paste(color, (0, 0, size[0] // 2, size[1]))
    exif = Image.Exif()
    if orientation is not None:
        exif[ORIENTATION] = orientation
    if gps:
        # 29°35'N 106°33'E: Chongqing. An upload must never leak where it was taken.
        exif.get_ifd(GPS_IFD).update({1: "N", 2: (29.0, 35.0, 0.0), 3: "E", 4: (106.0, 33.0, 0.0)})
        exif[0x010F] = "CameraMaker"
    out = io.BytesIO()
    kwargs = {"exif": exif.tobytes()} if len(exif) or gps else {}
    image.save(out, fmt, **kwargs)
    return out.getvalue()


def upload(data: bytes, name: str = "photo.jpg", content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares `width` x `height` pixels and holds almost nothing: a
    decompression bomb's header (the IDAT is a few bytes of zeros)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return pack(">I", len(body)) + kind + body + pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )
