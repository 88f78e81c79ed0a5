"""The Kafka transaction: a page's records, dead letters, store changes and cursor, all or none.

One transactional, idempotent producer per Zendesk account (`transactional.id` stable per
account), so `init_transactions` fences a zombie pod and aborts whatever it left open.
Errors are sorted by what the caller does next: an abortable error is aborted here and
raised as KafkaTransactionError (redo the page); a fatal, fenced or unknown-outcome one is
KafkaFatalError (call `recreate()` and rewind to the committed state: librdkafka lacks
KIP-890, so a retried page after an unknown commit is only safe from Kafka's own state).
Given the stop event, every wait on Kafka ends soon after stop is requested: it raises
StoppedDuringCommitError rather than block shutdown through a broker outage.
"""

from __future__ import annotations

import contextlib
import json
import logging
import struct
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException, Message, Producer

from producer.clock import Clock, SystemClock
from producer.errors import (
    KafkaError,
    KafkaFatalError,
    KafkaTransactionError,
    ProducerFencedError,
    StateError,
    StoppedDuringCommitError,
)
from producer.kafka_log import KafkaConnection
from producer.metrics import Metrics
from producer.model import ExportCursor, Version
from producer.topics import SinkTopics

log = logging.getLogger("zendesk_cdc.sink")

Headers = tuple[tuple[str, bytes], ...]

# --- wire formats of the state topics --------------------------------------------------

# Key: ticket id, then the account. Ticket ids are per account, so two accounts sharing
# a compacted changelog must not share keys, or compaction drops one's entries.
_CHANGELOG_KEY = struct.Struct(">q")
_CHANGELOG_VALUE = struct.Struct(">qq")  # generated_timestamp, fingerprint
CHECKPOINT_FORMAT = 1
# lets a restore skip entries of other accounts should two share a changelog topic
CHANGELOG_ACCOUNT_HEADER = "account"


def encode_changelog_key(ticket_id: int, account: str) -> bytes:
    return _CHANGELOG_KEY.pack(ticket_id) + account.encode()


def encode_changelog_value(version: Version) -> bytes:
    return _CHANGELOG_VALUE.pack(version.generated_timestamp, version.fingerprint)


def changelog_account(key: bytes | None) -> bytes:
    """The account a changelog key belongs to (empty for a key of unexpected shape)."""
    return b"" if key is None else key[_CHANGELOG_KEY.size :]


def decode_changelog(key: bytes | None, value: bytes | None) -> tuple[int, Version]:
    if key is None or value is None or len(key) < 8 or len(value) != 16:
        raise StateError(f"changelog entry of unexpected shape: key={key!r} value={value!r}")
    (ticket_id,) = _CHANGELOG_KEY.unpack_from(key)
    generated_timestamp, fingerprint = _CHANGELOG_VALUE.unpack(value)
    return ticket_id, Version(generated_timestamp, fingerprint)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The committed progress of one account, the value of its key in the offsets topic.

    `changelog_positions` are the changelog's ends (partition -> next offset) including
    this transaction's entries, so a restore can prove the store caught up to the cursor.
    """

    account: str
    cursor: ExportCursor
    sequence: int
    committed_at: float
    changelog_positions: Mapping[int, int] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def encode(self) -> bytes:
        return json.dumps(
            {
                "format": CHECKPOINT_FORMAT,
                "account": self.account,
                "cursor": json.loads(self.cursor.to_json()),
                "sequence": self.sequence,
                "committed_at": self.committed_at,
                "changelog_positions": {str(p): o for p, o in self.changelog_positions.items()},
                "metadata": dict(self.metadata),
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, value: bytes) -> Checkpoint:
        try:
            data = json.loads(value)
            return cls(
                account=str(data["account"]),
                cursor=ExportCursor.from_json(json.dumps(data["cursor"])),
                sequence=int(data["sequence"]),
                committed_at=float(data["committed_at"]),
                changelog_positions={
                    int(p): int(o) for p, o in data.get("changelog_positions", {}).items()
                },
                metadata=dict(data.get("metadata", {})),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise StateError(f"unreadable checkpoint {value[:200]!r}: {exc}") from exc


# --- what one transaction holds --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SinkRecord:
    """A pre-serialized record; `value` None is a tombstone."""

    key: bytes | None
    value: bytes | None
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class TransactionBatch:
    records: Sequence[SinkRecord]
    dead_letters: Sequence[SinkRecord]
    store_changes: Mapping[int, Version]
    cursor: ExportCursor  # where the next export request starts once this commits
    metadata: Mapping[str, Any] = field(default_factory=dict)  # small, JSON-able


_ERROR_REPEAT_S = 60.0
# librdkafka's flush/commit/abort block in C, where neither the stop event nor a signal
# handler (which runs between bytecodes) gets a look in: wait in slices this long. A
# commit or abort cut short by its timeout is resumed by calling it again.
_WAIT_SLICE_S = 0.5
_MIN_SLICE_S = 0.01

# --- the producer ----------------------------------------------------------------------

_FENCED_CODES = frozenset(
    {
        RdKafkaError._FENCED,
        RdKafkaError.PRODUCER_FENCED,
        RdKafkaError.INVALID_PRODUCER_EPOCH,
        RdKafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    }
)


def _error_of(exc: KafkaException) -> RdKafkaError | None:
    err = exc.args[0] if exc.args else None
    return err if isinstance(err, RdKafkaError) else None


def _is_fatal(err: RdKafkaError | None) -> bool:
    return err is None or bool(err.fatal()) or err.code() in _FENCED_CODES


def _timed_out(err: RdKafkaError) -> bool:
    """The call's timeout ran out while the operation goes on in the background."""
    return err.code() == RdKafkaError._TIMED_OUT and bool(err.retriable())


class TransactionalSink:
    def __init__(
        self,
        conn: KafkaConnection,
        topics: SinkTopics,
        account: str,
        metrics: Metrics,
        *,
        transactional_id: str | None = None,
        transaction_timeout_ms: int = 60_000,
        operation_timeout_s: float = 30.0,
        commit_retries: int = 3,
        statistics_interval_ms: int = 15_000,
        clock: Clock | None = None,
        stop: threading.Event | None = None,
        stop_grace_s: float = 2.0,
    ) -> None:
        self.topics = topics
        self.account = account
        self.transactional_id = transactional_id or f"zendesk-cdc-{account}"
        self.next_sequence = 0
        self._conn = conn
        self._metrics = metrics
        self._transaction_timeout_ms = transaction_timeout_ms
        self._timeout = operation_timeout_s
        self._commit_retries = commit_retries
        self._statistics_interval_ms = statistics_interval_ms
        self._clock: Clock = clock or SystemClock()
        # once stop is requested, a transaction in flight has stop_grace_s more to finish
        # (plenty for a reachable broker), then it is left to the next start to settle
        self._stop = stop
        self._stop_grace = stop_grace_s
        self._stop_deadline: float | None = None
        self._producer: Producer | None = None
        self._changelog_partitions = 1
        self._positions: dict[int, int] = {}
        self._error_said: dict[str, float] = {}

    # -- lifecycle

    def _config(self) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "linger.ms": 5,
            "compression.type": "lz4",
            "client.id": f"zendesk-cdc-{self.account}",
        }
        conf.update(self._conn.librdkafka())  # user settings and pass-through keys
        conf.update(
            {
                # exactly-once is not negotiable: these win over pass-through keys
                "transactional.id": self.transactional_id,
                "enable.idempotence": True,
                "acks": "all",
                "transaction.timeout.ms": self._transaction_timeout_ms,
                "statistics.interval.ms": self._statistics_interval_ms,
                "stats_cb": self._on_stats,
                "error_cb": self._on_error,
            }
        )
        return conf

    def init(self) -> None:
        """Create the producer and fence any older one with this transactional.id."""
        producer = Producer(self._config())
        try:
            producer.init_transactions(self._timeout)
            metadata = producer.list_topics(self.topics.changelog, timeout=self._timeout)
        except KafkaException as exc:
            raise KafkaFatalError(f"cannot initialise transactions: {exc}") from exc
        topic = metadata.topics.get(self.topics.changelog)
        if topic is None or topic.error is not None or not topic.partitions:
            raise KafkaError(f"changelog topic {self.topics.changelog} is not available")
        self._changelog_partitions = len(topic.partitions)
        self._producer = producer
        log.info("transactional producer ready (transactional.id=%s)", self.transactional_id)

    def recreate(self) -> None:
        """Drop an unusable producer and start a new one (which fences the old)."""
        self._drop()
        self._metrics.producer_recreated.inc()
        self.init()

    def resume(self, checkpoint: Checkpoint | None, positions: Mapping[int, int]) -> None:
        """Continue the sequence and changelog positions from restored state."""
        self.next_sequence = checkpoint.sequence + 1 if checkpoint else 0
        self._positions = dict(positions)

    def close(self) -> None:
        self._drop()

    def _drop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            # whatever is still queued belongs to an unfinished transaction: discard it
            producer.purge()
            producer.flush(0)

    # -- one transaction

    def commit(self, batch: TransactionBatch) -> dict[int, int]:
        """Publish the batch in one transaction; returns changelog partition -> next offset."""
        producer = self._producer
        if producer is None:
            raise KafkaFatalError("sink not initialised: call init()")
        started = time.monotonic()
        self._stop_deadline = None
        failures: list[RdKafkaError] = []
        positions: dict[int, int] = {}

        def on_changelog(err: RdKafkaError | None, msg: Message) -> None:
            if err is not None:
                failures.append(err)
                return
            partition, offset = msg.partition(), msg.offset()
            if partition is not None and offset is not None and offset >= 0:
                positions[partition] = max(positions.get(partition, 0), offset + 1)

        def on_delivery(err: RdKafkaError | None, _msg: Message) -> None:
            if err is not None:
                failures.append(err)

        try:
            producer.begin_transaction()
        except KafkaException as exc:
            self._raise_if_fenced(_error_of(exc), exc)
            raise KafkaFatalError(f"cannot begin a transaction: {exc}") from exc
        try:
            for record in batch.records:
                self._produce(producer, self.topics.records, record, on_delivery)
            for record in batch.dead_letters:
                self._produce(producer, self.topics.dlq, record, on_delivery)
            owner = ((CHANGELOG_ACCOUNT_HEADER, self.account.encode()),)
            for ticket_id, version in batch.store_changes.items():
                entry = SinkRecord(
                    encode_changelog_key(ticket_id, self.account),
                    encode_changelog_value(version),
                    owner,
                )
                self._produce(
                    producer,
                    self.topics.changelog,
                    entry,
                    on_changelog,
                    partition=ticket_id % self._changelog_partitions,
                )
            if batch.store_changes:
                # the checkpoint names the changelog ends, so learn them before writing it
                if self._flush(producer) > 0:
                    raise KafkaTransactionError("changelog entries not delivered in time")
                self._raise_delivery_failures(failures)
            merged = {**self._positions}
            for partition, offset in positions.items():
                merged[partition] = max(offset, merged.get(partition, 0))
            checkpoint = Checkpoint(
                account=self.account,
                cursor=batch.cursor,
                sequence=self.next_sequence,
                committed_at=self._clock.now(),
                changelog_positions=merged,
                metadata=batch.metadata,
            )
            self._produce(
                producer,
                self.topics.offsets,
                SinkRecord(self.account.encode(), checkpoint.encode()),
                on_delivery,
                partition=0,
            )
            self._commit(producer)
        except KafkaTransactionError:
            self._abort(producer)
            raise
        except SystemError as exc:
            # confluent-kafka raises SystemError from flush()/poll() when a fatal error
            # (fencing, say) surfaces while a callback runs; the KafkaException is its cause
            if isinstance(exc.__cause__, KafkaException):
                self._fail(producer, exc.__cause__)
            raise KafkaFatalError(f"producer unusable: {exc}") from exc
        except KafkaException as exc:
            self._fail(producer, exc)

        with contextlib.suppress(SystemError, KafkaException):
            # serve remaining callbacks (statistics); the commit itself is done, and a
            # fatal error surfacing here shows up again on the next transaction
            producer.poll(0)
        self._positions = merged
        self.next_sequence += 1
        self._observe_commit(batch, time.monotonic() - started)
        return positions

    def _produce(
        self,
        producer: Producer,
        topic: str,
        record: SinkRecord,
        callback: Any,
        partition: int | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {"key": record.key, "value": record.value, "on_delivery": callback}
        if record.headers:
            kwargs["headers"] = list(record.headers)
        if partition is not None:
            kwargs["partition"] = partition
        while True:
            try:
                producer.produce(topic, **kwargs)
                return
            except BufferError:
                # local queue full: let deliveries drain, then go on
                self._check_stop("the local queue was full")
                producer.poll(0.05)

    # -- waiting on Kafka, a slice at a time

    def _check_stop(self, doing: str) -> None:
        """Raise StoppedDuringCommitError once this transaction has seen stop for the grace."""
        if self._stop is None or not self._stop.is_set():
            return
        now = time.monotonic()
        if self._stop_deadline is None:
            self._stop_deadline = now + self._stop_grace
        if now >= self._stop_deadline:
            raise StoppedDuringCommitError(
                f"stop requested while {doing}: the transaction's outcome is left to the "
                "next start, which reads the committed state from Kafka"
            )

    def _slice(self, deadline: float, doing: str) -> float:
        """Seconds the next blocking call may take on the way to `deadline`."""
        self._check_stop(doing)
        if self._stop_deadline is not None:
            deadline = min(deadline, self._stop_deadline)
        return max(_MIN_SLICE_S, min(deadline - time.monotonic(), _WAIT_SLICE_S))

    def _flush(self, producer: Producer) -> int:
        """flush() within the operation timeout; returns how many messages are undelivered."""
        deadline = time.monotonic() + self._timeout
        while True:
            remaining: int = producer.flush(self._slice(deadline, "delivering the changelog"))
            if remaining == 0 or time.monotonic() >= deadline:
                return remaining

    def _fail(self, producer: Producer, exc: KafkaException) -> NoReturn:
        """Raise what a failed transaction means for the caller (abort first if it may)."""
        err = _error_of(exc)
        self._raise_if_fenced(err, exc)
        if _is_fatal(err):
            raise KafkaFatalError(f"producer unusable: {exc}") from exc
        self._abort(producer)
        raise KafkaTransactionError(f"transaction aborted: {exc}") from exc

    def _raise_if_fenced(self, err: RdKafkaError | None, exc: Exception) -> None:
        if err is not None and err.code() in _FENCED_CODES:
            raise ProducerFencedError(
                f"another instance took over transactional.id {self.transactional_id}: {exc}"
            ) from exc

    def _raise_delivery_failures(self, failures: list[RdKafkaError]) -> None:
        if not failures:
            return
        first = failures[0]
        if any(err.code() in _FENCED_CODES for err in failures):
            raise ProducerFencedError(
                f"another instance took over transactional.id {self.transactional_id}: {first}"
            )
        if any(_is_fatal(err) for err in failures):
            raise KafkaFatalError(f"delivery failed fatally: {first}")
        raise KafkaTransactionError(f"{len(failures)} deliveries failed, first: {first}")

    def _commit(self, producer: Producer) -> None:
        attempt = 0
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                producer.commit_transaction(self._slice(deadline, "committing"))
                return
            except KafkaException as exc:
                err = _error_of(exc)
                if _is_fatal(err) or err is None:
                    raise
                if err.txn_requires_abort():
                    raise KafkaTransactionError(f"commit needs abort: {exc}") from exc
                if _timed_out(err) and time.monotonic() < deadline:
                    continue  # only the slice ran out: the call resumes the same commit
                if err.retriable() and attempt < self._commit_retries:
                    attempt += 1
                    deadline = time.monotonic() + self._timeout
                    log.warning(
                        "commit failed (%s), retrying %d/%d", err, attempt, self._commit_retries
                    )
                    continue
                # the broker may or may not have committed: only Kafka's state can tell
                raise KafkaFatalError(f"commit of unknown outcome: {exc}") from exc

    def _abort(self, producer: Producer) -> None:
        self._metrics.transactions.labels("aborted").inc()
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                producer.abort_transaction(self._slice(deadline, "aborting"))
                return
            except KafkaException as exc:
                err = _error_of(exc)
                if err is not None and _timed_out(err) and time.monotonic() < deadline:
                    continue  # only the slice ran out: the call resumes the same abort
                raise KafkaFatalError(f"abort failed: {exc}") from exc

    def _observe_commit(self, batch: TransactionBatch, seconds: float) -> None:
        m = self._metrics
        m.transactions.labels("committed").inc()
        m.transaction_duration.observe(seconds)
        m.last_commit.set(self._clock.now())
        m.export_cursor.set(batch.cursor.start_time)
        m.tombstones.inc(sum(1 for r in batch.records if r.value is None))

    # -- librdkafka callbacks (called from poll/flush on the caller's thread)

    def _on_stats(self, raw: str) -> None:
        try:
            stats = json.loads(raw)
            self._metrics.producer_queue.set(stats.get("msg_cnt", 0))
            for broker in stats.get("brokers", {}).values():
                if broker.get("nodeid", -1) < 0:
                    continue  # bootstrap placeholders carry no real round trips
                rtt = broker.get("rtt", {}).get("avg", 0)
                self._metrics.broker_rtt.labels(broker.get("nodename", "?")).set(rtt / 1e6)
        except (ValueError, AttributeError, TypeError):
            log.debug("unreadable librdkafka statistics ignored")

    def _on_error(self, err: RdKafkaError) -> None:
        # connection trouble is retried by librdkafka (several times a second during an
        # outage); fatal errors surface in calls. Say each distinct error once a minute.
        text, now = str(err), time.monotonic()
        if now - self._error_said.get(text, -_ERROR_REPEAT_S) >= _ERROR_REPEAT_S:
            self._error_said[text] = now
            log.warning("kafka client: %s", text)
