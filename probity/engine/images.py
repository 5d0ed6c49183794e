"""Decode an uploaded file into RGB pixels, or refuse it with a precise reason.

Checks, in order, each cheap before the next is paid for:

1. the byte count: zero bytes, or more than ``max_bytes`` (:class:`ImageTooLarge`);
2. the format, from the header only: JPEG (and MPO, the multi-picture JPEG phones write), PNG,
   WebP, HEIC/HEIF (with ``pillow-heif``), AVIF, GIF, BMP and TIFF. Other formats Pillow knows
   (EPS runs Ghostscript, PSD, FITS...) are refused as "not a recognised image format": they
   are rare in evidence and each decoder is attack surface;
3. width × height, from the header, against ``max_pixels`` (decompression bombs: a 20000 ×
   20000 PNG is a few kB of zlib) — refused before a single pixel is allocated;
4. a full decode (``Image.load``): truncated and corrupt files fail here. Pillow's
   ``ImageFile.LOAD_TRUNCATED_IMAGES`` must stay False in the process, or truncated files
   would decode silently with grey padding; :func:`decode_image` refuses to run if it is True.

Then EXIF orientation is applied (so pixel coordinates are those a viewer shows), and the image
is converted to 8-bit RGB: transparency is composited onto white, 16-bit grey is scaled (not
clipped) to 8 bits, CMYK/palette/greyscale go through Pillow's conversion. Colour profiles are
ignored (the face models were trained on untagged sRGB-ish photos). Animated files give their
first frame.

Pillow raises many exception types on hostile input (OSError, ValueError, SyntaxError,
struct.error, EOFError...); all of them are converted here, at the boundary, to
:class:`InvalidImage` or :class:`ImageTooLarge`.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from probity.engine.types import DecodedImage
from probity.errors import ImageTooLarge, InvalidImage, InvalidInput, ProbityError

ACCEPTED_FORMATS: Final = ("JPEG", "PNG", "WEBP", "HEIF", "AVIF", "GIF", "BMP", "TIFF")
"""Pillow format names :func:`decode_image` opens (``JPEG`` also yields ``MPO``)."""

_heif_lock = threading.Lock()
_heif_registered = False


def register_heif() -> bool:
    """Teach Pillow HEIC/HEIF through ``pillow-heif``, once; False when it is not installed."""
    global _heif_registered
    with _heif_lock:
        if not _heif_registered:
            try:
                import pillow_heif
            except ImportError:
                return False
            pillow_heif.register_heif_opener()
            _heif_registered = True
    return True


def _size_text(n: int) -> str:
    mib = 1024 * 1024
    return f"{n:,} bytes ({n / mib:.1f} MiB)" if n >= mib else f"{n:,} bytes"


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int) -> DecodedImage:
    """Decode ``data`` into an RGB :class:`DecodedImage` (uint8, height × width × 3).

    ``max_bytes`` bounds the file size and ``max_pixels`` the width × height, both checked
    before any pixel is decoded. ``sha256`` is of ``data`` as given (before EXIF rotation).
    Raises :class:`InvalidImage` (empty, not an image, truncated, corrupt) or
    :class:`ImageTooLarge`.
    """
    if not data:
        raise InvalidImage("the file is empty (0 bytes)")
    if len(data) > max_bytes:
        raise ImageTooLarge(
            f"the file is {_size_text(len(data))}; the limit is {_size_text(max_bytes)}"
        )
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise ProbityError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True in this process: truncated images "
            "would be accepted silently, so decoding is refused"
        )
    register_heif()
    try:
        pixels, fmt = _decode(data, max_pixels=max_pixels)
    except ProbityError:
        raise
    except Image.DecompressionBombError as exc:
        # Pillow's own guard (2 × Image.MAX_IMAGE_PIXELS, about 179 million) fires inside
        # Image.open, before our header check sees the size. It is process-wide state, so it
        # is left alone: a max_pixels above it needs Image.MAX_IMAGE_PIXELS raised as well.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        count = int(found.group(1)) if found else None
        if count is not None and count <= max_pixels:
            raise ImageTooLarge(
                f"the image is {count:,} pixels (width × height), more than Pillow's "
                f"decompression-bomb limit ({exc})"
            ) from exc
        size = f"{count:,} pixels" if count else "more pixels than Pillow allows"
        raise ImageTooLarge(
            f"the image is {size} (width × height); the limit is {max_pixels:,} pixels"
        ) from exc
    except Image.DecompressionBombWarning as exc:  # raised only when warnings are errors
        raise ImageTooLarge(
            f"the image has more pixels than Pillow's decompression-bomb limit ({exc})"
        ) from exc
    except UnidentifiedImageError as exc:
        raise InvalidImage(
            "not a recognised image format (accepted: JPEG, PNG, WebP, HEIC, AVIF, GIF, BMP, TIFF)"
        ) from exc
    except MemoryError as exc:
        raise ImageTooLarge("the image is too large to decode in the memory available") from exc
    except Exception as exc:  # any other Pillow/codec failure means the file is damaged
        raise InvalidImage(f"the image is truncated or corrupt: {_describe(exc)}") from exc
    return DecodedImage(pixels=pixels, sha256=hashlib.sha256(data).hexdigest(), format=fmt)


def read_image_bytes(path: Path | str, *, max_bytes: int) -> bytes:
    """The bytes of the file at ``path``, refusing (before reading) one over ``max_bytes``.

    Raises :class:`ImageTooLarge`, or :class:`InvalidInput` when the file cannot be read.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageTooLarge(
                f"{path.name} is {_size_text(size)}; the limit is {_size_text(max_bytes)}"
            )
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)  # +1: a file that grew since stat() is caught
    except FileNotFoundError:
        raise InvalidInput(f"cannot read {path}: file not found") from None
    except IsADirectoryError:
        raise InvalidInput(f"cannot read {path}: it is a folder, not an image file") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from exc
    return data


def read_image_file(path: Path | str, *, max_bytes: int, max_pixels: int) -> DecodedImage:
    """Read and decode the file at ``path``; its size is checked before it is read.

    Raises :class:`InvalidInput` when the file cannot be read, otherwise as
    :func:`decode_image`.
    """
    data = read_image_bytes(path, max_bytes=max_bytes)
    return decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels)


EXIF_ORIENTATION = 0x0112
"""Orientations 5-8 turn the picture a quarter: width and height swap when shown upright."""


def upright_size(data: bytes) -> tuple[int, int]:
    """(width, height) in pixels as a viewer shows the image, EXIF orientation applied, read
    from the header alone (no pixel is decoded): what a page needs to lay boxes over it.
    Raises InvalidImage where the header cannot be read."""
    register_heif()
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    except Exception as exc:
        raise InvalidImage(f"the image header cannot be read: {_describe(exc)}") from exc
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _decode(data: bytes, *, max_pixels: int) -> tuple[NDArray[np.uint8], str]:
    Image.init()  # loads Pillow's plugins once; the filter below needs the full registry
    formats: list[str] = [f for f in ACCEPTED_FORMATS if f in Image.OPEN]  # HEIF/AVIF optional
    with Image.open(io.BytesIO(data), formats=formats) as image:
        fmt = image.format or "unknown"
        width, height = image.size
        if width * height > max_pixels:
            raise ImageTooLarge(
                f"the image is {width} × {height} = {width * height:,} pixels; "
                f"the limit is {max_pixels:,} pixels"
            )
        if width < 1 or height < 1:
            raise InvalidImage(f"the image has no pixels ({width} × {height})")
        _check_shape(width, height)
        image.load()  # full decode: truncation and corrupt data raise here
        oriented = ImageOps.exif_transpose(image)
        return _to_rgb(oriented), fmt


MIN_SHORT_SIDE_PX = 16
"""The shortest side, in pixels, an image may have. Below it no detector can find a face
(YuNet and dlib's detectors need a face of roughly 10-20 px, and a probe or gallery photo of
that size is useless for identification anyway), and dlib's CNN detector crashed on images
of 1-8 px a side; such files are refused before any detector sees them."""

MAX_ASPECT_RATIO = 25.0
"""The longest side may be at most this many times the shortest. Wide panoramas run to about
10:1; a 1 × 500 strip is not a photograph, and refusing it keeps degenerate pyramids out of
the detectors."""


def _check_shape(width: int, height: int) -> None:
    """Refuse images too small or too elongated to hold a face (read from the header, before
    any pixel is decoded)."""
    short, long = min(width, height), max(width, height)
    if short < MIN_SHORT_SIDE_PX:
        raise InvalidImage(
            f"the image is {width} × {height} pixels; its shorter side must be at least "
            f"{MIN_SHORT_SIDE_PX} px"
        )
    if long > MAX_ASPECT_RATIO * short:
        raise InvalidImage(
            f"the image is {width} × {height} pixels, {long / short:.0f} times longer than "
            f"wide; at most {MAX_ASPECT_RATIO:.0f}:1 is accepted"
        )


def _to_rgb(image: Image.Image) -> NDArray[np.uint8]:
    """8-bit RGB pixels, read-only: transparency onto white, 16-bit scaled to 8 bits."""
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        wide = np.asarray(image, dtype=np.float64)
        grey = np.clip(wide / 257.0, 0, 255).round().astype(np.uint8)  # 65535 → 255
        rgb = np.repeat(grey[:, :, None], 3, axis=2)
    elif mode == "F":
        grey = np.clip(np.asarray(image, dtype=np.float64), 0, 255).round().astype(np.uint8)
        rgb = np.repeat(grey[:, :, None], 3, axis=2)
    else:
        if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(white, rgba)
        rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    rgb = np.ascontiguousarray(rgb)
    rgb.setflags(write=False)
    return rgb


def _describe(exc: Exception) -> str:
    text = str(exc).strip()
    return text if text else type(exc).__name__
