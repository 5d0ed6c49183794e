"""``probity config reference``: the configuration reference, from the settings model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from probity.errors import InvalidInput
from probity.interfaces.cli.app import app
from probity.interfaces.cli.common import out
from probity.interfaces.render.configuration import configuration_reference

config_app = typer.Typer(help="Describe Probity's settings.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("reference")
def reference(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file (default: print)."),
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="Only check that --output is up to date (exit 2 if not)."),
    ] = False,
) -> None:
    """Every PROBITY_ setting with its type, bounds, default and description, as Markdown
    (docs/configuration.md is this command's output)."""
    text = configuration_reference()
    if check:
        if output is None:
            raise InvalidInput("--check needs --output FILE")
        if not output.exists() or output.read_text() != text:
            out.print(f"{output} is out of date: run 'probity config reference -o {output}'")
            raise typer.Exit(2)
        out.print(f"{output} is up to date.")
        return
    if output is None:
        out.print(text, markup=False, highlight=False, end="")
    else:
        output.write_text(text)
        out.print(f"Wrote {output}.")
