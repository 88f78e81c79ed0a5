"""The loop's decisions, with faithful fakes for Zendesk and Kafka (the real ones are in
tests/integration): what commits, what is redone, what rewinds, what waits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from producer.clock import ScaledClock
from producer.codec import RecordDecoder, SingleObjectSerializer
from producer.errors import (
    KafkaError,
    KafkaFatalError,
    KafkaTransactionError,
    ProducerFencedError,
    RetryableZendeskError,
    StoppedDuringCommitError,
)
from producer.health import Health
from producer.metrics import Metrics
from producer.model import ExportCursor, ExportPage, RawTicket
from producer.poller import Poller, PollerOptions
from producer.records import BatchBuilder
from producer.sink import TransactionBatch
from producer.store import MemoryStore

T0 = 1_700_000_000


def ticket(ticket_id: int, ts: int, subject: str = "hello") -> RawTicket:
    return {"id": ticket_id, "subject": subject, "status": "open", "generated_timestamp": ts}


def page(start: int, tickets: list[RawTicket], end_of_stream: bool) -> ExportPage:
    end = max((int(t["generated_timestamp"]) for t in tickets), default=start)
    return ExportPage(
        tuple(tickets), ExportCursor(start), ExportCursor(end), end_of_stream, fetched_at=T0
    )


@dataclass
class FakeExport:
    """Serves pages by start cursor, like the export does; can fail once per script."""

    by_start: dict[int, ExportPage]
    fail_next: list[Exception] = field(default_factory=list)
    requested: list[int] = field(default_factory=list)

    def pages(self, cursor: ExportCursor) -> Iterator[ExportPage]:
        start = cursor.start_time
        while start in self.by_start:
            self.requested.append(start)
            if self.fail_next:
                raise self.fail_next.pop(0)
            p = self.by_start[start]
            yield p
            if p.end_of_stream:
                return
            start = p.next_cursor.start_time


@dataclass
class FakeSink:
    """Kafka as the poller sees it: a commit either lands whole or raises."""

    committed: list[TransactionBatch] = field(default_factory=list)
    fail_next: list[Exception] = field(default_factory=list)
    # the commit lands in Kafka but the answer is lost (a timeout): "unknown outcome"
    land_then_fail: list[Exception] = field(default_factory=list)
    # runs as the commit starts waiting on Kafka (a SIGTERM arriving then, say)
    while_committing: Callable[[], None] | None = None
    recreated: int = 0

    def commit(self, batch: TransactionBatch) -> dict[int, int]:
        if self.while_committing is not None:
            self.while_committing()
        if self.fail_next:
            raise self.fail_next.pop(0)
        self.committed.append(batch)
        if self.land_then_fail:
            raise self.land_then_fail.pop(0)
        return {0: len(self.committed)}

    def recreate(self) -> None:
        self.recreated += 1

    @property
    def cursor(self) -> ExportCursor | None:
        return self.committed[-1].cursor if self.committed else None


@dataclass
class Rig:
    poller: Poller
    export: FakeExport
    sink: FakeSink
    store: MemoryStore
    metrics: Metrics
    restores: list[ExportCursor]
    restore_failures: list[Exception]


@pytest.fixture
def rig() -> Rig:
    export = FakeExport({
        T0: page(T0, [ticket(1, T0 + 1), ticket(2, T0 + 2)], end_of_stream=False),
        T0 + 2: page(T0 + 2, [ticket(2, T0 + 2), ticket(3, T0 + 3)], end_of_stream=True),
    })  # fmt: skip
    sink, store, metrics = FakeSink(), MemoryStore(), Metrics()
    clock = ScaledClock(start=T0 + 3600, speed=10_000)  # waits pass in a blink
    restores: list[ExportCursor] = []
    restore_failures: list[Exception] = []

    def restore() -> ExportCursor:
        if restore_failures:
            raise restore_failures.pop(0)
        # what Kafka holds as committed: the last committed cursor, else the first start
        cursor = sink.cursor or ExportCursor(T0)
        restores.append(cursor)
        return cursor

    poller = Poller(
        export=export, store=store, sink=sink,
        builder=BatchBuilder("acme", SingleObjectSerializer(), clock),
        restore=restore, options=PollerOptions(poll_interval=60, retry_wait=5),
        clock=clock, metrics=metrics, health=Health(clock, 300), stop=threading.Event(),
    )  # fmt: skip
    poller.start()
    return Rig(poller, export, sink, store, metrics, restores, restore_failures)


def published_ids(sink: FakeSink) -> list[int]:
    decoder = RecordDecoder()
    return [
        int(decoder.decode(r.value).value["ticket"]["id"])
        for b in sink.committed
        for r in b.records
        if r.value is not None
    ]


def test_each_page_commits_once_then_the_store_and_cursor_move(rig: Rig) -> None:
    assert rig.poller.drain() == 2
    assert published_ids(rig.sink) == [1, 2, 3]  # the boundary repeat of 2 is skipped
    assert [b.cursor for b in rig.sink.committed] == [ExportCursor(T0 + 2), ExportCursor(T0 + 3)]
    assert rig.poller.cursor == ExportCursor(T0 + 3)
    assert set(rig.store.lookup([1, 2, 3])) == {1, 2, 3}
    assert rig.store.changelog_positions() == {0: 2}
    assert rig.poller.progress.skipped["duplicate"] == 1
    assert rig.metrics.caught_up._value.get() > 0


def test_an_aborted_transaction_is_redone_and_lands_once(rig: Rig) -> None:
    rig.sink.fail_next = [KafkaTransactionError("abortable")]
    rig.poller.drain()
    assert published_ids(rig.sink) == [1, 2, 3]
    assert rig.poller.progress.aborted == 1
    assert rig.metrics.errors.labels("kafka_abortable")._value.get() == 1


@pytest.mark.parametrize("landed", [False, True])
def test_a_commit_of_unknown_outcome_recreates_the_producer_and_rewinds(
    rig: Rig, landed: bool
) -> None:
    rig.poller.drain()  # both pages committed
    rig.export.by_start[T0 + 3] = page(T0 + 3, [ticket(4, T0 + 4)], end_of_stream=True)
    failure = KafkaFatalError("commit timed out")
    if landed:
        rig.sink.land_then_fail = [failure]
    else:
        rig.sink.fail_next = [failure]
    with pytest.raises(KafkaFatalError):
        rig.poller.drain()
    assert rig.sink.recreated == 1
    # rewound to what Kafka holds, whichever way the commit went, not to what this
    # process believed
    expected = ExportCursor(T0 + 4) if landed else ExportCursor(T0 + 3)
    assert rig.restores[-1] == expected
    assert rig.poller.cursor == expected
    rig.poller.drain()
    assert published_ids(rig.sink) == [1, 2, 3, 4]  # ticket 4 once, either way


def test_a_quiet_poll_commits_a_heartbeat_with_the_same_cursor(rig: Rig) -> None:
    rig.poller.drain()
    before = len(rig.sink.committed)
    assert rig.poller.drain() == 0  # nothing new: no page from T0 + 3
    heartbeat = rig.sink.committed[before]
    assert heartbeat.records == ()
    assert heartbeat.cursor == ExportCursor(T0 + 3)
    assert heartbeat.metadata == {"heartbeat": True}


def test_zendesk_trouble_waits_and_retries_without_losing_the_cursor(rig: Rig) -> None:
    rig.export.fail_next = [RetryableZendeskError("503 past its retries")]
    stop = rig.poller._stop  # the test stops the loop from outside

    def stop_when_done() -> None:
        while len(rig.sink.committed) < 2:
            threading.Event().wait(0.01)
        stop.set()

    watcher = threading.Thread(target=stop_when_done)
    watcher.start()
    rig.poller.run_forever()
    watcher.join(timeout=5)
    assert published_ids(rig.sink) == [1, 2, 3]
    assert rig.export.requested[:2] == [T0, T0]  # the same page again, after the wait
    assert rig.metrics.last_iteration._value.get() > 0


def test_a_rewind_that_fails_blocks_every_commit_until_it_succeeds(rig: Rig) -> None:
    rig.poller.drain()
    rig.export.by_start[T0 + 3] = page(T0 + 3, [ticket(4, T0 + 4)], end_of_stream=True)
    rig.sink.land_then_fail = [KafkaFatalError("commit timed out")]  # it did land
    rig.restore_failures.append(KafkaError("not leader for partition"))  # the rewind fails
    with pytest.raises(KafkaError, match="not leader"):
        rig.poller.drain()
    # the next drain rewinds first: ticket 4 is not committed a second time
    rig.poller.drain()
    assert published_ids(rig.sink) == [1, 2, 3, 4]
    assert rig.restores[-1] == ExportCursor(T0 + 4)


def test_a_heartbeat_of_unknown_outcome_rewinds_too(rig: Rig) -> None:
    rig.poller.drain()
    rig.sink.fail_next = [KafkaFatalError("commit timed out")]
    with pytest.raises(KafkaFatalError):
        rig.poller.drain()  # nothing new: a heartbeat, which fails
    assert rig.sink.recreated == 1
    assert rig.poller.cursor == ExportCursor(T0 + 3)


def test_a_fenced_producer_stops_the_loop_instead_of_fencing_back(rig: Rig) -> None:
    rig.export.by_start[T0] = page(T0, [ticket(9, T0 + 9)], end_of_stream=True)
    rig.sink.fail_next = [ProducerFencedError("another instance took over")]
    with pytest.raises(ProducerFencedError):
        rig.poller.run_forever()
    assert rig.sink.recreated == 0
    assert rig.sink.committed == []


# --- stop requested while a commit waits on Kafka -----------------------------------------


@dataclass(frozen=True)
class Before:
    """What the poller knew before the commit the stop interrupted."""

    cursor: ExportCursor | None
    store: dict[int, object]
    positions: dict[int, int]
    restores: int
    pages: int

    @classmethod
    def of(cls, rig: Rig) -> Before:
        return cls(
            rig.poller.cursor,
            dict(rig.store.lookup(range(1, 10))),
            dict(rig.store.changelog_positions()),
            len(rig.restores),
            rig.poller.progress.pages,
        )


def sigterm_during_the_next_commit(rig: Rig, *failures: Exception) -> None:
    """The stop event is set while the next commit waits, which then fails with `failures`."""
    rig.sink.while_committing = rig.poller._stop.set
    rig.sink.fail_next = list(failures)


def assert_nothing_learnt(rig: Rig, before: Before) -> None:
    # nothing is known to be committed: no store change, no cursor move, no rewind
    assert rig.poller.cursor == before.cursor
    assert dict(rig.store.lookup(range(1, 10))) == before.store
    assert rig.store.changelog_positions() == before.positions
    assert rig.sink.recreated == 0
    assert len(rig.restores) == before.restores
    assert rig.poller.progress.pages == before.pages


def test_stopped_during_a_commit_the_page_reaches_neither_store_nor_cursor(rig: Rig) -> None:
    before = Before.of(rig)
    sigterm_during_the_next_commit(rig, StoppedDuringCommitError("stop requested while committing"))
    assert rig.poller.drain() == 0  # a stop, not a failure: drain returns
    assert_nothing_learnt(rig, before)
    assert rig.sink.committed == []
    assert rig.poller._rewind_needed is False  # nothing failed: the next start just restores


def test_stopped_during_a_heartbeat_neither_rewinds_nor_moves_anything(rig: Rig) -> None:
    rig.poller.drain()
    before = Before.of(rig)
    sigterm_during_the_next_commit(rig, StoppedDuringCommitError("stop requested while committing"))
    assert rig.poller.drain() == 0  # nothing new: a heartbeat, which the stop cuts short
    assert_nothing_learnt(rig, before)
    assert rig.metrics.errors.labels("kafka_fatal")._value.get() == 0


def test_an_unknown_outcome_while_stopping_skips_the_rewind_but_blocks_commits(rig: Rig) -> None:
    rig.poller.drain()
    rig.export.by_start[T0 + 3] = page(T0 + 3, [ticket(4, T0 + 4)], end_of_stream=True)
    before = Before.of(rig)
    # the commit lands but its answer is lost, as the stop arrives
    rig.sink.while_committing = rig.poller._stop.set
    rig.sink.land_then_fail = [KafkaFatalError("commit timed out")]
    assert rig.poller.drain() == 0
    # recreating the producer and reading Kafka would only hold up the exit
    assert_nothing_learnt(rig, before)
    assert rig.metrics.errors.labels("kafka_fatal")._value.get() == 1
    # should this poller be asked again, still stopping, it commits nothing before a rewind
    committed = len(rig.sink.committed)
    assert rig.poller.drain() == 0
    assert len(rig.sink.committed) == committed
    assert rig.sink.recreated == 0
    # once not stopping, the rewind comes first: ticket 4, which did land, is not redone
    rig.poller._stop.clear()
    rig.poller.drain()
    assert rig.sink.recreated == 1
    assert published_ids(rig.sink) == [1, 2, 3, 4]
    assert rig.poller.cursor == ExportCursor(T0 + 4)


def test_an_abort_while_stopping_ends_the_drain_without_redoing_the_page(rig: Rig) -> None:
    before = Before.of(rig)
    sigterm_during_the_next_commit(rig, KafkaTransactionError("changelog entries not delivered"))
    started = time.monotonic()
    assert rig.poller.drain() == 0  # no exception: `run --once` exits 0 on SIGTERM too
    assert time.monotonic() - started < 1
    assert_nothing_learnt(rig, before)
    assert rig.poller.progress.aborted == 1
    assert rig.export.requested == [T0]  # the page was not redone
    assert rig.sink.committed == []


def test_run_forever_ends_normally_when_stopped_during_a_commit(rig: Rig) -> None:
    before = Before.of(rig)
    sigterm_during_the_next_commit(rig, StoppedDuringCommitError("stop requested while committing"))
    finished = threading.Event()

    def loop() -> None:
        rig.poller.run_forever()  # an exception here fails the test (warnings are errors)
        finished.set()

    runner = threading.Thread(target=loop)
    runner.start()
    runner.join(timeout=5)
    assert finished.is_set()
    assert_nothing_learnt(rig, before)
