"""Uploaded images: checked with Pillow, cleaned, resized, stored under random names.

Shared by product photos (catalog) and room covers (rooms); it knows no model. An upload
is trusted for nothing: not its name, not its declared type, not its header's size.

- It must be a JPEG, PNG or WebP that Pillow decodes to the end (an SVG, an HTML page or
  a truncated file is refused), at most IMAGE_UPLOAD_MAX_BYTES, and at most
  IMAGE_MAX_PIXELS as its header declares *before* any decoding (a 50 KB PNG can declare
  a 100,000 x 100,000 image: a decompression bomb).
- It is turned upright by its EXIF orientation, then re-encoded from pixels alone, so no
  EXIF (GPS position, camera serial), XMP or text chunk of the upload is ever stored.
- Each size is written under `<folder>/<uuid4 hex>-<size>.<ext>` through Django's
  storage API (the file system, or an S3-compatible bucket).

Refusals are `Invalid` (400) or `PayloadTooLarge` (413), with `fields: {"image": [...]}`.
"""

from __future__ import annotations

import io
import logging
import re
import uuid
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, default_storage
from PIL import Image, ImageOps, UnidentifiedImageError

from liveshop.errors import Invalid, PayloadTooLarge

logger = logging.getLogger(__name__)

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP")
FIELD = "image"
# The endpoints that take an image (POST): the HTTP layer lets their bodies be as large as
# IMAGE_UPLOAD_MAX_BYTES (liveshop/asgi.py), every other body stays small.
UPLOAD_PATHS = re.compile(r"/api/v1/(products/[0-9]+/photos|rooms/[0-9]+/cover)/")


@dataclass(frozen=True)
class Size:
    """One stored rendition: `name` in file names, scaled to fit `max_width` x `max_height`
    (never enlarged), encoded as `fmt` ("JPEG" or "WEBP")."""

    name: str
    max_width: int
    max_height: int
    fmt: str
    quality: int


# A product photo: the upload capped at 2048 px (a zoom view), 1080 px wide (a detail
# page on a phone), and a 360 px thumbnail (cards, the shelf, checkout).
PHOTO_SIZES = (
    Size("original", 2048, 2048, "JPEG", 88),
    Size("1080", 1080, 2048, "WEBP", 82),
    Size("360", 360, 720, "WEBP", 78),
)
# A room cover: cropped to 16:9 (the video's shape), 1280 and 480 px wide.
COVER_ASPECT = (16, 9)
COVER_SIZES = (Size("1280", 1280, 720, "WEBP", 82), Size("480", 480, 270, "WEBP", 78))

_EXTENSIONS = {"JPEG": "jpg", "WEBP": "webp"}


@dataclass(frozen=True)
class StoredImage:
    """The names (in the storage) of one image's sizes, and the size of the largest."""

    names: dict[str, str]
    width: int
    height: int


def _refuse(message: str) -> Invalid:
    return Invalid(message, fields={FIELD: [message]})


def image_open(upload: IO[bytes], *, size: int | None = None) -> Image.Image:
    """The upload decoded, upright, as an RGB(A) image; or Invalid / PayloadTooLarge.

    `size` is the upload's length in bytes where known (Django's UploadedFile.size).
    """
    max_bytes: int = settings.IMAGE_UPLOAD_MAX_BYTES
    max_pixels: int = settings.IMAGE_MAX_PIXELS
    if size is None:
        upload.seek(0, io.SEEK_END)
        size = upload.tell()
    if size > max_bytes:
        message = f"The image is larger than {max_bytes // (1024 * 1024)} MB."
        raise PayloadTooLarge(message, fields={FIELD: [message]})
    if size == 0:
        raise _refuse("The file is empty.")
    upload.seek(0)
    try:
        # Pillow's own bomb check only warns below twice MAX_IMAGE_PIXELS; the check
        # below refuses from the header alone, so decoding never starts on a bomb.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(upload, formats=ALLOWED_FORMATS)
            width, height = image.size
            if width < 1 or height < 1:
                raise _refuse("The image has no pixels.")
            if width * height > max_pixels:
                raise _refuse(f"The image is too large: {width} x {height} pixels (at most {max_pixels:,} in all).")
            source_format = image.format
            if source_format == "JPEG":
                # Decode a big JPEG at a fraction of its size (DCT scaling): far less
                # memory and time, and nothing is lost once it is scaled down anyway.
                image.draft("RGB", (PHOTO_SIZES[0].max_width, PHOTO_SIZES[0].max_height))
            image.load()  # decodes every byte: a truncated or corrupt file fails here
            upright = ImageOps.exif_transpose(image)
    except Invalid:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own check in open(), for sizes far past ours.
        raise _refuse(f"The image is too large: more than {max_pixels:,} pixels.") from None
    except UnidentifiedImageError:
        raise _refuse("Upload a JPEG, PNG or WebP image.") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, MemoryError) as exc:
        # Pillow reports truncated and corrupt data as any of these, by format.
        logger.info("refused an image upload: %s: %s", type(exc).__name__, exc)
        raise _refuse("The image is damaged or incomplete.") from None
    return _pixels_only(upright)


def _pixels_only(image: Image.Image) -> Image.Image:
    """RGB, or RGBA where there is transparency; no metadata of the upload's file."""
    if image.mode not in ("RGB", "RGBA"):
        has_alpha = image.mode in ("LA", "PA") or (image.mode == "P" and "transparency" in image.info)
        image = image.convert("RGBA" if has_alpha else "RGB")
    clean = image.copy()
    # copy() keeps `info` (exif, xmp, comments, dpi, icc_profile): encoders may write it.
    clean.info = {}
    return clean


def _crop_to_aspect(image: Image.Image, aspect: tuple[int, int]) -> Image.Image:
    width, height = image.size
    target_w, target_h = aspect
    if width * target_h > height * target_w:  # too wide: trim the sides
        new_width = max(1, height * target_w // target_h)
        left = (width - new_width) // 2
        return image.crop((left, 0, left + new_width, height))
    new_height = max(1, width * target_h // target_w)
    top = (height - new_height) // 2
    return image.crop((0, top, width, top + new_height))


def _encode(image: Image.Image, size: Size) -> tuple[bytes, int, int]:
    scaled = image.copy()
    scaled.thumbnail((size.max_width, size.max_height), Image.Resampling.LANCZOS)
    if size.fmt == "JPEG" and scaled.mode == "RGBA":
        # JPEG has no transparency: lay the image on white, as a product shot would be.
        background = Image.new("RGB", scaled.size, (255, 255, 255))
        background.paste(scaled, mask=scaled.getchannel("A"))
        scaled = background
    scaled.info = {}
    out = io.BytesIO()
    if size.fmt == "JPEG":
        scaled.save(out, "JPEG", quality=size.quality, optimize=True, progressive=True)
    else:
        scaled.save(out, "WEBP", quality=size.quality, method=4)
    return out.getvalue(), scaled.width, scaled.height


def image_store(
    image: Image.Image,
    *,
    folder: str,
    sizes: Sequence[Size],
    aspect: tuple[int, int] | None = None,
    storage: Storage | None = None,
) -> StoredImage:
    """Write every size of `image` to the storage under one random name.

    All or nothing: when one write fails, the files already written are deleted and the
    error is raised. The caller deletes the files (image_delete) if what follows fails.
    """
    storage = storage or default_storage
    if aspect is not None:
        image = _crop_to_aspect(image, aspect)
    stem = uuid.uuid4().hex
    names: dict[str, str] = {}
    width = height = 0
    try:
        for size in sizes:
            data, w, h = _encode(image, size)
            if not names:
                width, height = w, h
            wanted = f"{folder.strip('/')}/{stem}-{size.name}.{_EXTENSIONS[size.fmt]}"
            names[size.name] = storage.save(wanted, ContentFile(data))
    except BaseException:
        image_delete(names.values(), storage=storage)
        raise
    return StoredImage(names=names, width=width, height=height)


def image_delete(names: Iterable[str], *, storage: Storage | None = None) -> None:
    """Delete stored files, best effort: a file left behind is only wasted space, and must
    not fail the request that gave it up."""
    storage = storage or default_storage
    for name in names:
        if not name:
            continue
        try:
            storage.delete(name)
        except Exception:  # a storage outage must not turn into a 500
            logger.warning("could not delete stored image %s", name, exc_info=True)


def image_url(name: str, *, storage: Storage | None = None) -> str | None:
    return (storage or default_storage).url(name) if name else None
