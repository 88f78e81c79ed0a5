"""Read a partition's committed records straight from the log, transaction markers and all.

Our state (changelog, checkpoints) must never include records of aborted transactions,
and we cannot rely on the broker for that: the embedded tansu broker sends no
`aborted_transactions` index, so consumers with `isolation.level=read_committed` deliver
aborted records there (and librdkafka drops null values on it). This module applies the
log's own semantics instead, valid on real Kafka and tansu alike: a transactional batch
is held per producer id until that producer's next control batch, COMMIT emits it, ABORT
drops it. Reads stop at the high watermark seen when the read starts; what is still open
there is left out.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

with warnings.catch_warnings():
    # kafka-python 3.0 loads its protocol schemas with importlib.resources.read_text,
    # deprecated on 3.11; harmless, and our tests run with warnings as errors
    warnings.simplefilter("ignore", DeprecationWarning)
    import kafka.errors as kafka_errors
    from kafka.net.compat import KafkaNetClient
    from kafka.protocol.consumer import FetchRequest, ListOffsetsRequest
    from kafka.record import MemoryRecords
    from kafka.structs import TopicPartition

from producer.errors import KafkaError

log = logging.getLogger(__name__)
_LIBRDKAFKA_LOG = logging.getLogger("zendesk_cdc.librdkafka")

Headers = tuple[tuple[str, bytes | None], ...]

_EARLIEST = -2  # ListOffsets timestamp sentinel
_FETCH_MAX_BYTES = 8 * 1024 * 1024
# tansu answers a Fetch with max_wait_ms=0 with an empty response even when data is
# there, so wait a little; reads never fetch at or past the end, so this rarely waits.
_FETCH_MAX_WAIT_MS = 200
_FETCH_VERSION = 12  # last version addressing topics by name
_READ_TIMEOUT_S = 30.0
# each empty answer already waited _FETCH_MAX_WAIT_MS: a bound, not a busy loop
_MAX_EMPTY_ANSWERS = 50


@dataclass(frozen=True, slots=True)
class KafkaConnection:
    """How to reach Kafka; the only place both client libraries' settings are derived."""

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    # any librdkafka key, passed through to the producer and admin clients as is
    extra: Mapping[str, Any] = field(default_factory=dict)

    def librdkafka(self) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
            # librdkafka's own log lines go through logging (JSON in containers, scrubbed)
            # instead of straight to stderr
            "logger": _LIBRDKAFKA_LOG,
        }
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username is not None:
            conf["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            conf["sasl.password"] = self.sasl_password
        if self.ssl_cafile:
            conf["ssl.ca.location"] = self.ssl_cafile
        conf.update(self.extra)
        return conf

    def kafka_python(self) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "security_protocol": self.security_protocol,
            "client_id": "zendesk-cdc-state-reader",
        }
        if self.sasl_mechanism:
            conf["sasl_mechanism"] = self.sasl_mechanism
        if self.sasl_username is not None:
            conf["sasl_plain_username"] = self.sasl_username
        if self.sasl_password is not None:
            conf["sasl_plain_password"] = self.sasl_password
        if self.ssl_cafile:
            conf["ssl_cafile"] = self.ssl_cafile
        return conf


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One committed record; `value` is None for a tombstone."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int

    def header(self, name: str) -> bytes | None:
        return next((v for k, v in self.headers if k == name), None)


class CommittedFilter:
    """PURE: the transaction bookkeeping of a log, fed batch by batch in offset order.

    Non-transactional records pass straight through; transactional ones wait for their
    producer's control marker. Records still held when the read ends belong to
    transactions not decided before the end offset and are dropped.
    """

    def __init__(self) -> None:
        self._pending: dict[int, list[LogRecord]] = {}

    def data(
        self, producer_id: int, transactional: bool, records: list[LogRecord]
    ) -> list[LogRecord]:
        if not transactional:
            return records
        self._pending.setdefault(producer_id, []).extend(records)
        return []

    def marker(self, producer_id: int, commit: bool) -> list[LogRecord]:
        held = self._pending.pop(producer_id, [])
        return held if commit else []

    @property
    def undecided(self) -> int:
        return sum(len(v) for v in self._pending.values())


class LogReader:
    """A kafka-python protocol client reading raw record batches; use as a context manager."""

    def __init__(self, conn: KafkaConnection, timeout_s: float = _READ_TIMEOUT_S) -> None:
        self._timeout_ms = int(timeout_s * 1000)
        try:
            # a fetch answer may exceed max_bytes by one whole batch (KIP-74)
            self._client = KafkaNetClient(
                **conn.kafka_python(), receive_message_max_bytes=8 * _FETCH_MAX_BYTES
            )
            # never create a topic by reading it (the manager does not pass this setting on)
            self._client.cluster.config["allow_auto_create_topics"] = False
            self._client.check_version(timeout_ms=self._timeout_ms)
        except kafka_errors.KafkaError as exc:
            raise KafkaError(f"cannot connect to {conn.bootstrap_servers}: {exc}") from exc

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> LogReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def partitions(self, topic: str) -> int:
        """Partition count of `topic` from fresh metadata (0 if it does not exist)."""
        self._refresh_metadata(topic)
        found = self._client.cluster.partitions_for_topic(topic)
        return len(found) if found else 0

    def _refresh_metadata(self, topic: str) -> None:
        cluster = self._client.cluster
        cluster.add_topic(topic)
        self._client.poll(timeout_ms=self._timeout_ms, future=cluster.request_update())

    def _leader(self, tp: TopicPartition) -> int:
        node = self._client.cluster.leader_for_partition(tp)
        if node is None or node < 0:
            self._refresh_metadata(tp.topic)
            node = self._client.cluster.leader_for_partition(tp)
        if node is None or node < 0:
            raise KafkaError(f"no leader for {tp.topic}[{tp.partition}]")
        return int(node)

    def _send(self, tp: TopicPartition, request: Any) -> Any:
        try:
            return self._client.send_and_receive(
                self._leader(tp), request, timeout_ms=self._timeout_ms
            )
        except kafka_errors.KafkaError as exc:
            raise KafkaError(f"reading {tp.topic}[{tp.partition}]: {exc}") from exc

    def earliest_offset(self, topic: str, partition: int) -> int:
        tp = TopicPartition(topic, partition)
        request = ListOffsetsRequest(
            replica_id=-1,
            isolation_level=0,
            topics=[
                ListOffsetsRequest.ListOffsetsTopic(
                    name=topic,
                    partitions=[
                        ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition(
                            partition_index=partition,
                            current_leader_epoch=-1,
                            timestamp=_EARLIEST,
                        )
                    ],
                )
            ],
            min_version=1,
        )
        part = self._send(tp, request).topics[0].partitions[0]
        _raise_for(part.error_code, tp)
        return int(part.offset)

    def _fetch(self, tp: TopicPartition, offset: int) -> Any:
        request = FetchRequest(
            replica_id=-1,
            max_wait_ms=_FETCH_MAX_WAIT_MS,
            min_bytes=1,
            max_bytes=_FETCH_MAX_BYTES,
            isolation_level=0,  # we decide about transactions ourselves, from the markers
            session_id=0,
            session_epoch=-1,  # no fetch session: a full, self-contained fetch
            topics=[
                FetchRequest.FetchTopic(
                    topic=tp.topic,
                    partitions=[
                        FetchRequest.FetchTopic.FetchPartition(
                            partition=tp.partition,
                            current_leader_epoch=-1,
                            fetch_offset=offset,
                            last_fetched_epoch=-1,
                            log_start_offset=-1,
                            partition_max_bytes=_FETCH_MAX_BYTES,
                        )
                    ],
                )
            ],
            forgotten_topics_data=[],
            rack_id="",
            min_version=4,  # v4 carries last_stable_offset
            max_version=_FETCH_VERSION,
        )
        response = self._send(tp, request)
        for topic in response.responses:
            for part in topic.partitions:
                if part.partition_index == tp.partition:
                    return part
        return None

    def read_committed(
        self, topic: str, partition: int, start_offset: int = 0
    ) -> Iterator[LogRecord]:
        """Committed and non-transactional records from `start_offset` to the current end.

        The end is the high watermark when the read starts, not the last stable offset:
        a transaction that committed after another producer's still-open one lies past
        that offset, and it is committed all the same (its marker says so). Records of
        transactions still open at the end are not returned, even if they commit while
        we read.
        """
        tp = TopicPartition(topic, partition)
        position = start_offset
        end: int | None = None
        decided = CommittedFilter()
        empty_answers = 0
        while end is None or position < end:
            part = self._fetch(tp, position)
            if part is None:
                if end is None:
                    # tansu can answer a fetch at the log end with no partition at all
                    return
                empty_answers += 1
                if empty_answers > _MAX_EMPTY_ANSWERS:
                    raise KafkaError(
                        f"{topic}[{partition}]: no data at offset {position} below the end "
                        f"{end} after {_MAX_EMPTY_ANSWERS} fetches"
                    )
                continue
            empty_answers = 0
            if part.error_code == kafka_errors.OffsetOutOfRangeError.errno:
                earliest = self.earliest_offset(topic, partition)
                if position >= earliest:
                    return  # at or past the end: nothing to read
                position = earliest  # compaction or retention removed the start
                continue
            _raise_for(part.error_code, tp)
            if end is None:
                end = int(part.high_watermark)
            records = MemoryRecords(part.records) if part.records else None
            advanced = position
            while records is not None:
                batch = records.next_batch()
                if batch is None:
                    break
                if batch.base_offset >= end:
                    advanced = end
                    break
                advanced = max(advanced, batch.next_offset)
                if batch.magic < 2:
                    yield from _records(batch, partition, start_offset, end)
                elif batch.is_control_batch:
                    control = next(iter(batch), None)
                    if control is not None:
                        for record in decided.marker(batch.producer_id, control.commit):
                            if record.offset >= start_offset:
                                yield record
                else:
                    found = list(_records(batch, partition, start_offset, end))
                    yield from decided.data(batch.producer_id, batch.is_transactional, found)
            if advanced == position:
                if position >= end:
                    break
                raise KafkaError(
                    f"no progress reading {topic}[{partition}] at offset {position} "
                    f"(end {end}): a record batch larger than {_FETCH_MAX_BYTES} bytes?"
                )
            position = advanced
        if decided.undecided:
            log.debug(
                "%s[%d]: %d records of undecided transactions left out",
                topic,
                partition,
                decided.undecided,
            )


def _records(batch: Any, partition: int, start: int, end: int) -> Iterator[LogRecord]:
    try:
        decoded = list(batch)
    except kafka_errors.UnsupportedCodecError as exc:
        # kafka-python decodes gzip itself; lz4, zstd and snappy need their packages
        raise KafkaError(f"cannot decompress a record batch: {exc}") from exc
    for record in decoded:
        if start <= record.offset < end:
            yield LogRecord(
                partition=partition,
                offset=int(record.offset),
                key=record.key,
                value=record.value,
                headers=tuple((k, v) for k, v in record.headers),
                timestamp_ms=int(record.timestamp),
            )


def _raise_for(error_code: int, tp: TopicPartition) -> None:
    if error_code:
        name = kafka_errors.for_code(error_code).__name__
        raise KafkaError(f"reading {tp.topic}[{tp.partition}]: broker error {name}")


def read_committed(
    conn: KafkaConnection, topic: str, partition: int, start_offset: int = 0
) -> Iterator[LogRecord]:
    """Committed records of one partition from `start_offset` to its current end."""
    with LogReader(conn) as reader:
        yield from reader.read_committed(topic, partition, start_offset)


def read_topic(conn: KafkaConnection, topic: str) -> list[LogRecord]:
    """Every committed record of a topic, partition by partition (tests' view of a topic)."""
    with LogReader(conn) as reader:
        return [
            record
            for partition in range(reader.partitions(topic))
            for record in reader.read_committed(topic, partition)
        ]
