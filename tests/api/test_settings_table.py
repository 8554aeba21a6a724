"""The README's settings table is the one generated from ``config.py``: every setting, its default."""

from __future__ import annotations

from nlp_service.config import Settings
from nlp_service.settings_table import BEGIN, END, README, main, markdown_table, with_table


def test_readme_table_is_up_to_date() -> None:
    readme = README.read_text(encoding="utf-8")
    assert with_table(readme) == readme, "run: python -m nlp_service.settings_table --write"
    table = readme[readme.index(BEGIN) : readme.index(END)]
    for name in Settings.model_fields:
        assert f"| `NLP_{name.upper()}` |" in table, name
    assert main(["--check"]) == 0


def test_a_stale_table_is_caught() -> None:
    readme = README.read_text(encoding="utf-8")
    row = next(line for line in markdown_table().splitlines() if "NLP_MAX_TEXT_CHARS" in line)
    assert with_table(readme.replace(row + "\n", "")) == readme
    assert with_table(readme.replace(row, row.replace("10000", "9999"))) == readme


def test_every_setting_has_a_meaning() -> None:
    rows = [line for line in markdown_table().splitlines() if line.startswith("| `NLP_")]
    assert len(rows) == len(Settings.model_fields)
    assert not [r for r in rows if r.endswith("|  |")], "add a comment or description in config.py"
