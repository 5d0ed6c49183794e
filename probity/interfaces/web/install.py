"""Mounting the pages on the app: every page module's router, static files, the /login
redirect. A new page module adds its router to ``ROUTERS``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from probity.interfaces.web import (
    account_pages,
    admin_pages,
    audit_pages,
    authorisation_pages,
    gallery_pages,
    pages,
    privacy_rules_pages,
    review_pages,
    rights_pages,
    search_pages,
)
from probity.interfaces.web.common import LoginRequired

ROUTERS: tuple[APIRouter, ...] = (
    pages.router,
    search_pages.router,
    review_pages.router,
    gallery_pages.router,
    audit_pages.router,
    admin_pages.router,
    account_pages.router,  # /password-reset is public: it never asks for a session
    authorisation_pages.router,
    rights_pages.router,  # /privacy is public: its routes never ask for a session
    privacy_rules_pages.router,
)


def install(app: FastAPI) -> None:
    for router in ROUTERS:
        app.include_router(router)
    app.mount(
        "/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static"
    )

    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(f"/login?next={quote(exc.next_path)}", status_code=303)

    app.add_exception_handler(LoginRequired, login_required)
