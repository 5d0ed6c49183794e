"""Entry point: ``probity`` runs ``run()``; tests call ``main(argv)``.

Errors from the services arrive as ProbityError and are shown as one line,
``error[<code>]: <message>``, with the error's exit code; no traceback reaches the user.
"""

from __future__ import annotations

import sys

import click

from probity.errors import ProbityError
from probity.interfaces.cli import admin, case, demo, enrol, gallery, search  # noqa: F401
from probity.interfaces.cli.app import app
from probity.interfaces.cli.common import err


def main(argv: list[str] | None = None) -> int:
    try:
        result = app(args=argv, prog_name="probity", standalone_mode=False)
    except ProbityError as exc:
        err.print(f"error[{exc.code}]: {exc.message}", markup=False, highlight=False)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        err.print("aborted")
        return 130
    return result if isinstance(result, int) else 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
