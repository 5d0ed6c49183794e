"""``probity serve``: the REST API under uvicorn."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from probity.config import Settings
from probity.interfaces.cli.app import app
from probity.interfaces.cli.common import HomeOpt, err, settings_for
from probity.services.index_server import INDEX_SOCKET_ENV, IndexProcess


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
    index_process: Annotated[
        bool | None,
        typer.Option(
            "--index-process/--no-index-process",
            help=(
                "Hold the vector indexes in one index process that the API processes call, "
                "so their memory does not multiply by --workers (default: on with more "
                "than one worker)."
            ),
        ),
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Serve the REST API (OpenAPI at /openapi.json, docs at /docs) on the home's database
    (SQLite by default; PostgreSQL when PROBITY_DATABASE_URL points at it)."""
    run_server(
        settings_for(home), host=host, port=port, workers=workers, index_process=index_process
    )


def run_server(
    settings: Settings,
    *,
    host: str,
    port: int,
    workers: int = 1,
    index_process: bool | None = None,
) -> None:
    """Serve the app on ``settings``' home until interrupted (``probity serve`` and the
    demo). Metrics are collected in multiprocess mode (see observability.py) so that every
    worker's counts add up in one scrape.

    With several workers (or ``index_process``), the home's index process
    (services/index_server.py) is started first, the workers are told its socket, and it
    is stopped after uvicorn returns; if it dies meanwhile it is restarted, and searches in
    between fail with ``index_process_down`` (503). With one worker the index stays in the
    API process: no socket, no extra process."""
    if index_process is None:
        index_process = workers > 1
    if not index_process:
        os.environ.pop(INDEX_SOCKET_ENV, None)
        _run_uvicorn(settings, host=host, port=port, workers=workers)
        return
    process = IndexProcess(settings)
    process.start()
    err.print(f"Index process {process.pid} on {process.path}")
    os.environ[INDEX_SOCKET_ENV] = str(process.path)
    try:
        _run_uvicorn(settings, host=host, port=port, workers=workers)
    finally:
        os.environ.pop(INDEX_SOCKET_ENV, None)
        process.stop()


def _run_uvicorn(settings: Settings, *, host: str, port: int, workers: int) -> None:
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
