"""docs/configuration.md is generated from the settings model and kept up to date: every
setting is in it, with a description, and the committed file is what the generator writes."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from probity.config import Settings
from probity.interfaces.cli.main import main
from probity.interfaces.render.configuration import configuration_reference, settings_docs

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def _variables(model: type[BaseModel], prefix: str = "PROBITY_") -> set[str]:
    """Every leaf environment variable of the model, walked independently of the generator."""
    found: set[str] = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found |= _variables(annotation, f"{prefix}{name.upper()}__")
        else:
            found.add(f"{prefix}{name.upper()}")
    return found


def test_every_setting_is_in_the_committed_reference_with_a_description() -> None:
    text = COMMITTED.read_text()
    variables = _variables(Settings)
    assert len(variables) >= 30
    missing = sorted(v for v in variables if f"`{v}`" not in text)
    assert not missing, f"not in docs/configuration.md: {missing}"
    undocumented = [d.variable for d in settings_docs() if not d.description]
    assert not undocumented, f"settings without a description: {undocumented}"


def test_the_committed_reference_is_up_to_date() -> None:
    assert COMMITTED.read_text() == configuration_reference(), (
        "docs/configuration.md is out of date: run "
        "'probity config reference -o docs/configuration.md'"
    )


def test_the_environment_names_are_the_ones_pydantic_reads(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The reference's names really configure Probity (prefix and nesting as documented)."""
    monkeypatch.setenv("PROBITY_ENGINE__HOG_UPSAMPLE", "2")
    monkeypatch.setenv("PROBITY_SEARCH__DEFAULT_TOP_K", "7")
    settings = Settings()
    assert settings.engine.hog_upsample == 2 and settings.search.default_top_k == 7
    assert {"PROBITY_ENGINE__HOG_UPSAMPLE", "PROBITY_SEARCH__DEFAULT_TOP_K"} <= {
        d.variable for d in settings_docs()
    }


class _Extra(BaseModel):
    depth: int = Field(3, ge=1, description="how deep")


class _NewSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROBITY_", env_nested_delimiter="__")
    colour: str = Field("blue", description="a new setting")
    extra: _Extra = Field(default_factory=_Extra)


def test_a_new_setting_appears_in_the_generated_text() -> None:
    text = configuration_reference(_NewSettings)
    assert "| `PROBITY_COLOUR` | str | `blue` | a new setting |" in text
    assert "| `PROBITY_EXTRA__DEPTH` | int; ≥ 1 | `3` | how deep |" in text


def test_cli_check_flags_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "configuration.md"
    stale.write_text(COMMITTED.read_text().replace("PROBITY_HOME", "PROBITY_HOUSE"))
    assert main(["config", "reference", "-o", str(stale), "--check"]) == 2
    assert main(["config", "reference", "-o", str(stale)]) == 0
    assert main(["config", "reference", "-o", str(stale), "--check"]) == 0
