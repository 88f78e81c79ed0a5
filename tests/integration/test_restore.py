"""restore against a real broker: the cursor and the store come back from Kafka alone."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import pytest

from producer.errors import KafkaTransactionError, StateError
from producer.kafka_log import KafkaConnection, read_topic
from producer.metrics import Metrics
from producer.model import ExportCursor, Version
from producer.restore import restore
from producer.sink import Checkpoint, SinkRecord, TransactionalSink, TransactionBatch
from producer.store import MemoryStore
from producer.topics import SinkTopics, TopicSpec, default_specs, ensure_topics

pytestmark = pytest.mark.kafka


@pytest.fixture
def conn(kafka_bootstrap: str) -> KafkaConnection:
    return KafkaConnection(kafka_bootstrap, extra={"message.max.bytes": 100_000})


@pytest.fixture
def topics(conn: KafkaConnection, unique_name: Callable[[str], str]) -> SinkTopics:
    topics = SinkTopics.for_records(unique_name("tickets"))
    ensure_topics(conn, default_specs(topics, changelog_partitions=3))
    return topics


@pytest.fixture
def make_sink(
    conn: KafkaConnection, topics: SinkTopics
) -> Iterator[Callable[[str], TransactionalSink]]:
    made: list[TransactionalSink] = []

    def make(account: str) -> TransactionalSink:
        sink = TransactionalSink(conn, topics, account, Metrics(), operation_timeout_s=10)
        sink.init()
        made.append(sink)
        return sink

    yield make
    for sink in made:
        sink.close()


def page(ids: range, ts: int) -> TransactionBatch:
    return TransactionBatch(
        records=[SinkRecord(str(i).encode(), b"r") for i in ids],
        dead_letters=[],
        store_changes={i: Version(ts, i ^ ts) for i in ids},
        cursor=ExportCursor(ts),
    )


def test_empty_store_is_rebuilt_from_the_changelog(
    conn: KafkaConnection, topics: SinkTopics, make_sink: Callable[[str], TransactionalSink]
) -> None:
    sink = make_sink("acme")
    positions: dict[int, int] = {}
    for ts, ids in ((100, range(0, 50)), (200, range(25, 75)), (300, range(70, 80))):
        for p, o in sink.commit(page(ids, ts)).items():
            positions[p] = max(o, positions.get(p, 0))

    store = MemoryStore()
    metrics = Metrics()
    state = restore(conn, topics, "acme", store, metrics)

    assert state.cursor == ExportCursor(300)
    assert state.checkpoint is not None
    assert state.checkpoint.sequence == 2
    assert state.replayed_entries == 50 + 50 + 10
    # the latest committed version of every ticket, whichever page it came from
    expected = {i: Version(ts, i ^ ts) for ts, ids in
                ((100, range(0, 50)), (200, range(25, 75)), (300, range(70, 80))) for i in ids}
    assert store.lookup(range(100)) == expected
    assert state.changelog_positions == store.changelog_positions() == positions
    assert metrics.registry.get_sample_value("zendesk_cdc_store_restored_entries_total") == 110

    # a producer resumed from that state continues the sequence and positions
    successor = make_sink("acme")
    successor.resume(state.checkpoint, state.changelog_positions)
    successor.commit(TransactionBatch([], [], {}, ExportCursor(400)))
    last = read_topic(conn, topics.offsets)[-1]
    checkpoint = Checkpoint.decode(last.value or b"")
    assert checkpoint.sequence == 3
    assert checkpoint.changelog_positions == positions


def test_stale_store_replays_only_what_it_missed(
    conn: KafkaConnection, topics: SinkTopics, make_sink: Callable[[str], TransactionalSink]
) -> None:
    sink = make_sink("acme")
    store = MemoryStore()
    store.apply(page(range(10), 100).store_changes, sink.commit(page(range(10), 100)))
    sink.commit(page(range(5, 15), 200))  # the store never applied this one (crash)

    state = restore(conn, topics, "acme", store)

    assert state.replayed_entries == 10
    assert state.cursor == ExportCursor(200)
    assert store.lookup(range(15)) == {
        **{i: Version(100, i ^ 100) for i in range(5)},
        **{i: Version(200, i ^ 200) for i in range(5, 15)},
    }
    # caught up: a second restore has nothing to do
    assert restore(conn, topics, "acme", store).replayed_entries == 0


def test_aborted_transactions_restore_nothing(
    conn: KafkaConnection, topics: SinkTopics, make_sink: Callable[[str], TransactionalSink]
) -> None:
    sink = make_sink("acme")
    sink.commit(page(range(3), 100))
    poisoned = page(range(3, 6), 200)
    poisoned = dataclasses.replace(
        poisoned, records=[*poisoned.records, SinkRecord(b"big", b"x" * 300_000)]
    )
    with pytest.raises(KafkaTransactionError):
        sink.commit(poisoned)

    store = MemoryStore()
    state = restore(conn, topics, "acme", store)

    assert state.cursor == ExportCursor(100)
    assert set(store.lookup(range(10))) == {0, 1, 2}


def test_accounts_sharing_topics_restore_only_their_own(
    conn: KafkaConnection, topics: SinkTopics, make_sink: Callable[[str], TransactionalSink]
) -> None:
    make_sink("a").commit(page(range(0, 4), 100))
    make_sink("b").commit(page(range(100, 104), 900))

    store_a = MemoryStore()
    state = restore(conn, topics, "a", store_a)
    assert state.cursor == ExportCursor(100)
    assert set(store_a.lookup(range(200))) == {0, 1, 2, 3}

    never = restore(conn, topics, "nobody", MemoryStore())
    assert never.cursor is None
    assert never.checkpoint is None


def test_accounts_with_the_same_ticket_ids_never_share_a_changelog_key(
    conn: KafkaConnection, topics: SinkTopics, make_sink: Callable[[str], TransactionalSink]
) -> None:
    # ticket ids are per account: under compaction, a shared key would drop one's entry
    make_sink("a").commit(page(range(0, 3), 100))
    make_sink("b").commit(page(range(0, 3), 900))
    keys = [r.key for r in read_topic(conn, topics.changelog)]
    assert len(keys) == len(set(keys)) == 6
    store_a, store_b = MemoryStore(), MemoryStore()
    restore(conn, topics, "a", store_a)
    restore(conn, topics, "b", store_b)
    assert {v.generated_timestamp for v in store_a.lookup(range(3)).values()} == {100}
    assert {v.generated_timestamp for v in store_b.lookup(range(3)).values()} == {900}


def test_checkpoint_beyond_the_changelog_is_refused(
    conn: KafkaConnection, topics: SinkTopics, make_sink: Callable[[str], TransactionalSink],
    unique_name: Callable[[str], str],
) -> None:
    make_sink("acme").commit(page(range(10), 100))
    # the changelog was lost (say, recreated empty) while the checkpoints survived
    recreated = dataclasses.replace(topics, changelog=unique_name("empty-changelog"))
    ensure_topics(conn, [TopicSpec(recreated.changelog, 3, 1, {"cleanup.policy": "compact"})])

    with pytest.raises(StateError, match="ends before the committed checkpoint"):
        restore(conn, recreated, "acme", MemoryStore())
