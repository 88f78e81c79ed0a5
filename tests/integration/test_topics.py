"""ensure_topics against a real broker: creates what is missing, checks what exists."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from producer.errors import TopicMismatchError
from producer.kafka_log import KafkaConnection, LogReader
from producer.topics import SinkTopics, TopicSpec, default_specs, ensure_topics

pytestmark = pytest.mark.kafka


@pytest.fixture
def conn(kafka_bootstrap: str) -> KafkaConnection:
    return KafkaConnection(kafka_bootstrap)


def create(conn: KafkaConnection, name: str, partitions: int, config: dict[str, str]) -> None:
    admin = AdminClient(conn.librdkafka())  # keep it alive until the futures resolve
    futures = admin.create_topics([NewTopic(name, partitions, 1, config=config)])
    for future in futures.values():
        future.result(10)


def test_creates_missing_topics_then_accepts_them(
    conn: KafkaConnection, unique_name: Callable[[str], str]
) -> None:
    topics = SinkTopics.for_records(unique_name("tickets"))
    specs = default_specs(topics, records_partitions=3, changelog_partitions=2)

    created = ensure_topics(conn, specs)

    assert sorted(created) == sorted(
        [topics.records, topics.changelog, topics.offsets, topics.dlq]
    )
    with LogReader(conn) as reader:
        assert reader.partitions(topics.records) == 3
        assert reader.partitions(topics.changelog) == 2
        assert reader.partitions(topics.offsets) == 1
    # a second start finds them as specified and creates nothing
    assert ensure_topics(conn, specs) == []


def test_changelog_that_is_not_compacted_is_refused(
    conn: KafkaConnection, unique_name: Callable[[str], str]
) -> None:
    topics = SinkTopics.for_records(unique_name("tickets"))
    create(conn, topics.changelog, 1, {"cleanup.policy": "delete"})

    with pytest.raises(TopicMismatchError, match=r"cleanup.policy=delete, expected compact"):
        ensure_topics(conn, default_specs(topics))


def test_offsets_topic_without_a_policy_counts_as_delete(
    conn: KafkaConnection, unique_name: Callable[[str], str]
) -> None:
    topics = SinkTopics.for_records(unique_name("tickets"))
    create(conn, topics.offsets, 1, {})

    with pytest.raises(TopicMismatchError, match=topics.offsets):
        ensure_topics(conn, default_specs(topics))


def test_wrong_partition_count_is_refused(
    conn: KafkaConnection, unique_name: Callable[[str], str]
) -> None:
    name = unique_name("records")
    create(conn, name, 2, {})

    with pytest.raises(TopicMismatchError, match=r"has 2 partitions.*expects 3"):
        ensure_topics(conn, [TopicSpec(name, 3)])


def test_missing_topic_without_creation_is_an_error(
    conn: KafkaConnection, unique_name: Callable[[str], str]
) -> None:
    name = unique_name("absent")
    with pytest.raises(TopicMismatchError, match="creation is disabled"):
        ensure_topics(conn, [TopicSpec(name, 1)], create_missing=False)
    with LogReader(conn) as reader:
        assert reader.partitions(name) == 0
