"""Typed identifiers.

Text ids are random UUID4 hex strings (32 chars): they leak no count or order. Template ids are
integers because the vector index labels its vectors with int64.
"""

from __future__ import annotations

import uuid
from typing import NewType

GalleryId = NewType("GalleryId", str)
SubjectId = NewType("SubjectId", str)
EnrolmentId = NewType("EnrolmentId", str)
CaseId = NewType("CaseId", str)
SearchId = NewType("SearchId", str)
TemplateId = NewType("TemplateId", int)


def new_id() -> str:
    """A fresh random identifier (UUID4, 32 lowercase hex characters)."""
    return uuid.uuid4().hex
