"""The content fingerprint of a ticket: did anything a consumer can see change?

The fingerprint is the first 8 bytes of BLAKE2b over the ticket's canonical JSON, read
as a big-endian signed int64 (the type of `Version.fingerprint` and of an Avro long).

Canonical JSON: keys sorted at every depth, no whitespace, `ensure_ascii=False`
encoded as UTF-8, numbers as Python's shortest round-trip repr (so the same JSON
number text always gives the same bytes; `1` and `1.0` stay distinct, as in the JSON).
Left out are the fields that move without a content change: `generated_timestamp`
(bumped by every system update) and `updated_stamp` (write-only today, excluded in
case a payload ever carries it). `updated_at` stays IN: it is content, and a change
of it alone is a real change. Key order and dict identity do not matter.

Pure: standard library only.
"""

from __future__ import annotations

import json
from hashlib import blake2b

from producer.model import RawTicket

# Fields that change on every update, with or without a content change.
VOLATILE_FIELDS = frozenset({"generated_timestamp", "updated_stamp"})

_encoder = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=True
)


def canonical_json(ticket: RawTicket) -> bytes:
    """The ticket's content as canonical UTF-8 JSON, without the volatile fields."""
    content = {k: v for k, v in ticket.items() if k not in VOLATILE_FIELDS}
    return _encoder.encode(content).encode("utf-8")


def fingerprint(ticket: RawTicket) -> int:
    """64-bit content hash of the ticket, as a signed int64 (see module docstring)."""
    digest = blake2b(canonical_json(ticket), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
