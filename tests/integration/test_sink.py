"""TransactionalSink against a real broker: all of a batch or none of it, zombies fenced."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from producer.broker import EmbeddedBroker
from producer.errors import KafkaTransactionError, ProducerFencedError, StoppedDuringCommitError
from producer.kafka_log import KafkaConnection, read_topic
from producer.metrics import Metrics
from producer.model import ExportCursor, ExportMode, Version
from producer.sink import (
    CHANGELOG_ACCOUNT_HEADER,
    Checkpoint,
    SinkRecord,
    TransactionalSink,
    TransactionBatch,
    decode_changelog,
)
from producer.topics import SinkTopics, default_specs, ensure_topics

pytestmark = pytest.mark.kafka

MAX_MESSAGE = 100_000


@pytest.fixture
def conn(kafka_bootstrap: str) -> KafkaConnection:
    # a small message.max.bytes lets a test provoke an abortable error on demand
    return KafkaConnection(kafka_bootstrap, extra={"message.max.bytes": MAX_MESSAGE})


@pytest.fixture
def topics(conn: KafkaConnection, unique_name: Callable[[str], str]) -> SinkTopics:
    topics = SinkTopics.for_records(unique_name("tickets"))
    ensure_topics(conn, default_specs(topics, records_partitions=2, changelog_partitions=2))
    return topics


@pytest.fixture
def make_sink(
    conn: KafkaConnection, topics: SinkTopics, unique_name: Callable[[str], str]
) -> Iterator[Callable[..., TransactionalSink]]:
    made: list[TransactionalSink] = []
    account = unique_name("acct")

    def make(metrics: Metrics | None = None) -> TransactionalSink:
        sink = TransactionalSink(conn, topics, account, metrics or Metrics(),
                                 transaction_timeout_ms=10_000, operation_timeout_s=10)
        sink.init()
        made.append(sink)
        return sink

    yield make
    for sink in made:
        sink.close()


def batch(n: int, start_time: int, *, tombstone: bool = False) -> TransactionBatch:
    records = [SinkRecord(str(i).encode(), f"v{i}".encode(), (("op", b"update"),))
               for i in range(n)]
    if tombstone:
        records.append(SinkRecord(b"0", None))
    return TransactionBatch(
        records=records,
        dead_letters=[SinkRecord(b"99", b'{"reason":"bad"}')],
        store_changes={i: Version(start_time, i * 7) for i in range(n)},
        cursor=ExportCursor(start_time, None, ExportMode.TIME),
        metadata={"page_tickets": n},
    )


def visible(conn: KafkaConnection, topics: SinkTopics) -> dict[str, int]:
    return {name: len(read_topic(conn, name))
            for name in (topics.records, topics.changelog, topics.offsets, topics.dlq)}


def test_committed_batch_is_visible_everywhere(
    conn: KafkaConnection, topics: SinkTopics, make_sink: Callable[..., TransactionalSink]
) -> None:
    metrics = Metrics()
    sink = make_sink(metrics)

    positions = sink.commit(batch(5, 1_700_000_000, tombstone=True))

    records = read_topic(conn, topics.records)
    assert sorted(((r.key, r.value) for r in records), key=repr) == sorted(
        [(str(i).encode(), f"v{i}".encode()) for i in range(5)] + [(b"0", None)], key=repr
    )
    assert all(r.header("op") == b"update" for r in records if r.value is not None)
    assert [r.value for r in read_topic(conn, topics.dlq)] == [b'{"reason":"bad"}']

    changelog = read_topic(conn, topics.changelog)
    entries = dict(decode_changelog(r.key, r.value) for r in changelog)
    assert entries == {i: Version(1_700_000_000, i * 7) for i in range(5)}
    assert {r.header(CHANGELOG_ACCOUNT_HEADER) for r in changelog} == {sink.account.encode()}
    # entries are partitioned by ticket id; positions say how far each partition reaches
    assert all(r.partition == decode_changelog(r.key, r.value)[0] % 2 for r in changelog)
    ends = {p: max(r.offset for r in changelog if r.partition == p) + 1 for p in (0, 1)}
    assert positions == ends

    (offsets,) = read_topic(conn, topics.offsets)
    assert offsets.key == sink.account.encode()
    assert offsets.value is not None
    checkpoint = Checkpoint.decode(offsets.value)
    assert checkpoint.cursor == ExportCursor(1_700_000_000)
    assert checkpoint.changelog_positions == positions
    assert checkpoint.sequence == 0
    assert checkpoint.metadata == {"page_tickets": 5}

    def sample(name: str, labels: dict[str, str] | None = None) -> float | None:
        return metrics.registry.get_sample_value(name, labels or {})

    assert sample("zendesk_cdc_transactions_total", {"outcome": "committed"}) == 1
    assert sample("zendesk_cdc_tombstones_published_total") == 1
    assert sample("zendesk_cdc_export_cursor_timestamp_seconds") == 1_700_000_000
    assert sample("zendesk_cdc_transaction_duration_seconds_count") == 1


def test_heartbeat_carries_positions_forward_and_sequence_grows(
    conn: KafkaConnection, topics: SinkTopics, make_sink: Callable[..., TransactionalSink]
) -> None:
    sink = make_sink()
    first = sink.commit(batch(3, 100))
    heartbeat = TransactionBatch([], [], {}, ExportCursor(200))
    assert sink.commit(heartbeat) == {}

    checkpoints = [Checkpoint.decode(r.value or b"") for r in read_topic(conn, topics.offsets)]
    assert [c.sequence for c in checkpoints] == [0, 1]
    assert checkpoints[-1].cursor.start_time == 200
    assert checkpoints[-1].changelog_positions == first


def test_abortable_error_aborts_everything_and_the_sink_goes_on(
    conn: KafkaConnection, topics: SinkTopics, make_sink: Callable[..., TransactionalSink]
) -> None:
    metrics = Metrics()
    sink = make_sink(metrics)
    poisoned = batch(3, 100)
    too_big = SinkRecord(b"big", b"x" * (MAX_MESSAGE * 2))
    poisoned = TransactionBatch([*poisoned.records, too_big], [], poisoned.store_changes,
                                poisoned.cursor)

    with pytest.raises(KafkaTransactionError):
        sink.commit(poisoned)

    assert visible(conn, topics) == {topics.records: 0, topics.changelog: 0,
                                     topics.offsets: 0, topics.dlq: 0}
    assert metrics.registry.get_sample_value(
        "zendesk_cdc_transactions_total", {"outcome": "aborted"}) == 1

    # the same producer redoes the page
    sink.commit(batch(3, 100))
    assert visible(conn, topics) == {topics.records: 3, topics.changelog: 3,
                                     topics.offsets: 1, topics.dlq: 1}


def test_zombie_is_fenced_by_a_new_producer(
    conn: KafkaConnection, topics: SinkTopics, make_sink: Callable[..., TransactionalSink]
) -> None:
    zombie = make_sink()
    zombie.commit(batch(1, 100))
    successor = make_sink()  # same account, same transactional.id

    with pytest.raises(ProducerFencedError, match=r"(?i)fenced"):
        zombie.commit(batch(2, 200))

    successor.commit(batch(1, 300))
    cursors = [Checkpoint.decode(r.value or b"").cursor.start_time
               for r in read_topic(conn, topics.offsets)]
    assert cursors == [100, 300]


def test_fencing_that_surfaces_while_flushing_is_reported_as_fencing(
    conn: KafkaConnection, topics: SinkTopics, make_sink: Callable[..., TransactionalSink]
) -> None:
    # the zombie's first transaction is fenced while it adds partitions, which
    # confluent-kafka reports from flush() as a SystemError wrapping the KafkaException
    zombie = make_sink()
    make_sink()  # a second instance with the same transactional.id
    with pytest.raises(ProducerFencedError):
        zombie.commit(batch(2, 200))
    assert visible(conn, topics)[topics.offsets] == 0


def test_producer_killed_mid_transaction_leaves_nothing_visible(
    conn: KafkaConnection, topics: SinkTopics, make_sink: Callable[..., TransactionalSink],
    unique_name: Callable[[str], str],
) -> None:
    account = unique_name("acct")
    # produce and flush everything, then die instead of committing
    script = textwrap.dedent(f"""
        import os, signal
        from producer.kafka_log import KafkaConnection
        from producer.metrics import Metrics
        from producer.model import ExportCursor, Version
        from producer.sink import SinkRecord, TransactionalSink, TransactionBatch
        from producer.topics import SinkTopics

        def die(producer):
            producer.flush(10)
            os.kill(os.getpid(), signal.SIGKILL)

        sink = TransactionalSink(KafkaConnection({conn.bootstrap_servers!r}),
                                 SinkTopics.for_records({topics.records!r}), {account!r},
                                 Metrics(), transaction_timeout_ms=10_000)
        sink.init()
        sink._commit = die
        sink.commit(TransactionBatch([SinkRecord(b"1", b"ghost")], [SinkRecord(b"2", b"x")],
                                     {{1: Version(5, 5)}}, ExportCursor(5)))
    """)
    done = subprocess.run([sys.executable, "-c", script], timeout=60, check=False)
    assert done.returncode == -9

    successor = TransactionalSink(conn, topics, account, Metrics())
    successor.init()
    try:
        assert visible(conn, topics) == {topics.records: 0, topics.changelog: 0,
                                         topics.offsets: 0, topics.dlq: 0}
        successor.commit(TransactionBatch([SinkRecord(b"1", b"real")], [], {1: Version(6, 6)},
                                          ExportCursor(6)))
        assert [r.value for r in read_topic(conn, topics.records)] == [b"real"]
    finally:
        successor.close()


def test_librdkafka_statistics_feed_queue_and_rtt_metrics(
    conn: KafkaConnection, topics: SinkTopics
) -> None:
    metrics = Metrics()
    sink = TransactionalSink(conn, topics, "stats", metrics)
    stats = {
        "msg_cnt": 42,
        "brokers": {
            "127.0.0.1:9092/1": {"nodeid": 1, "nodename": "127.0.0.1:9092",
                                 "rtt": {"avg": 2500}},
            "127.0.0.1:9092/bootstrap": {"nodeid": -1, "nodename": "127.0.0.1:9092",
                                         "rtt": {"avg": 99_000_000}},
        },
    }
    sink._on_stats(json.dumps(stats))
    sink._on_stats("not json")  # ignored, never raises into librdkafka

    assert metrics.registry.get_sample_value("zendesk_cdc_producer_queue_messages") == 42
    assert metrics.registry.get_sample_value(
        "zendesk_cdc_broker_rtt_seconds", {"broker": "127.0.0.1:9092"}) == pytest.approx(0.0025)


# --- stop requested while the broker does not answer --------------------------------------


@dataclass
class OwnBroker:
    broker: EmbeddedBroker
    conn: KafkaConnection
    topics: SinkTopics
    sink: TransactionalSink
    stop: threading.Event  # what SIGTERM sets in the service

    @contextlib.contextmanager
    def paused(self, seconds: float) -> Iterator[None]:
        """The broker frozen (SIGSTOP) for `seconds`: connections stay up, answers wait."""
        pid = self.broker.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        thaw = threading.Timer(seconds, os.kill, (pid, signal.SIGCONT))
        thaw.start()
        try:
            yield
        finally:
            thaw.cancel()
            os.kill(pid, signal.SIGCONT)

    def checkpoints(self) -> list[int]:
        return [Checkpoint.decode(r.value or b"").cursor.start_time
                for r in read_topic(self.conn, self.topics.offsets)]


@pytest.fixture
def own(unique_name: Callable[[str], str]) -> Iterator[OwnBroker]:
    """A sink given a stop event, on a broker of this test's own to stop or freeze; it has
    committed once, so it knows its coordinator and partitions."""
    with EmbeddedBroker() as broker:
        conn = KafkaConnection(broker.bootstrap_servers)
        topics = SinkTopics.for_records(unique_name("tickets"))
        ensure_topics(conn, default_specs(topics, records_partitions=2, changelog_partitions=2))
        stop = threading.Event()
        # the operation timeout and retries of the service: 10 s per wait, 40 s per commit
        sink = TransactionalSink(conn, topics, unique_name("acct"), Metrics(),
                                 transaction_timeout_ms=60_000, operation_timeout_s=10,
                                 stop=stop)
        sink.init()
        try:
            sink.commit(batch(2, 100))
            yield OwnBroker(broker, conn, topics, sink, stop)
        finally:
            sink.close()


def heartbeat(start_time: int) -> TransactionBatch:
    return TransactionBatch([], [], {}, ExportCursor(start_time))


@pytest.mark.parametrize(
    ("page", "waiting_in"),
    [(batch(3, 200), "delivering the changelog"), (heartbeat(200), "committing")],
    ids=["changelog-flush", "commit"],
)
def test_stop_gives_up_a_commit_the_broker_is_gone_for_within_seconds(
    own: OwnBroker, page: TransactionBatch, waiting_in: str
) -> None:
    own.broker.stop()
    sigterm = threading.Timer(0.5, own.stop.set)  # arrives while the commit waits
    sigterm.start()
    started = time.monotonic()
    with pytest.raises(StoppedDuringCommitError, match=waiting_in):
        own.sink.commit(page)
    took = time.monotonic() - started
    sigterm.join()
    # unbounded by the stop, these waits take 10 s (the flush) and 40 s (commit, 3 retries)
    assert took < 8, f"took {took:.1f} s"
    assert own.sink.next_sequence == 1  # not counted as committed
    closing = time.monotonic()
    own.sink.close()  # purges what is queued, waits for nothing
    assert time.monotonic() - closing < 1


def test_stop_gives_up_an_abort_the_broker_does_not_answer(own: OwnBroker) -> None:
    producer = own.sink._producer
    assert producer is not None
    producer.begin_transaction()
    producer.produce(own.topics.records, b"v", key=b"k")
    assert producer.flush(10) == 0  # its partition joined the transaction: aborting needs EndTxn
    with own.paused(30):
        sigterm = threading.Timer(0.5, own.stop.set)
        sigterm.start()
        started = time.monotonic()
        with pytest.raises(StoppedDuringCommitError, match="aborting"):
            own.sink._abort(producer)  # as commit() does after an abortable error
        took = time.monotonic() - started
        sigterm.join()
    assert took < 8, f"took {took:.1f} s"  # unbounded: 10 s, then a rewind


@pytest.mark.parametrize("stop_requested", [False, True], ids=["running", "stopping"])
def test_a_commit_the_broker_answers_late_is_resumed_and_lands_once(
    own: OwnBroker, stop_requested: bool, caplog: pytest.LogCaptureFixture
) -> None:
    if stop_requested:
        own.stop.set()  # a reachable broker's commit is still finished, within the grace
    with caplog.at_level(logging.WARNING, logger="zendesk_cdc.sink"), own.paused(1.0):
        # the waits time out in slices meanwhile; each call again resumes the same commit
        positions = own.sink.commit(batch(3, 200))
    assert own.checkpoints() == [100, 200]
    assert sum(positions.values()) > 0
    assert "retrying" not in caplog.text  # a slice running out is not a failed attempt
    assert own.sink.next_sequence == 2
