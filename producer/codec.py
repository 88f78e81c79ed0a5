"""Zendesk JSON -> Avro records -> Kafka bytes: the one import the sink needs.

The pure mapping lives in `avro_mapping` (the schema choices are argued there and in
schemas/README.md), the framings in `wire`. `encode_plan` turns a page's `Plan` into
the key/value pairs of one transaction, dead-lettering what cannot be encoded.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from producer.avro_mapping import (
    SourceInfo,
    change_record,
    change_record_unchecked,
    dead_letter_record,
    ticket_from_avro,
    ticket_to_avro,
)
from producer.errors import EncodeError
from producer.model import ExportPage, RawTicket
from producer.plan import Plan
from producer.wire import (
    Decoded,
    DecodeError,
    RecordDecoder,
    RecordSerializer,
    RegistrySerializer,
    SingleObjectSerializer,
    SubjectStrategy,
    crc64_avro,
    load_schema,
)

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES",
    "DecodeError",
    "Decoded",
    "EncodedPlan",
    "RecordDecoder",
    "RecordSerializer",
    "RegistrySerializer",
    "SingleObjectSerializer",
    "SourceInfo",
    "SubjectStrategy",
    "change_record",
    "crc64_avro",
    "dead_letter_record",
    "encode_plan",
    "load_schema",
    "ticket_from_avro",
    "ticket_to_avro",
]


# librdkafka's default message.max.bytes is 1,000,000; leave room for key and headers
DEFAULT_MAX_RECORD_BYTES = 1_000_000 - 4096


@dataclass(frozen=True, slots=True)
class EncodedPlan:
    """The bytes of one page, in the order they must be produced."""

    # (key, value) for the change topic; value None is the tombstone after a delete
    records: tuple[tuple[bytes, bytes | None], ...]
    # (key or None when the ticket id is unknown, value) for the dead-letter topic
    dead_letters: tuple[tuple[bytes | None, bytes], ...]
    published: Counter[str]  # op -> records published (dead-lettered ones excluded)


def _raw_json(ticket: RawTicket, limit: int) -> str:
    # `default=repr` so even a value that is not JSON cannot stop the dead letter
    text = json.dumps(ticket, ensure_ascii=False, separators=(",", ":"), default=repr)
    if len(text.encode()) <= limit:
        return text
    # a dead letter must fit in Kafka too: keep the start, say what was cut
    cut = text.encode()[:limit].decode(errors="ignore")
    return f"{cut}... [truncated: {len(text.encode())} bytes in all]"


def _int_or_none(value: Any) -> int | None:
    return value if type(value) is int else None


def encode_plan(
    plan: Plan,
    page: ExportPage,
    *,
    account: str,
    serializer: RecordSerializer,
    now: float,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> EncodedPlan:
    """Encode every change of `plan`; a ticket that fails becomes a dead letter.

    The store updates of a dead-lettered ticket still apply: its version was handled
    (reported), so a replay must not retry it, and its next real change publishes.
    `now` (unix seconds) stamps the dead letters. A record larger than
    `max_record_bytes` would be refused by Kafka on every attempt and stall the page, so
    it is dead-lettered too, with its raw JSON cut to fit.
    """
    source = SourceInfo.of(page, account)
    records: list[tuple[bytes, bytes | None]] = []
    dead: list[tuple[bytes | None, bytes]] = []
    published: Counter[str] = Counter()
    for change in plan.changes:
        ticket_id = int(change.ticket["id"])
        key = serializer.key(ticket_id)
        try:
            # fast path: the compiled writer checks what it writes; a ticket it declines
            # is mapped with checks, so a bad one gets a reason that names the field
            unchecked = change_record_unchecked(change.op.value, change.ticket, source)
            value = None if unchecked is None else serializer.value_if_compiled(unchecked)
            if value is None:
                record = change_record(change.op.value, change.ticket, source, tagged=True)
                value = serializer.value(record)
            if len(value) > max_record_bytes:
                raise EncodeError(
                    ticket_id,
                    f"the record is {len(value)} bytes, over the {max_record_bytes} "
                    "Kafka accepts (message.max.bytes)",
                )
        except EncodeError as exc:
            letter = dead_letter_record(
                ticket_id=ticket_id,
                reason=exc.reason,
                raw_json=_raw_json(change.ticket, limit=max_record_bytes // 2),
                account=account,
                generated_timestamp=_int_or_none(change.ticket.get("generated_timestamp")),
                failed_at=now,
            )
            dead.append((key, serializer.dead_letter(letter)))
            continue
        records.append((key, value))
        if change.tombstone:
            records.append((key, None))
        published[change.op.value] += 1
    for bad in plan.malformed:
        letter = dead_letter_record(
            ticket_id=bad.ticket_id,
            reason=bad.reason,
            raw_json=bad.raw_json,
            account=account,
            generated_timestamp=None,
            failed_at=now,
        )
        key_or_none = None if bad.ticket_id is None else serializer.key(bad.ticket_id)
        dead.append((key_or_none, serializer.dead_letter(letter)))
    return EncodedPlan(tuple(records), tuple(dead), published)
