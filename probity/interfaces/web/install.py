"""Mounting the pages on the app: routes, static files, the /login redirect."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from probity.interfaces.web.pages import LoginRequired, router


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(
        "/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static"
    )

    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(f"/login?next={quote(exc.next_path)}", status_code=303)

    app.add_exception_handler(LoginRequired, login_required)
