"""The README stays true: its configuration table is the one the code reads."""

from __future__ import annotations

from pathlib import Path

from launcher.processes import environment_table

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_configuration_table_matches_the_environment_the_code_reads() -> None:
    text = README.read_text()
    start = text.index("<!-- config-table")
    table = text[text.index("\n", start) + 1 : text.index("<!-- /config-table -->")].strip()
    assert table == environment_table().strip(), "run `python -m launcher.processes`"


def test_readme_shows_the_two_commands() -> None:
    text = README.read_text()
    assert "make run" in text
    assert "make test" in text
