"""Reading uploaded files with a size limit."""

from __future__ import annotations

from fastapi import UploadFile

from probity.errors import ImageTooLarge, InvalidImage


def read_upload(upload: UploadFile, max_bytes: int) -> bytes:
    """The upload's bytes; ImageTooLarge past ``max_bytes``, InvalidImage when empty. Reads
    at most ``max_bytes + 1`` bytes, so an oversized file is never held whole."""
    data = upload.file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageTooLarge(f"the image is larger than {max_bytes} bytes")
    if not data:
        raise InvalidImage("the uploaded file is empty")
    return data
