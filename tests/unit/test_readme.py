"""The README is part of the product: its settings table and its commands must be true."""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path

from producer.config import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"


def settings_table() -> str:
    rows = [
        "| Environment variable | Flag | Default | What it does |",
        "| --- | --- | --- | --- |",
    ]
    for name, field in Settings.model_fields.items():
        default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
        if default is None or default in ((), {}):
            shown = "—"
        elif isinstance(default, Enum):
            shown = f"`{default.value}`"
        else:
            shown = f"`{default}`"
        description = (field.description or "").replace("|", "\\|")
        flag = "--" + name.replace("_", "-")
        rows.append(f"| `ZENDESK_CDC_{name.upper()}` | `{flag}` | {shown} | {description} |")
    return "\n".join(rows)


def test_settings_table_lists_every_setting_as_configured() -> None:
    start, end = README.index(BEGIN) + len(BEGIN), README.index(END)
    assert README[start:end].strip() == settings_table(), (
        "README settings table is stale; regenerate it from tests/unit/test_readme.py"
    )


def test_ci_runs_exactly_the_readme_test_command() -> None:
    commands = re.findall(r"^\s*(python3 bootstrap\.py \w+)\s*$", README, re.MULTILINE)
    assert commands[:2] == ["python3 bootstrap.py demo", "python3 bootstrap.py test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci.splitlines()
