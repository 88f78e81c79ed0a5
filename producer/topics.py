"""The four topics of one records stream, and making sure they exist as we need them.

records       the Avro change records (delete policy; partitions configurable)
<records>.changelog  the compact store's entries, compacted: the store is rebuilt from it
<records>.offsets    the export checkpoint keyed by account, compacted, one partition
<records>.dlq        tickets that could not be encoded, with the reason and raw JSON

Missing topics are created; existing ones are checked, because a changelog or offsets
topic that is not compacted silently loses state once retention deletes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource
from confluent_kafka.admin._resource import ResourceType
from confluent_kafka.cimpl import NewTopic

from producer.errors import KafkaError, TopicMismatchError
from producer.kafka_log import KafkaConnection

COMPACT = {"cleanup.policy": "compact"}
_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int = 1
    config: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SinkTopics:
    """Names of the topics one transaction writes to."""

    records: str
    changelog: str
    offsets: str
    dlq: str

    @classmethod
    def for_records(cls, records: str) -> SinkTopics:
        return cls(records, f"{records}.changelog", f"{records}.offsets", f"{records}.dlq")


def default_specs(
    topics: SinkTopics,
    *,
    records_partitions: int = 3,
    changelog_partitions: int = 1,
    dlq_partitions: int = 1,
    replication_factor: int = 1,
    records_config: Mapping[str, str] | None = None,
) -> list[TopicSpec]:
    rf = replication_factor
    return [
        TopicSpec(
            topics.records,
            records_partitions,
            rf,
            {"cleanup.policy": "delete", **(records_config or {})},
        ),
        TopicSpec(topics.changelog, changelog_partitions, rf, COMPACT),
        # one partition: the checkpoint of an account is a single key, read at start-up
        TopicSpec(topics.offsets, 1, rf, COMPACT),
        TopicSpec(topics.dlq, dlq_partitions, rf, {"cleanup.policy": "delete"}),
    ]


def _admin(conn: KafkaConnection) -> AdminClient:
    return AdminClient(conn.librdkafka())


def _existing_partitions(admin: AdminClient, names: Iterable[str]) -> dict[str, int]:
    try:
        metadata = admin.list_topics(timeout=_TIMEOUT_S)
    except KafkaException as exc:
        raise KafkaError(f"cannot list topics: {exc}") from exc
    wanted = set(names)
    return {
        name: len(topic.partitions)
        for name, topic in metadata.topics.items()
        if name in wanted and topic.error is None
    }


def _cleanup_policies(admin: AdminClient, names: Iterable[str]) -> dict[str, str]:
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
    if not resources:
        return {}
    policies: dict[str, str] = {}
    try:
        for resource, future in admin.describe_configs(resources).items():
            entry = future.result(timeout=_TIMEOUT_S).get("cleanup.policy")
            # brokers may leave a default unset; Kafka's default is delete
            policies[resource.name] = entry.value if entry is not None and entry.value else "delete"
    except KafkaException as exc:
        raise KafkaError(f"cannot describe topic configs: {exc}") from exc
    return policies


def _policy_set(policy: str) -> frozenset[str]:
    return frozenset(p.strip() for p in policy.split(",") if p.strip())


def check_topic(spec: TopicSpec, partitions: int, cleanup_policy: str) -> None:
    """Raise TopicMismatchError if an existing topic differs from `spec` where it matters."""
    if partitions != spec.partitions:
        raise TopicMismatchError(
            f"topic {spec.name} has {partitions} partitions, the configuration expects "
            f"{spec.partitions}; change the setting or the topic (repartitioning moves keys)"
        )
    wanted = spec.config.get("cleanup.policy")
    if wanted is not None and _policy_set(cleanup_policy) != _policy_set(wanted):
        raise TopicMismatchError(
            f"topic {spec.name} has cleanup.policy={cleanup_policy}, expected {wanted}"
            + (": its state would be lost to retention" if "compact" in wanted else "")
        )


def ensure_topics(
    conn: KafkaConnection, specs: Iterable[TopicSpec], create_missing: bool = True
) -> list[str]:
    """Create missing topics and check existing ones; returns the names created."""
    specs = list(specs)
    admin = _admin(conn)
    try:
        existing = _existing_partitions(admin, (s.name for s in specs))
    except KafkaError as exc:
        raise KafkaError(f"Kafka at {conn.bootstrap_servers} is not usable: {exc}") from exc
    missing = [s for s in specs if s.name not in existing]
    if missing and not create_missing:
        names = ", ".join(s.name for s in missing)
        raise TopicMismatchError(f"topics missing and topic creation is disabled: {names}")
    created: list[str] = []
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(s.name, s.partitions, s.replication_factor, config=dict(s.config))
                for s in missing
            ],
            operation_timeout=_TIMEOUT_S,
        )
        for name, future in futures.items():
            try:
                future.result(timeout=_TIMEOUT_S)
                created.append(name)
            except KafkaException as exc:
                # another replica of this service may have created it meanwhile: check it
                if exc.args[0].code() != RdKafkaError.TOPIC_ALREADY_EXISTS:
                    raise KafkaError(f"cannot create topic {name}: {exc}") from exc
    to_check = [s for s in specs if s.name not in created]
    if to_check:
        existing = _existing_partitions(admin, (s.name for s in to_check))
        policies = _cleanup_policies(admin, (s.name for s in to_check))
        for spec in to_check:
            check_topic(spec, existing.get(spec.name, 0), policies.get(spec.name, "delete"))
    return created
