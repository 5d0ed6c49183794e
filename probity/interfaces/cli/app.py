"""The Typer application object and its sub-command groups."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="probity",
    help=(
        "Probity: accountable face search. Results are investigative leads — never identifications."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
gallery_app = typer.Typer(help="Create and list galleries.", no_args_is_help=True)
case_app = typer.Typer(help="Open cases and record their authorisation.", no_args_is_help=True)
subject_app = typer.Typer(help="Manage subjects in a gallery.", no_args_is_help=True)
audit_app = typer.Typer(help="Read and verify the audit log.", no_args_is_help=True)
index_app = typer.Typer(help="Inspect and rebuild the vector indexes.", no_args_is_help=True)
org_app = typer.Typer(help="Create organisations (server deployments).", no_args_is_help=True)
user_app = typer.Typer(help="Create and approve user accounts.", no_args_is_help=True)
key_app = typer.Typer(help="Create API keys.", no_args_is_help=True)
app.add_typer(org_app, name="org")
app.add_typer(user_app, name="user")
app.add_typer(key_app, name="key")
app.add_typer(gallery_app, name="gallery")
app.add_typer(case_app, name="case")
app.add_typer(subject_app, name="subject")
app.add_typer(audit_app, name="audit")
app.add_typer(index_app, name="index")
