"""``probity org create``, ``probity user create|approve|update|password``,
``probity key create``."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, time
from typing import Annotated

import typer

from probity.domain.accounts import OrganisationKind, Role
from probity.errors import InvalidInput
from probity.interfaces.cli.app import key_app, org_app, user_app
from probity.interfaces.cli.common import (
    ActorOpt,
    HomeOpt,
    JsonOpt,
    actor_name,
    err,
    out,
    print_json,
    services,
)


@org_app.command("create")
def org_create(
    name: Annotated[str, typer.Argument(help="Organisation name.")],
    kind: Annotated[
        OrganisationKind,
        typer.Option("--kind", help="law_enforcement, public_body or other."),
    ],
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create an organisation. Which kinds may search is deployment configuration."""
    with services(home) as s:
        org = s.accounts.create_organisation(actor=actor_name(actor), name=name, kind=kind)
    if json_out:
        print_json({"id": org.id, "name": org.name, "kind": org.kind.value})
    else:
        out.print(f"Organisation '{org.name}' ({org.kind.value}) created.")


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Argument(help="Login name.")],
    org: Annotated[str, typer.Option("--org", help="Organisation name.")],
    role: Annotated[list[Role], typer.Option("--role", help="Role (repeatable).")],
    training_expires: Annotated[
        str | None,
        typer.Option("--training-expires", help="Training attestation valid until YYYY-MM-DD."),
    ] = None,
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create an account; it can do nothing until a supervisor approves it."""
    expires = _date(training_expires) if training_expires else None
    with services(home) as s:
        info = s.accounts.create_user(
            actor=actor_name(actor),
            organisation=org,
            username=username,
            roles=role,
            training_expires=expires,
        )
    if json_out:
        print_json(
            {
                "user": info.username,
                "organisation": info.organisation,
                "roles": list(info.roles),
                "approved": info.approved,
            }
        )
    else:
        out.print(f"User '{info.username}' created in '{info.organisation}'; awaiting approval.")


@user_app.command("approve")
def user_approve(
    username: Annotated[str, typer.Argument(help="Login name.")],
    supervisor: Annotated[
        str | None,
        typer.Option("--supervisor", help="The approving supervisor (omit only for the first)."),
    ] = None,
    home: HomeOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Record a supervisor's approval of an account."""
    with services(home) as s:
        info = s.accounts.approve_user(
            actor=actor_name(actor), username=username, supervisor=supervisor
        )
    out.print(f"User '{info.username}' approved.")


@user_app.command("update")
def user_update(
    username: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[
        list[Role] | None,
        typer.Option("--role", help="The complete new set of roles (repeatable)."),
    ] = None,
    training_expires: Annotated[
        str | None,
        typer.Option("--training-expires", help="Training attestation valid until YYYY-MM-DD."),
    ] = None,
    active: Annotated[
        bool | None,
        typer.Option("--activate/--deactivate", help="Reactivate or deactivate the account."),
    ] = None,
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Change an account's roles, training expiry or active state; what is not given stays.
    The last active supervisor of an organisation cannot lose the role or be deactivated."""
    expires = _date(training_expires) if training_expires else None
    with services(home) as s:
        info = s.accounts.update_user(
            actor=actor_name(actor),
            username=username,
            roles=role or None,
            training_expires=expires,
            active=active,
        )
    if json_out:
        print_json(
            {
                "user": info.username,
                "organisation": info.organisation,
                "roles": list(info.roles),
                "approved": info.approved,
                "active": info.active,
                "training_expires": (
                    info.training_expires.isoformat() if info.training_expires else None
                ),
            }
        )
    else:
        state = "active" if info.active else "deactivated"
        out.print(f"User '{info.username}' updated: {', '.join(info.roles)}; {state}.")


@key_app.command("create")
def key_create(
    username: Annotated[str, typer.Argument(help="Login name of the key's owner.")],
    label: Annotated[str, typer.Option("--label", help="What the key is for.")] = "api",
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create an API key. It is printed once; only its hash is stored."""
    with services(home) as s:
        key = s.accounts.create_api_key(actor=actor_name(actor), username=username, label=label)
    if json_out:
        print_json({"key_id": key.key_id, "key": key.secret})
    else:
        out.print(key.secret, markup=False, highlight=False)
        err.print("Store this key now: it is not shown again.")


@user_app.command("password")
def user_password(
    username: Annotated[str, typer.Argument(help="Login name.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    home: HomeOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Set the web login password of an account (argon2; at least 12 characters). The
    account's sessions and API keys end: whoever knew the old password is out."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with services(home) as s:
        s.accounts.set_password(actor=actor_name(actor), username=username, password=password)
    out.print(f"Password set for '{username}'.")


@user_app.command("reset-code")
def user_reset_code(
    username: Annotated[str, typer.Argument(help="Login name.")],
    home: HomeOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Issue a one-time password reset code (24 hours, one use; a new code replaces the
    last). The person sets their own password with it at /password-reset, so nobody else
    learns it. Printed once; stored only as a digest."""
    with services(home) as s:
        reset = s.accounts.issue_reset(actor=actor_name(actor), username=username)
    if json_out:
        print_json(
            {
                "username": reset.username,
                "code": reset.code,
                "expires_at": reset.expires_at.isoformat(),
            }
        )
    else:
        out.print(reset.code, markup=False, highlight=False)
        err.print(
            f"One-time reset code for '{username}', valid until "
            f"{reset.expires_at:%Y-%m-%d %H:%M} UTC: give it to them; it is not shown again."
        )


def _date(text: str) -> datetime:
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise InvalidInput(f"{text!r} is not a date (YYYY-MM-DD)") from None
    return datetime.combine(day, time.max, tzinfo=UTC)
