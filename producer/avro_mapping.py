"""PURE: a Zendesk ticket (export JSON) <-> the Avro `Ticket` record, losslessly.

The record mirrors schemas/ticket_change.v1.avsc. Every field of ZENDESK_API.md §7 is
typed, and nullable except `id` and `generated_timestamp`. The choices (the README in
schemas/ says the same for consumers):

- `type`, `priority`, `status`, `via.channel` are strings, not enums: Zendesk extends
  these sets (`status: "deleted"` is already outside its own spec). An enum with a
  default only helps *readers* of an older schema; our *writer* would have to map an
  unknown value to the default, which loses it. A string loses nothing.
- `custom_fields` / `fields` values are a typed union (null, boolean, long, double,
  string, array of strings) because that is what real data holds and what consumers
  filter on; anything else (an object, a mixed array, an integer beyond int64) falls
  back to a `JsonValue {json}` branch instead of being coerced.
- `via.source`, `satisfaction_rating` and unknown top-level fields are JSON text
  (`*_json`): their shape varies by channel and over time, and Avro has no "any" type;
  JSON text is lossless and every consumer can parse it.
- `created_at`, `updated_at`, `due_at` keep Zendesk's ISO string (lossless) plus a
  `*_ms` timestamp-millis twin for consumers who want a real timestamp; a string that
  is not ISO-8601 is an encode error, so `*_ms` is null iff the string is.
- `absent_fields` lists known fields missing from the payload, so `ticket_from_avro`
  rebuilds exactly the dict Zendesk sent (up to key order).

Wrong types are never coerced: `ticket_to_avro` raises `EncodeError(ticket_id, why)`
and the sink dead-letters the ticket. Pure (orjson only writes JSON text).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from producer.errors import EncodeError
from producer.model import ExportPage, RawTicket

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_json_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _dumps(value: Any) -> str:
    """Compact JSON text, by orjson (a ticket's numbers are finite: see RawTicket);
    an integer beyond 64 bits, which orjson refuses, is written by json."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return _json_dumps(value)


class _WrongTypeError(Exception):
    """Internal: a value of the wrong JSON type; becomes EncodeError with the field."""


def _long(value: Any) -> int:
    # bool is an int in Python, but true is not 1 in JSON
    if type(value) is not int or not INT64_MIN <= value <= INT64_MAX:
        raise _WrongTypeError(f"expected an integer within int64, got {value!r:.40}")
    return value


def _string(value: Any) -> str:
    if type(value) is not str:
        raise _WrongTypeError(f"expected a string, got {type(value).__name__}")
    return value


def _boolean(value: Any) -> bool:
    if type(value) is not bool:
        raise _WrongTypeError(f"expected a boolean, got {type(value).__name__}")
    return value


def _long_array(value: Any) -> list[int]:
    if type(value) is not list:
        raise _WrongTypeError(f"expected a list of integers, got {type(value).__name__}")
    return [_long(item) for item in value]


def _string_array(value: Any) -> list[str]:
    if type(value) is not list:
        raise _WrongTypeError(f"expected a list of strings, got {type(value).__name__}")
    return [_string(item) for item in value]


_JSON_VALUE = "com.zendesk_cdc.JsonValue"
# Avro union branch names for fastavro's tuple notation, by Python type
_BRANCH = {bool: "boolean", int: "long", float: "double", str: "string", list: "array"}
_SIMPLE_BRANCH = {bool: "boolean", float: "double", str: "string"}  # always exact


def _field_value(value: Any) -> Any:
    """A custom-field value into the union branch that holds it exactly."""
    kind = type(value)
    if value is None or kind is bool or kind is str or kind is float:
        return value
    if kind is int:
        return value if INT64_MIN <= value <= INT64_MAX else {"json": _dumps(value)}
    if kind is list and all(type(item) is str for item in value):
        return value
    return {"json": _dumps(value)}


def _custom_fields(value: Any, tagged: bool = False) -> list[dict[str, Any]]:
    # the hot loop of the mapping (tens of entries per ticket): kept inline on purpose
    if type(value) is not list:
        raise _WrongTypeError(f"expected a list of {{id, value}}, got {type(value).__name__}")
    out = []
    for entry in value:
        if type(entry) is not dict or len(entry) != 2 or "value" not in entry:
            raise _WrongTypeError(f"expected {{id, value}} entries, got {entry!r:.60}")
        field_id = entry.get("id")
        if type(field_id) is not int or not INT64_MIN <= field_id <= INT64_MAX:
            raise _WrongTypeError(f"expected an integer within int64, got {field_id!r:.40}")
        item = entry["value"]
        if item is not None:
            branch = _SIMPLE_BRANCH.get(type(item))
            if branch is None:
                item = _field_value(item)
                branch = _JSON_VALUE if type(item) is dict else _BRANCH[type(item)]
            if tagged:
                item = (branch, item)
        out.append({"id": field_id, "value": item})
    return out


def _timestamp(value: Any) -> datetime:
    text = _string(value)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _WrongTypeError(f"expected an ISO-8601 timestamp, got {text!r:.40}") from exc
    if moment.tzinfo is None:  # Zendesk always sends Z; a bare time is read as UTC
        return _truncated_to_millis(moment.replace(tzinfo=UTC))
    if moment.tzinfo is not UTC:  # "Z" parses as UTC itself: the common case skips this
        try:
            moment = moment.astimezone(UTC)
        except OverflowError as exc:  # 9999-12-31T23:59:59-01:00 is past year 9999 in UTC
            raise _WrongTypeError(f"a timestamp outside years 1-9999 in UTC: {text!r:.40}") from exc
    return _truncated_to_millis(moment)


def _truncated_to_millis(moment: datetime) -> datetime:
    # timestamp-millis holds milliseconds; truncate so decode gives back the same value
    if moment.microsecond % 1000:
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    return moment


# The typed top-level fields in §7 order, each with its checker. Timestamps, `via`,
# `satisfaction_rating` and the custom fields are handled beside it.
_TYPED: tuple[tuple[str, Callable[[Any], Any]], ...] = (
    ("url", _string),
    ("external_id", _string),
    ("type", _string),
    ("subject", _string),
    ("raw_subject", _string),
    ("description", _string),
    ("priority", _string),
    ("status", _string),
    ("recipient", _string),
    ("requester_id", _long),
    ("submitter_id", _long),
    ("assignee_id", _long),
    ("organization_id", _long),
    ("group_id", _long),
    ("collaborator_ids", _long_array),
    ("follower_ids", _long_array),
    ("email_cc_ids", _long_array),
    ("forum_topic_id", _long),
    ("problem_id", _long),
    ("has_incidents", _boolean),
    ("is_public", _boolean),
    ("tags", _string_array),
    ("custom_fields", _custom_fields),
    ("sharing_agreement_ids", _long_array),
    ("custom_status_id", _long),
    ("fields", _custom_fields),
    ("followup_ids", _long_array),
    ("ticket_form_id", _long),
    ("brand_id", _long),
    ("allow_channelback", _boolean),
    ("allow_attachments", _boolean),
    ("from_messaging_channel", _boolean),
)
TIMESTAMP_FIELDS = ("created_at", "updated_at", "due_at")
REQUIRED_FIELDS = ("id", "generated_timestamp")
# Every §7 field; anything else a payload carries goes to extra_json.
KNOWN_FIELDS = frozenset(
    [name for name, _ in _TYPED]
    + list(TIMESTAMP_FIELDS)
    + list(REQUIRED_FIELDS)
    + ["via", "satisfaction_rating"]
)
_VIA_KEYS = frozenset({"channel", "source"})
_VIA = "com.zendesk_cdc.Via"
_ARRAY_FIELDS = frozenset(
    name for name, check in _TYPED if check in (_long_array, _string_array, _custom_fields)
)


def _via(value: Any, absent: list[str]) -> dict[str, Any]:
    if type(value) is not dict:
        raise _WrongTypeError(f"expected an object, got {type(value).__name__}")
    channel = value.get("channel")
    if "channel" not in value:
        absent.append("via.channel")
    elif channel is not None:
        _string(channel)
    if "source" not in value:
        absent.append("via.source")
    source = value.get("source")
    extra = {k: v for k, v in value.items() if k not in _VIA_KEYS}
    return {
        "channel": channel,
        "source_json": None if source is None else _dumps(source),
        "extra_json": _dumps(extra) if extra else None,
    }


def ticket_to_avro(ticket: RawTicket, *, tagged: bool = False) -> dict[str, Any]:
    """The Avro `Ticket` record for a raw export ticket; EncodeError on a wrong type.

    `tagged=True` names the branch of every non-null complex union value with
    fastavro's tuple notation (`("array", [...])`): the bytes are identical, but
    fastavro skips trying each branch by deep validation, which doubles encode speed.
    Use it for writing only; decoding gives back the untagged form.
    """
    raw_id = ticket.get("id")
    ticket_id = raw_id if type(raw_id) is int else None
    name = "id"
    try:
        record: dict[str, Any] = {"id": _long(raw_id)}
        name = "generated_timestamp"
        record["generated_timestamp"] = _long(ticket.get("generated_timestamp"))
        absent: list[str] = []
        for name, check in _TYPED:
            value = ticket.get(name)
            if value is None:
                if name not in ticket:
                    absent.append(name)
                record[name] = None
            elif not tagged or name not in _ARRAY_FIELDS:
                record[name] = check(value)
            elif check is _custom_fields:
                record[name] = ("array", _custom_fields(value, tagged=True))
            else:
                record[name] = ("array", check(value))
        for name in TIMESTAMP_FIELDS:
            value = ticket.get(name)
            if value is None:
                if name not in ticket:
                    absent.append(name)
                record[name] = record[f"{name}_ms"] = None
            else:
                record[f"{name}_ms"] = _timestamp(value)
                record[name] = value
        name = "via"
        via = ticket.get("via")
        if via is None and "via" not in ticket:
            absent.append("via")
        if via is None:
            record["via"] = None
        else:
            mapped_via = _via(via, absent)
            record["via"] = (_VIA, mapped_via) if tagged else mapped_via
        name = "satisfaction_rating"
        rating = ticket.get("satisfaction_rating")
        if rating is None and "satisfaction_rating" not in ticket:
            absent.append("satisfaction_rating")
        record["satisfaction_rating_json"] = None if rating is None else _dumps(rating)
        name = "extra fields"
        unknown = ticket.keys() - KNOWN_FIELDS  # usually empty: no loop over the fields
        if unknown:
            extra = {k: v for k, v in ticket.items() if k in unknown}  # in payload order
            record["extra_json"] = _dumps(extra)
        else:
            record["extra_json"] = None
    except _WrongTypeError as exc:
        raise EncodeError(ticket_id, f"{name}: {exc}") from exc
    except (TypeError, ValueError) as exc:  # not JSON at all: cannot come from a response
        raise EncodeError(ticket_id, f"{name}: not JSON: {exc}") from exc
    record["absent_fields"] = absent
    return record


# The known fields `ticket_to_avro` lists as absent before it looks into `via`.
_ABSENT_BEFORE_VIA = (*(name for name, _ in _TYPED), *TIMESTAMP_FIELDS)


def _raw_field_entries(value: Any) -> bool:
    """True if a custom-field list can be written as it came: `{id, value}` entries
    whose values the union takes untouched (anything but an object, which needs the
    JsonValue wrapper). Ids, numbers and arrays are checked by the writer."""
    if value is None:
        return True
    if type(value) is not list:
        return False
    for entry in value:
        if type(entry) is not dict or len(entry) != 2 or "value" not in entry:
            return False
        if type(entry["value"]) is dict:
            return False
    return True


def ticket_to_avro_unchecked(ticket: RawTicket) -> dict[str, Any] | None:
    """The `Ticket` record for the compiled writer alone, or None: use `ticket_to_avro`.

    The fast path of encoding. The typed fields are passed as they came: the compiled
    writer makes exactly `ticket_to_avro`'s type checks (a long is an int within int64
    and not a bool, a string a str, an array a list of them) and declines the record
    otherwise, so a wrongly typed ticket is mapped again by `ticket_to_avro`, whose
    EncodeError names the field. Never hand this record to fastavro: it takes `True`
    for a long. Property tests hold the two paths to the same bytes.
    """
    custom, fields = ticket.get("custom_fields"), ticket.get("fields")
    if not (_raw_field_entries(custom) and _raw_field_entries(fields)):
        return None
    record = dict(ticket)  # unknown keys ride along: the writer reads only the schema's
    keys = ticket.keys()
    # absent_fields in ticket_to_avro's order; usually none is absent: no loop
    absent = (
        [name for name in _ABSENT_BEFORE_VIA if name not in ticket]
        if len(keys & KNOWN_FIELDS) != len(KNOWN_FIELDS)
        else []
    )
    try:
        for name in TIMESTAMP_FIELDS:
            value = ticket.get(name)
            record[f"{name}_ms"] = None if value is None else _timestamp(value)
        via = ticket.get("via")
        if via is None:
            if "via" not in ticket:
                absent.append("via")
            record["via"] = None
        else:
            record["via"] = _via(via, absent)
        rating = ticket.get("satisfaction_rating")
        if rating is None and "satisfaction_rating" not in ticket:
            absent.append("satisfaction_rating")
        record["satisfaction_rating_json"] = None if rating is None else _dumps(rating)
        unknown = keys - KNOWN_FIELDS
        record["extra_json"] = (
            _dumps({k: v for k, v in ticket.items() if k in unknown}) if unknown else None
        )
    except (_WrongTypeError, TypeError, ValueError):
        return None
    record["absent_fields"] = absent
    return record


def _field_value_back(value: Any) -> Any:
    return json.loads(value["json"]) if type(value) is dict else value


def ticket_from_avro(record: Mapping[str, Any]) -> dict[str, Any]:
    """Rebuild the raw ticket dict from a decoded `Ticket` record (inverse of to_avro)."""
    absent = set(record["absent_fields"])
    out: dict[str, Any] = {}
    for name, check in _TYPED:
        value = record[name]
        if check is _custom_fields and value is not None:
            value = [{"id": e["id"], "value": _field_value_back(e["value"])} for e in value]
        out[name] = value
    for name in TIMESTAMP_FIELDS:
        out[name] = record[name]
    out["id"] = record["id"]
    out["generated_timestamp"] = record["generated_timestamp"]
    via = record["via"]
    if via is not None:
        rebuilt: dict[str, Any] = {}
        if "via.channel" not in absent:
            rebuilt["channel"] = via["channel"]
        if "via.source" not in absent:
            source = via["source_json"]
            rebuilt["source"] = None if source is None else json.loads(source)
        if via["extra_json"] is not None:
            rebuilt.update(json.loads(via["extra_json"]))
        out["via"] = rebuilt
    else:
        out["via"] = None
    rating = record["satisfaction_rating_json"]
    out["satisfaction_rating"] = None if rating is None else json.loads(rating)
    for name in absent:
        out.pop(name, None)
    if record["extra_json"] is not None:
        out.update(json.loads(record["extra_json"]))
    return out


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """The page-level part of the `Source` record: the same for every ticket of a page."""

    account: str
    window_start: int
    window_end: int
    export_mode: str
    fetched_at: datetime

    @classmethod
    def of(cls, page: ExportPage, account: str) -> SourceInfo:
        return cls(
            account=account,
            window_start=page.start.start_time,
            window_end=page.next_cursor.start_time,
            export_mode=page.start.mode.value,
            fetched_at=_millis_datetime(page.fetched_at),
        )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _millis_datetime(unix_seconds: float) -> datetime:
    # whole milliseconds, built exactly so that decoding gives back an equal datetime
    return _EPOCH + timedelta(milliseconds=round(unix_seconds * 1000))


def _envelope(op: str, mapped: dict[str, Any], source: SourceInfo) -> dict[str, Any]:
    return {
        "op": op,
        "ticket": mapped,
        "source": {
            "account": source.account,
            "generated_timestamp": mapped.get("generated_timestamp"),
            "window_start": source.window_start,
            "window_end": source.window_end,
            "export_mode": source.export_mode,
            "fetched_at": source.fetched_at,
        },
    }


def change_record(
    op: str, ticket: RawTicket, source: SourceInfo, *, tagged: bool = False
) -> dict[str, Any]:
    """The `TicketChange` envelope for one planned change; EncodeError on a bad ticket.

    `tagged`: see `ticket_to_avro` (the serializers' fast path).
    """
    return _envelope(op, ticket_to_avro(ticket, tagged=tagged), source)


def change_record_unchecked(
    op: str, ticket: RawTicket, source: SourceInfo
) -> dict[str, Any] | None:
    """`change_record` for the compiled writer alone (see `ticket_to_avro_unchecked`)."""
    mapped = ticket_to_avro_unchecked(ticket)
    return None if mapped is None else _envelope(op, mapped, source)


def dead_letter_record(
    *,
    ticket_id: int | None,
    reason: str,
    raw_json: str,
    account: str,
    generated_timestamp: int | None,
    failed_at: float,
) -> dict[str, Any]:
    """The `DeadLetter` record; `failed_at` in unix seconds."""
    return {
        "ticket_id": ticket_id,
        "reason": reason,
        "raw_json": raw_json,
        "account": account,
        "generated_timestamp": generated_timestamp,
        "failed_at": _millis_datetime(failed_at),
    }
