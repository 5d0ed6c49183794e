"""The configuration reference (docs/configuration.md), generated from the settings model.

Every field of ``probity.config.Settings`` becomes one row: its environment variable
(``PROBITY_`` prefix, nested models joined with ``__``), type, bounds, default and
description. ``probity config reference`` writes the file; a test checks that the committed
file is what this module produces, so the reference cannot drift from the code.

Defaults computed at start-up (the home folder, the worker count) would make the file
differ from machine to machine: such fields carry ``json_schema_extra={"doc_default":
"..."}`` with the rule in words, and that is shown instead.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from probity.config import Settings

PREFIX = "PROBITY_"
DELIMITER = "__"


@dataclass(frozen=True, slots=True)
class SettingDoc:
    """One setting as the reference shows it."""

    variable: str
    section: str
    type: str
    default: str
    bounds: str
    description: str


def settings_docs(model: type[BaseModel] = Settings) -> list[SettingDoc]:
    """Every leaf setting of ``model``, in declaration order, nested sections after the
    top-level ones."""
    top = [d for d in _walk(model, PREFIX, "") if d.section == ""]
    nested = [d for d in _walk(model, PREFIX, "") if d.section != ""]
    return top + nested


def _walk(model: type[BaseModel], prefix: str, section: str) -> Iterator[SettingDoc]:
    for name, field in model.model_fields.items():
        variable = f"{prefix}{name.upper()}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _walk(annotation, variable + DELIMITER, name)
            continue
        yield SettingDoc(
            variable=variable,
            section=section,
            type=_type_name(annotation),
            default=_default(field),
            bounds=_bounds(field),
            description=(field.description or "").strip(),
        )


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        parts = [a for a in typing.get_args(annotation) if a is not type(None)]
        inner = " or ".join(_type_name(a) for a in parts)
        return f"{inner} (optional)"
    if origin is list:
        (item,) = typing.get_args(annotation)
        return f"JSON list of {_type_name(item)}"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " | ".join(str(m.value) for m in annotation)
    if annotation is SecretStr:
        return "secret string"
    if annotation is Path:
        return "path"
    return getattr(annotation, "__name__", str(annotation))


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _default(field: FieldInfo) -> str:
    extra = field.json_schema_extra
    if isinstance(extra, dict) and "doc_default" in extra:
        return str(extra["doc_default"])
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "(required)"
    else:
        value = field.default
    if value is None:
        return "(not set)"
    value = _plain(value)
    if isinstance(value, bool | list):
        return f"`{json.dumps(value)}`"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"`{value}` ({value:,})"
    return f"`{value}`"


def _bounds(field: FieldInfo) -> str:
    signs = {
        annotated_types.Ge: ("≥", "ge"),
        annotated_types.Gt: (">", "gt"),
        annotated_types.Le: ("≤", "le"),
        annotated_types.Lt: ("<", "lt"),
        annotated_types.MinLen: ("length ≥", "min_length"),
    }
    found = []
    for item in field.metadata:
        for kind, (sign, attribute) in signs.items():
            if isinstance(item, kind):
                found.append(f"{sign} {getattr(item, attribute)}")
    return ", ".join(found)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def configuration_reference(model: type[BaseModel] = Settings) -> str:
    """The Markdown text of docs/configuration.md."""
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated from probity/config.py by `probity config reference -o "
        "docs/configuration.md`; do not edit by hand (tests/interfaces/"
        "test_configuration_reference.py checks it is up to date). -->",
        "",
        "Probity reads its settings from environment variables prefixed `PROBITY_`; a nested "
        "setting joins its section and name with `__` (`PROBITY_ENGINE__DETECTOR=cnn`). Lists "
        'are JSON (`PROBITY_OFFENCE_CATEGORIES=\'["robbery", "fraud"]\'`). The CLI\'s '
        "`--home` overrides `PROBITY_HOME`. Anything not set takes the default below.",
        "",
    ]
    docs = settings_docs(model)
    sections = list(dict.fromkeys(d.section for d in docs))
    for section in sections:
        title = "General" if section == "" else f"`{section}`"
        lines += [
            f"## {title}",
            "",
            "| Variable | Type | Default | Description |",
            "|---|---|---|---|",
        ]
        for d in (d for d in docs if d.section == section):
            kind = d.type + (f"; {d.bounds}" if d.bounds else "")
            lines.append(
                f"| `{d.variable}` | {_cell(kind)} | {_cell(d.default)} | {_cell(d.description)} |"
            )
        lines.append("")
    return "\n".join(lines)
