"""The README's first command ends in `zendesk-cdc demo`: it must work and say true things."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

CLI = str(Path(sys.executable).with_name("zendesk-cdc"))


def test_demo_backfills_follows_live_activity_and_checks_itself() -> None:
    done = subprocess.run(
        [CLI, "demo", "--tickets", "2000", "--live-seconds", "3", "--speed", "120"],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Backfill:" in out
    assert "Live:" in out
    assert re.search(r"^  op=(create|update|delete) +id=\d+", out, re.MULTILINE)
    published = int(re.search(r"changes published +(\d+)", out)[1])  # type: ignore[index]
    assert published >= 2000  # every ticket of the history, then live changes
    assert re.search(r"real changes missed +0 ", out)
    assert re.search(r"published twice +0$", out, re.MULTILINE)
    assert "Traceback" not in done.stderr
