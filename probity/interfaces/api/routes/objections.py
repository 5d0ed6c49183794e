"""Objections (opt-out by face): ``POST /api/v1/objections``.

A privacy officer sends the objecting person's photo and a reference; the face becomes a
suppression template, every gallery record it matches is erased (one receipt each), future
enrolments of it are refused (409 ``objection_on_file``) and searches never return it. The
threshold and its false-match rates are documented in ``probity.services.suppression``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Response, UploadFile
from pydantic import BaseModel, Field

from probity.interfaces.api.deps import ActorDep, ServicesDep
from probity.interfaces.api.links import created
from probity.interfaces.api.uploads import read_upload

router = APIRouter(prefix="/api/v1/objections", tags=["objections"])


class ObjectionThreshold(BaseModel):
    max_distance: float = Field(
        description="dlib Euclidean distance at or under which a face matches"
    )
    target_fmr: float = Field(description="the 1:1 false-match rate of that distance (LFW pairs)")


class ObjectionMatch(BaseModel):
    subject_id: str
    gallery: str
    distance: float


class ObjectionReceipt(BaseModel):
    """An erasure receipt: no biometric data."""

    receipt: str
    at: datetime
    actor: str
    organisation: str | None
    gallery: str
    subject_id: str
    subject_reference: str
    cause: str
    reason: str
    request_id: str | None
    enrolments: int
    templates: int
    blobs: int
    index_vectors_removed: int
    audit_seq: int


class ObjectionOut(BaseModel):
    suppression_id: str
    reference: str
    request_id: str | None
    faces: int = Field(description="faces detected in the photo (one met the quality floor)")
    threshold: ObjectionThreshold
    galleries: list[str] = Field(description="the galleries compared")
    templates_compared: int
    templates_skipped: int = Field(description="templates of another model: not comparable")
    matches: list[ObjectionMatch]
    receipts: list[ObjectionReceipt]


@router.post("", response_model=ObjectionOut, status_code=201)
def record_objection(
    response: Response,
    actor: ActorDep,
    services: ServicesDep,
    image: Annotated[UploadFile, File(description="photo of the person objecting (one face)")],
    reference: Annotated[str, Form(min_length=1, max_length=200)],
    request_id: Annotated[str | None, Form(max_length=32)] = None,
) -> dict[str, Any]:
    """Record an objection and erase the gallery records its face matches (privacy
    officers). The photo is not stored; only its face template, sealed for this purpose."""
    data = read_upload(image, services.settings.limits.max_upload_bytes)
    objection = services.suppression.object(
        actor=actor, image=data, reference=reference, request_id=request_id
    )
    out = objection.as_dict()
    created(response, "objections", objection.suppression_id)
    return out
