#!/usr/bin/env python3
"""Set up a private virtualenv and run zendesk-cdc or its checks; needs only python3 (3.11+).

    python3 bootstrap.py demo            the embedded demo (simulator + embedded broker)
    python3 bootstrap.py test            ruff, mypy --strict and the whole pytest suite
    python3 bootstrap.py cdc ARGS...     any zendesk-cdc command, e.g. `cdc run --help`
    python3 bootstrap.py bench           the benchmarks in bench/

The virtualenv lives in .venv and is rebuilt only when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".pyproject.sha256"


def _ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script runs before any venv exists
        sys.exit(f"zendesk-cdc needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    print("bootstrap: creating .venv and installing zendesk-cdc with its test tools...", flush=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "install", "-e", f"{ROOT}[test]"], check=True)
    STAMP.write_text(wanted)


def _run(*argv: str) -> int:
    return subprocess.run(argv, cwd=ROOT, check=False).returncode


def _test(extra: list[str]) -> int:
    py = str(BIN / "python")
    for step in ([py, "-m", "ruff", "check", "."], [py, "-m", "mypy"]):
        print(f"bootstrap: {' '.join(step[1:])}", flush=True)
        if code := _run(*step):
            return code
    code = _run(py, "-m", "pytest", *extra)
    if code == 5:
        print("bootstrap: pytest collected no tests; that is a failure here", file=sys.stderr)
        return 1
    return code


def main() -> int:
    command, *rest = sys.argv[1:] or ["--help"]
    if command in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    _ensure_venv()
    cdc = str(BIN / "zendesk-cdc")
    match command:
        case "demo":
            return _run(cdc, "demo", *rest)
        case "test":
            return _test(rest)
        case "cdc":
            return _run(cdc, *rest)
        case "bench":
            return _run(str(BIN / "python"), "-m", "bench", *rest)
        case _:
            print(__doc__, file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
