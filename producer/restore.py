"""Start-up state from Kafka: the last committed checkpoint, and the store caught up to it.

Run after the sink's `init()`: `init_transactions` fences a zombie and aborts what it
left open, so both reads below see the same, settled set of committed transactions.
A lost store (empty positions) is rebuilt from the start of the compacted changelog; a
stale one replays only what it has not applied. Both reads use `kafka_log`, which drops
aborted transactions itself instead of trusting the broker to.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from producer.errors import StateError
from producer.kafka_log import KafkaConnection, LogReader
from producer.metrics import Metrics
from producer.model import ExportCursor, Version
from producer.sink import Checkpoint, changelog_account, decode_changelog
from producer.store import Store
from producer.topics import SinkTopics

log = logging.getLogger("zendesk_cdc.restore")

APPLY_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class RestoredState:
    checkpoint: Checkpoint | None
    replayed_entries: int
    changelog_positions: dict[int, int]  # the store's positions after catching up

    @property
    def cursor(self) -> ExportCursor | None:
        return self.checkpoint.cursor if self.checkpoint else None


def read_checkpoint(reader: LogReader, topics: SinkTopics, account: str) -> Checkpoint | None:
    """The last committed checkpoint of `account` (None if it never committed)."""
    key = account.encode()
    last: bytes | None = None
    for record in reader.read_committed(topics.offsets, 0):
        if record.key == key:
            last = record.value  # a tombstone resets the account
    return Checkpoint.decode(last) if last is not None else None


def catch_up(
    reader: LogReader,
    topics: SinkTopics,
    account: str,
    store: Store,
    batch_size: int = APPLY_BATCH,
) -> int:
    """Apply committed changelog entries the store has not seen; returns how many were read."""
    positions = store.changelog_positions()
    owner = account.encode()
    replayed = 0
    for partition in range(reader.partitions(topics.changelog)):
        pending: dict[int, Version] = {}
        reached = positions.get(partition, 0)
        for record in reader.read_committed(topics.changelog, partition, reached):
            reached = record.offset + 1
            if record.value is None or changelog_account(record.key) != owner:
                continue  # compaction tombstone, or another account sharing the topic
            ticket_id, version = decode_changelog(record.key, record.value)
            pending[ticket_id] = version  # later entries of a ticket win, as in the log
            replayed += 1
            if len(pending) >= batch_size:
                store.apply(pending, {partition: reached})
                pending = {}
        if pending or reached > positions.get(partition, 0):
            store.apply(pending, {partition: reached})
    return replayed


def restore(
    conn: KafkaConnection,
    topics: SinkTopics,
    account: str,
    store: Store,
    metrics: Metrics | None = None,
) -> RestoredState:
    with LogReader(conn) as reader:
        checkpoint = read_checkpoint(reader, topics, account)
        replayed = catch_up(reader, topics, account, store)
    positions = store.changelog_positions()
    if checkpoint is not None:
        behind = {
            p: (positions.get(p, 0), o)
            for p, o in checkpoint.changelog_positions.items()
            if positions.get(p, 0) < o
        }
        if behind:
            # the checkpoint promises entries the changelog does not hold (topic recreated?)
            raise StateError(
                f"changelog {topics.changelog} ends before the committed checkpoint "
                f"(partition: (store, checkpoint) {behind}); refusing to resume"
            )
    if metrics is not None:
        metrics.store_restored.inc(replayed)
    log.info(
        "restored state: cursor=%s, %d changelog entries replayed",
        checkpoint.cursor.to_json() if checkpoint else None,
        replayed,
    )
    return RestoredState(checkpoint, replayed, positions)
