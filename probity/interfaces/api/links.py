"""``Location`` on every 201: the URL of what the request made (RFC 9110 §10.2.2), built from
path segments, each percent-encoded (a case reference may hold a slash)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Response

API = "/api/v1"


def created(response: Response, *segments: str | int) -> None:
    """Set ``Location`` to ``/api/v1/<segment>/<segment>...``."""
    response.headers["Location"] = API + "".join("/" + quote(str(s), safe="") for s in segments)
