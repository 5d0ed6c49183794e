"""The deployment examples in docs/deploy call commands and options the CLI really has, and
name settings the settings model really has, so they cannot drift from the code."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import typer.main

from probity.interfaces.cli.main import app
from probity.interfaces.render.configuration import settings_docs

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy"
CALL = re.compile(r"/opt/probity/\.venv/bin/probity ([^'\n&;]+)")


def _calls() -> list[tuple[str, list[str]]]:
    found = []
    for path in sorted(DEPLOY.iterdir()):
        for match in CALL.finditer(path.read_text()):
            words = [w for w in shlex.split(match.group(1).replace("\\", " ")) if w]
            found.append((path.name, words))
    return found


def _check(words: list[str]) -> None:
    command: Any = typer.main.get_command(app)
    rest = list(words)
    while hasattr(command, "commands") and rest and not rest[0].startswith("-"):
        sub = command.commands.get(rest.pop(0))
        assert sub is not None, f"no command {words}"
        command = sub
    options = {o for p in command.params for o in getattr(p, "opts", [])}
    for word in rest:
        if word.startswith("--"):
            assert word.split("=")[0] in options, f"{' '.join(words)}: no option {word}"


def test_every_probity_call_in_the_examples_exists() -> None:
    calls = _calls()
    assert {tuple(w[:1]) for _, w in calls} >= {("serve",), ("migrate",), ("backup",)}
    for name, words in calls:
        try:
            _check(words)
        except AssertionError as exc:
            raise AssertionError(f"docs/deploy/{name}: {exc}") from None


def test_the_check_notices_a_missing_option() -> None:
    _check(["serve", "--port", "8000"])
    try:
        _check(["serve", "--threads", "4"])
    except AssertionError:
        return
    raise AssertionError("an unknown option passed the check")


def test_every_setting_the_examples_name_exists() -> None:
    known = {d.variable for d in settings_docs()}
    named = {v for p in DEPLOY.iterdir() for v in re.findall(r"\bPROBITY_[A-Z_]+\b", p.read_text())}
    assert named and named <= known, sorted(named - known)
