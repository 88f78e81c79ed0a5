"""What `pip install .` ships: every subpackage of producer/ and the Avro schemas."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_subpackage_is_listed_for_the_wheel() -> None:
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "producer").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found <= set(CONFIG["packages"]), f"add {found - set(CONFIG['packages'])} to pyproject"


def test_schemas_ship_inside_the_package() -> None:
    assert CONFIG["package-dir"]["producer.schemas"] == "schemas"
    assert CONFIG["package-data"]["producer.schemas"] == ["*.avsc"]
    assert sorted(p.name for p in (ROOT / "schemas").glob("*.avsc"))
