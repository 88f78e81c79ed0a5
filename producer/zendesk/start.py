"""The first-run start of the export: "0", unix seconds, an ISO date, or relative ("30d")."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from producer.errors import ConfigError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")


def parse_start(value: str, now: float) -> int:
    """Unix seconds to start exporting from; relative values count back from `now`."""
    text = value.strip()
    if text.isdigit():
        return int(text)
    match = _RELATIVE.match(text.lower())
    if match:
        return max(0, int(now) - int(match.group(1)) * _UNITS[match.group(2)])
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            "start", f"{value!r} is not 0, unix seconds, an ISO date or a relative age like 30d"
        ) from None
    if moment.tzinfo is None:  # a bare date or naive time is read as UTC, never local time
        moment = moment.replace(tzinfo=UTC)
    return max(0, int(moment.timestamp()))
