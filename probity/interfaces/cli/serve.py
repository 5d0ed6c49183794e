"""``probity serve``: the REST API under uvicorn."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from probity.config import Settings
from probity.interfaces.cli.app import app
from probity.interfaces.cli.common import HomeOpt, err, settings_for


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help=(
                "API processes. dlib holds the GIL, so searches run in parallel only across "
                "processes; each loads the models (about 100 MB)."
            ),
        ),
    ] = 1,
    home: HomeOpt = None,
) -> None:
    """Serve the REST API (OpenAPI at /openapi.json, docs at /docs) on the home's database
    (SQLite by default; PostgreSQL when PROBITY_DATABASE_URL points at it)."""
    run_server(settings_for(home), host=host, port=port, workers=workers)


def run_server(settings: Settings, *, host: str, port: int, workers: int = 1) -> None:
    """Serve the app on ``settings``' home until interrupted (``probity serve`` and the
    demo). Metrics are collected in multiprocess mode (see observability.py) so that every
    worker's counts add up in one scrape."""
    import uvicorn

    from probity.interfaces.api.observability import configure_json_logging, prepare_metrics_dir

    os.environ["PROBITY_HOME"] = str(settings.home)  # for worker processes
    # Unset secure_cookies: Secure cookies and HSTS unless only this machine can connect.
    from probity.interfaces.api.security import secure_cookies_for_host

    secure = secure_cookies_for_host(settings.server.secure_cookies, host)
    settings.server.secure_cookies = secure
    os.environ["PROBITY_SERVER__SECURE_COOKIES"] = "true" if secure else "false"
    prepare_metrics_dir(settings)
    from probity.interfaces.api.app import create_app

    configure_json_logging()
    err.print(f"Probity on http://{host}:{port} (sign in at /login); home {settings.home}")
    if workers > 1:
        uvicorn.run(
            "probity.interfaces.api.app:app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
        )
    else:
        uvicorn.run(create_app(settings), host=host, port=port, log_config=None)
