"""Entry point: ``probity`` runs ``run()``; tests call ``main(argv)``.

Errors from the services arrive as ProbityError and are shown as one line,
``error[<code>]: <message>``, with the error's exit code; no traceback reaches the user.
"""

from __future__ import annotations

import sys

from probity.errors import ProbityError
from probity.interfaces.cli import (  # noqa: F401 - registers the commands
    accounts,
    admin,
    case,
    config_cmd,
    demo,
    doctor,
    enrol,
    erase,
    evaluate,
    gallery,
    jurisdiction,
    models,
    operations,
    optout,
    report,
    rights,
    search,
    serve,
    sweep,
)
from probity.interfaces.cli.app import app
from probity.interfaces.cli.common import err


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit status (Typer's own usage errors keep their status 2)."""
    try:
        app(args=argv, prog_name="probity")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except ProbityError as exc:
        err.print(f"error[{exc.code}]: {exc.message}", markup=False, highlight=False)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    return 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
