"""Images for people to look at: the probe as a whole, the probe face and the matching
gallery image side by side, and the thumbnails of a candidate list.

A crop is the detector box grown by ``margin`` on every side (the detector box is tight
around eyebrows to chin; examiners compare ears, hairline and jaw too), clipped to the image,
scaled so its longer side is at most ``max_side`` pixels, and encoded as JPEG. Boxes are in
the coordinates of the upright image (EXIF orientation applied), as the detector saw it;
:func:`decode_image` applies the same orientation, so the crop lands on the face.
"""

from __future__ import annotations

import io

from PIL import Image

from probity.domain.faces import FaceBox
from probity.engine.images import decode_image

DEFAULT_MARGIN = 0.35
"""Fraction of the box's width/height added on each side."""

DEFAULT_MAX_SIDE = 320
"""Longest side of a crop in pixels: enough for a side-by-side view at 1280 px, small enough
that a candidate grid of 10 loads quickly."""


def crop_box(
    box: FaceBox, width: int, height: int, margin: float = DEFAULT_MARGIN
) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of ``box`` grown by ``margin`` and clipped to the image.
    Always at least one pixel wide and high, even for a box wholly outside the image."""
    dx, dy = int(box.width * margin), int(box.height * margin)
    left = min(max(0, box.left - dx), width - 1)
    top = min(max(0, box.top - dy), height - 1)
    right = max(left + 1, min(width, box.left + box.width + dx))
    bottom = max(top + 1, min(height, box.top + box.height + dy))
    return left, top, right, bottom


def face_crop_jpeg(
    data: bytes,
    box: FaceBox,
    *,
    max_bytes: int,
    max_pixels: int,
    margin: float = DEFAULT_MARGIN,
    max_side: int = DEFAULT_MAX_SIDE,
) -> bytes:
    """JPEG bytes of the face in ``box`` of the image file ``data`` (decoded with the same
    checks and orientation as for detection). Raises InvalidImage / ImageTooLarge."""
    decoded = decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
    height, width = decoded.pixels.shape[:2]
    image = Image.fromarray(decoded.pixels).crop(crop_box(box, width, height, margin))
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=88)
    return out.getvalue()


def upright_jpeg(data: bytes, *, max_bytes: int, max_pixels: int, quality: int = 90) -> bytes:
    """The whole image as an upright JPEG (EXIF orientation applied, any accepted format,
    HEIC included), decoded with the same checks as for detection, so the boxes of the
    detected faces fall where the page draws them."""
    decoded = decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
    out = io.BytesIO()
    Image.fromarray(decoded.pixels).save(out, format="JPEG", quality=quality)
    return out.getvalue()
