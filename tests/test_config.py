"""Configuration discovery and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftdata.config import ConfigError, Settings, find_config, load_config, settings_from_mapping


def test_nearest_config_wins_and_pyproject_without_table_is_skipped(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    (tmp_path / "ftdata.toml").write_text('profile = "openai"\n')
    (tmp_path / "a" / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert find_config(deep) == (tmp_path / "ftdata.toml").resolve()
    (tmp_path / "a" / "pyproject.toml").write_text('[tool.ftdata]\nprofile = "trl"\n')
    found = find_config(deep)
    assert found == (tmp_path / "a" / "pyproject.toml").resolve()
    assert load_config(found).profile == "trl"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"selct": ["FT1"]}, "did you mean 'select'"),
        ({"select": ["FT999"]}, "unknown rule selector 'FT999'"),
        ({"profile": "azure"}, "unknown profile 'azure'"),
        ({"format": "csv"}, "unknown format 'csv'"),
        ({"fail-on": "fatal"}, "unknown severity 'fatal'"),
        ({"max-errors": 0}, "positive integer"),
        ({"rules": {"FT200": {"min": 3}}}, "has no option 'min'"),
        ({"rules": {"FT200": {"min_records": True}}}, "expects int"),
        ({"rules": {"nope": {}}}, "unknown rule 'nope'"),
        ({"severity": {"FT200": "loud"}}, "unknown severity 'loud'"),
    ],
)
def test_invalid_settings_are_errors(table: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from_mapping(table)


def test_override_adds_ignores_and_merges_options() -> None:
    base = settings_from_mapping({"ignore": ["FT115"], "rules": {"FT116": {"arguments": "any"}}})
    merged = base.override(ignore=["FT111"], options={"FT116": {"require_ids": False}}, select=None)
    assert merged.ignore == ("FT115", "FT111")
    assert merged.options == {"FT116": {"arguments": "any", "require_ids": False}}
    assert Settings().override(select="FT1,FT2").select == ("FT1", "FT2")
