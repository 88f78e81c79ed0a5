"""read_committed against a real broker: only committed transactions, from the log itself."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Producer

from producer.kafka_log import KafkaConnection, LogReader, read_committed, read_topic
from producer.topics import TopicSpec, ensure_topics

pytestmark = pytest.mark.kafka


@pytest.fixture
def conn(kafka_bootstrap: str) -> KafkaConnection:
    return KafkaConnection(kafka_bootstrap)


@pytest.fixture
def topic(conn: KafkaConnection, unique_name: Callable[[str], str]) -> str:
    name = unique_name("log")
    ensure_topics(conn, [TopicSpec(name, 2)])
    return name


@pytest.fixture
def producers(conn: KafkaConnection) -> Iterator[Callable[[str], Producer]]:
    made: list[Producer] = []

    def make(transactional_id: str) -> Producer:
        p = Producer({**conn.librdkafka(), "transactional.id": transactional_id,
                      "linger.ms": 0})
        p.init_transactions(10)
        made.append(p)
        return p

    yield make
    for p in made:
        p.purge()
        p.flush(0)


def txn(p: Producer, topic: str, items: list[tuple[bytes, bytes | None]], *,
        commit: bool | None, partition: int = 0, headers: Any = None) -> None:
    """One transaction; commit=None leaves it open (flushed, so it is in the log)."""
    p.begin_transaction()
    for key, value in items:
        p.produce(topic, key=key, value=value, partition=partition, headers=headers)
    p.flush(10)
    if commit is True:
        p.commit_transaction(10)
    elif commit is False:
        p.abort_transaction(10)


def kv(records: Any) -> list[tuple[bytes | None, bytes | None]]:
    return [(r.key, r.value) for r in records]


def test_committed_returned_aborted_and_open_left_out(
    conn: KafkaConnection, topic: str, producers: Callable[[str], Producer],
    unique_name: Callable[[str], str],
) -> None:
    p = producers(unique_name("tx"))
    txn(p, topic, [(b"a", b"1"), (b"b", b"2")], commit=True, headers=[("h", b"x")])
    txn(p, topic, [(b"c", b"aborted")], commit=False)
    txn(p, topic, [(b"d", b"4")], commit=True)
    txn(p, topic, [(b"e", b"open")], commit=None)

    records = list(read_committed(conn, topic, 0))

    assert kv(records) == [(b"a", b"1"), (b"b", b"2"), (b"d", b"4")]
    assert records[0].headers == (("h", b"x"),)
    assert records[0].header("h") == b"x"
    # offsets are the log's: two records, a commit marker, an aborted record and its marker
    assert [r.offset for r in records] == [0, 1, 5]

    p.commit_transaction(10)
    assert kv(read_committed(conn, topic, 0))[-1] == (b"e", b"open")


def test_tombstones_read_as_none_and_non_transactional_records_pass(
    conn: KafkaConnection, topic: str, producers: Callable[[str], Producer],
    unique_name: Callable[[str], str],
) -> None:
    plain = Producer({**conn.librdkafka(), "linger.ms": 0})
    plain.produce(topic, key=b"p", value=b"plain", partition=1)
    plain.flush(10)
    p = producers(unique_name("tx"))
    txn(p, topic, [(b"t", None)], commit=True, partition=1)

    assert kv(read_committed(conn, topic, 1)) == [(b"p", b"plain"), (b"t", None)]


def test_interleaved_producers_decided_each_by_its_own_marker(
    conn: KafkaConnection, topic: str, producers: Callable[[str], Producer],
    unique_name: Callable[[str], str],
) -> None:
    a, b = producers(unique_name("a")), producers(unique_name("b"))
    a.begin_transaction()
    b.begin_transaction()
    a.produce(topic, key=b"a1", value=b"x", partition=0)
    a.flush(10)
    b.produce(topic, key=b"b1", value=b"x", partition=0)
    b.flush(10)
    a.produce(topic, key=b"a2", value=b"x", partition=0)
    a.flush(10)
    b.abort_transaction(10)
    a.commit_transaction(10)

    assert kv(read_committed(conn, topic, 0)) == [(b"a1", b"x"), (b"a2", b"x")]


def test_open_transaction_of_a_crashed_producer_is_dropped_once_fenced(
    conn: KafkaConnection, topic: str, producers: Callable[[str], Producer],
    unique_name: Callable[[str], str],
) -> None:
    tid = unique_name("crash")
    script = textwrap.dedent(f"""
        import os, signal
        from confluent_kafka import Producer
        p = Producer({{"bootstrap.servers": {conn.bootstrap_servers!r},
                      "transactional.id": {tid!r}, "linger.ms": 0}})
        p.init_transactions(10)
        p.begin_transaction()
        p.produce({topic!r}, key=b"ghost", value=b"x", partition=0)
        p.flush(10)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", script], timeout=60, check=False)
    assert done.returncode == -9
    # while the transaction is open nothing past it is visible
    assert kv(read_committed(conn, topic, 0)) == []

    p = producers(tid)  # init_transactions aborts what the dead producer left open
    txn(p, topic, [(b"real", b"y")], commit=True)

    assert kv(read_committed(conn, topic, 0)) == [(b"real", b"y")]


def test_empty_topic_and_start_in_the_middle(
    conn: KafkaConnection, topic: str, producers: Callable[[str], Producer],
    unique_name: Callable[[str], str],
) -> None:
    assert list(read_committed(conn, topic, 0)) == []
    p = producers(unique_name("tx"))
    for i in range(5):
        txn(p, topic, [(f"k{i}".encode(), b"v")], commit=True)
    # each transaction is one record and one marker: k2 sits at offset 4
    assert kv(read_committed(conn, topic, 0, start_offset=4)) == [
        (b"k2", b"v"), (b"k3", b"v"), (b"k4", b"v")
    ]
    assert list(read_committed(conn, topic, 0, start_offset=10)) == []
    assert list(read_committed(conn, topic, 0, start_offset=99)) == []


def test_read_topic_covers_every_partition(
    conn: KafkaConnection, topic: str, producers: Callable[[str], Producer],
    unique_name: Callable[[str], str],
) -> None:
    p = producers(unique_name("tx"))
    txn(p, topic, [(b"x", b"0")], commit=True, partition=0)
    txn(p, topic, [(b"y", b"1")], commit=True, partition=1)
    records = read_topic(conn, topic)
    assert sorted((r.partition, r.key) for r in records) == [(0, b"x"), (1, b"y")]
    with LogReader(conn) as reader:
        assert reader.partitions(topic) == 2
        assert reader.partitions(topic + "-missing") == 0


def test_many_records_across_several_fetches(
    conn: KafkaConnection, topic: str, producers: Callable[[str], Producer],
    unique_name: Callable[[str], str],
) -> None:
    p = producers(unique_name("tx"))
    value = b"z" * 3000
    p.begin_transaction()
    for i in range(4000):  # ~12 MB: more than one 8 MiB fetch
        p.produce(topic, key=str(i).encode(), value=value, partition=0)
        if i % 500 == 0:
            p.poll(0)
    p.commit_transaction(30)
    keys = [r.key for r in read_committed(conn, topic, 0)]
    assert keys == [str(i).encode() for i in range(4000)]


def test_a_commit_behind_another_producers_open_transaction_is_read(
    conn: KafkaConnection, topic: str, producers: Callable[[str], Producer]
) -> None:
    # accounts sharing a checkpoint topic: X commits while Y's transaction, begun after
    # X's records, is still open. X's checkpoint is committed and must be found.
    x, y = producers("x"), producers("y")
    x.begin_transaction()
    x.produce(topic, key=b"X", value=b"x-checkpoint", partition=0)
    x.flush(10)
    y.begin_transaction()
    y.produce(topic, key=b"Y", value=b"y-open", partition=0)
    y.flush(10)
    x.commit_transaction(10)
    assert [(r.key, r.value) for r in read_committed(conn, topic, 0)] == [(b"X", b"x-checkpoint")]
    y.commit_transaction(10)
    assert [r.key for r in read_committed(conn, topic, 0)] == [b"X", b"Y"]
