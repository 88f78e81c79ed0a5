"""Avro bytes on the wire: two framings behind one small interface, and a decoder.

- Confluent Schema Registry framing (magic 0, 4-byte big-endian schema id, Avro body)
  through confluent-kafka's `AvroSerializer`, when a registry is configured. The
  subject name strategy is always set explicitly; keys always use the topic strategy
  (a primitive `long` has no record name for the other two).
- Avro single-object encoding (`C3 01`, the 8-byte little-endian CRC-64-AVRO
  fingerprint of the schema's parsing canonical form, Avro body) when none is: the
  fingerprint names the schema, so a consumer holding schemas/ can decode offline.

Schemas are parsed once. Records are written by `avro_writer`'s compiled writers (the
same bytes as fastavro's `schemaless_writer`, in under half the time); fastavro reads.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import fastavro
from confluent_kafka.schema_registry import (
    SchemaRegistryClient,
    record_subject_name_strategy,
    topic_record_subject_name_strategy,
    topic_subject_name_strategy,
)
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError as RegistryHttpError
from confluent_kafka.serialization import MessageField, SerializationContext
from fastavro.schema import to_parsing_canonical_form

from producer.avro_writer import WriteError, compile_writer, schema_writer, zigzag_varint
from producer.errors import (
    CdcError,
    ConfigError,
    EncodeError,
    FatalSchemaRegistryError,
    RetryableSchemaRegistryError,
)

# schemas/ of a source checkout (and editable installs); a wheel carries producer/schemas/
_SOURCE_SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
SCHEMA_DIR = _SOURCE_SCHEMAS if _SOURCE_SCHEMAS.is_dir() else Path(__file__).parent / "schemas"
VALUE_SCHEMA = "ticket_change.v1"
KEY_SCHEMA = "ticket_key.v1"
DEAD_LETTER_SCHEMA = "dead_letter.v1"

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
REGISTRY_MAGIC = 0


class DecodeError(CdcError):
    """Bytes that are not a record this service writes (unknown framing or schema)."""


# --- CRC-64-AVRO, as the Avro specification defines it ------------------------------

_CRC64_EMPTY = 0xC15D213AA4D7A795


def _crc64_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        fp = byte
        for _ in range(8):
            fp = (fp >> 1) ^ (_CRC64_EMPTY & -(fp & 1))
        table.append(fp)
    return tuple(table)


_CRC64_TABLE = _crc64_table()


def crc64_avro(data: bytes) -> int:
    """The Rabin fingerprint of the Avro spec (unsigned 64-bit)."""
    fp = _CRC64_EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _CRC64_TABLE[(fp ^ byte) & 0xFF]
    return fp


# --- schemas ------------------------------------------------------------------------


def schema_json(name: str) -> Any:
    """The JSON of schemas/<name>.avsc (e.g. "ticket_change.v1")."""
    path = SCHEMA_DIR / f"{name}.avsc"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError("schemas", f"{path} is missing: the installation is incomplete") from exc


@dataclass(frozen=True, slots=True)
class LoadedSchema:
    name: str  # file stem, e.g. ticket_change.v1
    text: str  # the .avsc text, as registered with a Schema Registry
    parsed: Any  # fastavro's parsed form
    header: bytes  # single-object header: C3 01 + little-endian fingerprint
    write: Callable[[Any], bytes]  # datum -> Avro body (compiled; fastavro's bytes)
    # the compiled writer alone (WriteError where it declines), for unchecked records
    compiled: Callable[[Any], bytes]


@cache
def load_schema(name: str) -> LoadedSchema:
    raw = schema_json(name)
    parsed = fastavro.parse_schema(raw, named_schemas={})
    canonical = to_parsing_canonical_form(parsed)
    header = SINGLE_OBJECT_MAGIC + crc64_avro(canonical.encode("utf-8")).to_bytes(8, "little")
    compiled = compile_writer(raw)  # our schemas are within its scope (a unit test says so)
    return LoadedSchema(
        name, json.dumps(raw), parsed, header, schema_writer(raw, parsed, compiled), compiled
    )


def _write(schema: LoadedSchema, datum: Any, prefix: bytes) -> bytes:
    return prefix + schema.write(datum)


def avro_long(value: int) -> bytes:
    """The Avro binary encoding of a ticket id (a long): the record key's body."""
    if not -(2**63) <= value < 2**63:
        raise EncodeError(value, "ticket id outside int64")
    return zigzag_varint(value)


def _encode_error(record: Mapping[str, Any], exc: Exception) -> EncodeError:
    ticket = record.get("ticket")
    ticket_id = ticket.get("id") if isinstance(ticket, Mapping) else record.get("ticket_id")
    return EncodeError(ticket_id if isinstance(ticket_id, int) else None, f"avro: {exc}")


# --- the interface ------------------------------------------------------------------


class RecordSerializer(Protocol):
    """Turns keys, TicketChange records and DeadLetter records into Kafka bytes."""

    def key(self, ticket_id: int) -> bytes: ...

    def value(self, record: Mapping[str, Any]) -> bytes: ...

    def value_if_compiled(self, record: Mapping[str, Any]) -> bytes | None:
        """The value's bytes by the compiled writer alone, for a record that was not
        checked (`change_record_unchecked`): None where it declines or cannot be used
        yet; then map the ticket with checks and call `value`."""
        ...

    def dead_letter(self, record: Mapping[str, Any]) -> bytes: ...


class SingleObjectSerializer:
    """Avro single-object encoding: no registry needed."""

    def __init__(self) -> None:
        self._key = load_schema(KEY_SCHEMA)
        self._value = load_schema(VALUE_SCHEMA)
        self._dead = load_schema(DEAD_LETTER_SCHEMA)

    def key(self, ticket_id: int) -> bytes:
        return self._key.header + avro_long(ticket_id)

    def value(self, record: Mapping[str, Any]) -> bytes:
        try:
            return _write(self._value, record, self._value.header)
        except (ValueError, TypeError, OverflowError) as exc:
            raise _encode_error(record, exc) from exc

    def value_if_compiled(self, record: Mapping[str, Any]) -> bytes | None:
        try:
            return self._value.header + self._value.compiled(record)
        except WriteError:
            return None

    def dead_letter(self, record: Mapping[str, Any]) -> bytes:
        try:
            return _write(self._dead, record, self._dead.header)
        except (ValueError, TypeError, OverflowError) as exc:
            raise _encode_error(record, exc) from exc


class SubjectStrategy(StrEnum):
    TOPIC = "topic"  # {topic}-value: one schema per topic (Confluent's default)
    RECORD = "record"  # {record full name}: the same schema across topics
    TOPIC_RECORD = "topic_record"  # {topic}-{record full name}


_STRATEGIES: dict[SubjectStrategy, Callable[..., Any]] = {
    SubjectStrategy.TOPIC: topic_subject_name_strategy,
    SubjectStrategy.RECORD: record_subject_name_strategy,
    SubjectStrategy.TOPIC_RECORD: topic_record_subject_name_strategy,
}


class _RegistryFrame:
    """One AvroSerializer, with the frame it writes learned so later records skip it.

    With `use.latest.version` off, confluent-kafka's AvroSerializer writes exactly
    `00 + schema id + fastavro body` with *our* schema (no domain rules run on that
    path). So once it has registered or looked up the schema and framed a record, the
    next records are framed here around the compiled writer's body: the same bytes,
    about twice as fast. The frame is learned only from a record whose bytes proved
    it; with `use.latest.version` on (another schema may write) it is never learned.
    """

    def __init__(
        self,
        serializer: AvroSerializer,
        ctx: SerializationContext,
        write_body: Callable[[Any], bytes] | None,
    ) -> None:
        self._serializer = serializer
        self._ctx = ctx
        self._write_body = write_body  # None: always AvroSerializer
        self._frame: bytes | None = None

    def compiled_only(self, datum: Any, compiled: Callable[[Any], bytes]) -> bytes | None:
        """The frame around `compiled`'s body once the frame is proven; else None."""
        if self._frame is None or self._write_body is None:
            return None
        try:
            return self._frame + compiled(datum)
        except WriteError:
            return None

    def __call__(self, datum: Any) -> bytes:
        if self._frame is not None and self._write_body is not None:
            return self._frame + self._write_body(datum)
        data = self._serializer(datum, self._ctx)
        assert data is not None
        if self._write_body is not None:
            body = self._write_body(datum)
            if len(data) == len(body) + 5 and data[0] == REGISTRY_MAGIC and data[5:] == body:
                self._frame = bytes(data[:5])
        return bytes(data)


class RegistrySerializer:
    """Confluent Schema Registry framing through confluent-kafka's AvroSerializer."""

    def __init__(
        self,
        client: SchemaRegistryClient,
        *,
        topic: str,
        dead_letter_topic: str,
        subject_strategy: SubjectStrategy = SubjectStrategy.TOPIC,
        auto_register: bool = True,
        use_latest_version: bool = False,
        normalize_schemas: bool = False,
    ) -> None:
        conf = {
            "auto.register.schemas": auto_register,
            "use.latest.version": use_latest_version,
            "normalize.schemas": normalize_schemas,
            "subject.name.strategy": _STRATEGIES[SubjectStrategy(subject_strategy)],
        }
        key_conf = {**conf, "subject.name.strategy": topic_subject_name_strategy}
        key, value, dead = map(load_schema, (KEY_SCHEMA, VALUE_SCHEMA, DEAD_LETTER_SCHEMA))
        try:
            key_serializer = AvroSerializer(client, key.text, conf=key_conf)
            value_serializer = AvroSerializer(client, value.text, conf=conf)
            dead_serializer = AvroSerializer(client, dead.text, conf=conf)
        except ValueError as exc:  # e.g. use.latest.version together with auto-register
            raise ConfigError("schema_registry", str(exc)) from exc

        def fast(schema: LoadedSchema) -> Callable[[Any], bytes] | None:
            return None if use_latest_version else schema.write

        self._key = _RegistryFrame(
            key_serializer, SerializationContext(topic, MessageField.KEY), fast(key)
        )
        self._value = _RegistryFrame(
            value_serializer, SerializationContext(topic, MessageField.VALUE), fast(value)
        )
        self._value_compiled = value.compiled
        self._dead = _RegistryFrame(
            dead_serializer,
            SerializationContext(dead_letter_topic, MessageField.VALUE),
            fast(dead),
        )

    def key(self, ticket_id: int) -> bytes:
        try:
            return self._key(ticket_id)
        except Exception as exc:
            raise _registry_failure(exc) from exc

    def value(self, record: Mapping[str, Any]) -> bytes:
        return self._serialize(self._value, record)

    def value_if_compiled(self, record: Mapping[str, Any]) -> bytes | None:
        # until AvroSerializer has framed a checked record, the frame is unknown: None
        return self._value.compiled_only(record, self._value_compiled)

    def dead_letter(self, record: Mapping[str, Any]) -> bytes:
        return self._serialize(self._dead, record)

    @staticmethod
    def _serialize(frame: _RegistryFrame, record: Mapping[str, Any]) -> bytes:
        try:
            return frame(dict(record))
        except (ValueError, TypeError, OverflowError) as exc:
            raise _encode_error(record, exc) from exc
        except Exception as exc:
            raise _registry_failure(exc) from exc


_HTTP_CLIENT_MODULES = frozenset({"httpx", "httpx2", "httpcore", "httpcore2"})


def _registry_failure(exc: Exception) -> Exception:
    """What a failed call to the registry means for the page: retry it later, or stop.

    Bad data never gets here (it is an EncodeError); the serializer talks to the
    registry only until it has cached each schema's id.
    """
    if isinstance(exc, RegistryHttpError):
        status = exc.http_status_code
        if 400 <= status < 500 and status not in (408, 429):
            return FatalSchemaRegistryError(
                f"Schema Registry refused ({status}): {exc.error_message} "
                "(credentials, schema compatibility, or a subject missing with "
                "auto-registration off)"
            )
        return RetryableSchemaRegistryError(f"Schema Registry error ({status}): {exc}")
    # the registry client's HTTP transport: refused, reset, timed out
    if isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in _HTTP_CLIENT_MODULES:
        return RetryableSchemaRegistryError(
            f"Schema Registry unreachable: {type(exc).__name__}: {exc}"
        )
    return exc


# --- decoding -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decoded:
    schema: str  # the writer schema's full name ("long" for keys)
    framing: str  # "single-object" or "registry"
    value: Any


class RecordDecoder:
    """Decodes both framings; the registry one needs a client (or is refused)."""

    def __init__(self, client: SchemaRegistryClient | None = None) -> None:
        self._client = client
        self._by_fingerprint = {
            s.header: s for s in map(load_schema, (KEY_SCHEMA, VALUE_SCHEMA, DEAD_LETTER_SCHEMA))
        }
        self._by_id: dict[int, Any] = {}

    def decode(self, data: bytes) -> Decoded:
        if data[:2] == SINGLE_OBJECT_MAGIC:
            schema = self._by_fingerprint.get(data[:10])
            if schema is None:
                raise DecodeError(f"unknown schema fingerprint {data[2:10].hex()}")
            body = _read(schema.parsed, data[10:])
            return Decoded(_full_name(schema.parsed), "single-object", body)
        if len(data) >= 5 and data[0] == REGISTRY_MAGIC:
            parsed = self._registry_schema(int.from_bytes(data[1:5], "big"))
            return Decoded(_full_name(parsed), "registry", _read(parsed, data[5:]))
        raise DecodeError(f"unknown framing {data[:2].hex()}")

    def _registry_schema(self, schema_id: int) -> Any:
        parsed = self._by_id.get(schema_id)
        if parsed is None:
            if self._client is None:
                raise DecodeError("registry-framed record but no Schema Registry configured")
            text = self._client.get_schema(schema_id).schema_str
            if text is None:
                raise DecodeError(f"the registry has no schema text for id {schema_id}")
            parsed = fastavro.parse_schema(json.loads(text), named_schemas={})
            self._by_id[schema_id] = parsed
        return parsed


def _full_name(parsed: Any) -> str:
    if isinstance(parsed, str):
        return parsed
    # a registry may hand back a primitive as {"type": "long"}
    return str(parsed.get("name", parsed.get("type")))


def _read(parsed: Any, body: bytes) -> Any:
    stream = io.BytesIO(body)
    try:
        value = fastavro.schemaless_reader(stream, parsed, None)
    except (EOFError, ValueError, IndexError) as exc:
        raise DecodeError(f"not a valid Avro body: {exc}") from exc
    if stream.tell() != len(body):
        raise DecodeError(f"{len(body) - stream.tell()} trailing bytes after the Avro body")
    return value
