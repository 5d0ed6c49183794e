"""Reading uploaded files with a size limit, and bulk uploads (a manifest and its images)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import BinaryIO

from fastapi import Request, UploadFile
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.exceptions import HTTPException

from probity.errors import ImageTooLarge, InvalidImage, InvalidInput, ManifestError, TooManyFiles


def read_upload(upload: UploadFile, max_bytes: int) -> bytes:
    """The upload's bytes; ImageTooLarge past ``max_bytes``, InvalidImage when empty. Reads
    at most ``max_bytes + 1`` bytes, so an oversized file is never held whole."""
    data = upload.file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageTooLarge(f"the image is larger than {max_bytes} bytes")
    if not data:
        raise InvalidImage("the uploaded file is empty")
    return data


@dataclass
class BulkUpload:
    """A parsed bulk upload: the manifest's name and bytes, the images as (file name,
    stream) pairs (spooled by Starlette; closed when the ``bulk_form`` block ends) and the
    text fields (the pages' ``csrf_token``)."""

    manifest_name: str
    manifest: bytes
    images: list[tuple[str, BinaryIO]]
    fields: dict[str, str]


BULK_FIELDS = 20
"""Text fields a bulk upload may carry (the CSRF token; anything else is ignored)."""


@asynccontextmanager
async def bulk_form(
    request: Request, *, max_files: int, max_manifest_bytes: int
) -> AsyncIterator[BulkUpload]:
    """Parse a ``multipart/form-data`` bulk upload: the file field ``manifest`` (a CSV) and
    the file fields ``images`` (any number up to ``max_files``; the service gives the
    precise limit error, Starlette's parser stops one file past it). Parsed here rather than
    by FastAPI's ``File()`` parameters, whose parser stops at 1,000 files."""
    try:
        form = await request.form(max_files=max_files + 2, max_fields=BULK_FIELDS)
    except HTTPException as exc:
        detail = str(exc.detail)
        if "files" in detail.lower():
            raise TooManyFiles(
                f"at most {max_files} images in one upload; split the manifest into several uploads"
            ) from None
        raise InvalidInput(f"the upload could not be read: {detail}") from None
    try:
        manifest = form.get("manifest")
        if not isinstance(manifest, StarletteUpload) or not manifest.filename:
            raise ManifestError("attach the manifest, a CSV file, as the file field 'manifest'")
        data = await manifest.read(max_manifest_bytes + 1)
        if len(data) > max_manifest_bytes:
            raise ManifestError(f"the manifest is larger than {max_manifest_bytes} bytes")
        images: list[tuple[str, BinaryIO]] = []
        for item in form.getlist("images"):
            if not isinstance(item, StarletteUpload):
                raise InvalidInput("the 'images' fields must be files")
            images.append((item.filename or "", item.file))
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        yield BulkUpload(manifest.filename, data, images, fields)
    finally:
        await form.close()
