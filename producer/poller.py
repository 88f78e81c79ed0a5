"""The loop: fetch -> plan -> publish + commit -> advance, and what to do when a step fails.

Drains pages back to back while `end_of_stream` is false (the export client keeps to
the rate budget), then waits the poll interval. Every page is one Kafka transaction
holding its records, the store's changelog entries and the cursor; only after the
commit does the local store learn the changes and the cursor move. A stop request
during a commit that Kafka does not finish in time ends the drain with neither (the
sink raises StoppedDuringCommitError): the next start reads what Kafka holds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from producer.clock import Clock
from producer.errors import (
    KafkaError,
    KafkaFatalError,
    KafkaTransactionError,
    MalformedResponseError,
    ProducerFencedError,
    RetryableSchemaRegistryError,
    RetryableZendeskError,
    StoppedDuringCommitError,
)
from producer.health import Health
from producer.metrics import Metrics
from producer.model import ExportCursor, ExportPage
from producer.plan import Plan, plan_page
from producer.records import BatchBuilder
from producer.sink import TransactionBatch
from producer.store import Store

log = logging.getLogger("zendesk_cdc.poller")


class ExportSource(Protocol):
    def pages(self, cursor: ExportCursor) -> Iterator[ExportPage]: ...


class Sink(Protocol):
    def commit(self, batch: TransactionBatch) -> dict[int, int]: ...

    def recreate(self) -> None: ...


@dataclass
class Progress:
    """What the loop has done since it started; the demo and the terminal show it."""

    pages: int = 0
    tickets: int = 0
    transactions: int = 0
    aborted: int = 0
    published: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    dead_lettered: int = 0
    started: float = field(default_factory=time.monotonic)

    def add(self, plan: Plan, page: ExportPage, dead: int) -> None:
        self.pages += 1
        self.tickets += len(page.tickets)
        self.transactions += 1
        self.published.update(change.op.value for change in plan.changes)
        self.skipped.update(plan.skipped)
        self.dead_lettered += dead


@dataclass(frozen=True)
class PollerOptions:
    poll_interval: float
    tombstones: bool = True
    # After a failure that needs a wait (broker down, Zendesk 5xx past its retries).
    retry_wait: float = 5.0


class Poller:
    def __init__(
        self,
        *,
        export: ExportSource,
        store: Store,
        sink: Sink,
        builder: BatchBuilder,
        restore: Callable[[], ExportCursor],
        options: PollerOptions,
        clock: Clock,
        metrics: Metrics,
        health: Health,
        stop: threading.Event,
    ) -> None:
        self._export = export
        self._store = store
        self._sink = sink
        self._builder = builder
        self._restore = restore
        self._options = options
        self._clock = clock
        self._metrics = metrics
        self._health = health
        self._stop = stop
        self.progress = Progress()
        self.cursor: ExportCursor | None = None
        self._rewind_needed = False
        self.on_page: Callable[[Poller, ExportPage], None] | None = None

    # --- start-up --------------------------------------------------------------
    def start(self) -> None:
        """Load the committed cursor and catch the store up; then the service is ready."""
        self.cursor = self._restore()
        self._metrics.backfill_start.set(self.cursor.start_time)
        self._metrics.export_cursor.set(self.cursor.start_time)
        self._health.ready = True
        self._metrics.ready.set(1)
        log.info("ready", extra={"cursor": self.cursor.to_json()})

    # --- the loop --------------------------------------------------------------
    def run_forever(self) -> None:
        while not self._stop.is_set():
            self._beat()
            try:
                self.drain()
            except ProducerFencedError:
                raise  # another instance owns this account now: stop, do not fight it
            except (RetryableZendeskError, MalformedResponseError) as exc:
                log.warning("Zendesk not usable right now, retrying: %s", exc)
                self._wait(self._options.retry_wait)
                continue
            except KafkaError as exc:
                log.warning("Kafka not usable right now, retrying: %s", exc)
                self._wait(self._options.retry_wait)
                continue
            except RetryableSchemaRegistryError as exc:
                # nothing of the page was produced: the same page is redone after the wait
                log.warning("Schema Registry not usable right now, retrying: %s", exc)
                self._metrics.errors.labels("schema_registry").inc()
                self._wait(self._options.retry_wait)
                continue
            self._wait(self._options.poll_interval)

    def drain(self) -> int:
        """Read pages until end_of_stream (or stop); returns how many committed."""
        before = self.progress.pages
        try:
            self._drain()
        except StoppedDuringCommitError as exc:
            # a stop like any other: the store and cursor never learnt the page in flight
            log.warning("stopped before the transaction in flight finished: %s", exc)
        return self.progress.pages - before

    def _drain(self) -> None:
        assert self.cursor is not None, "start() first"
        if self._rewind_needed:
            if self._stop.is_set():
                return  # rewinding would wait on Kafka only to stop after it
            self._rewind()  # a failed rewind must not be followed by any commit
        committed = 0
        for page in self._export.pages(self.cursor):
            self._beat()
            self._commit_page(page)
            committed += 1
            if self.on_page is not None:
                self.on_page(self, page)
            if self._stop.is_set() or page.end_of_stream:
                break
        if not self._stop.is_set():
            if committed == 0:
                self._heartbeat()
            # everything Zendesk can export up to now is published: the honest "lag" is
            # the time since this moment, not since the cursor (a quiet account's cursor
            # rightly stands still)
            self._metrics.caught_up.set(self._clock.now())

    def _commit_page(self, page: ExportPage) -> None:
        aborts = 0
        while True:
            plan = plan_page(
                page, self._store.lookup(page.ticket_ids), tombstones=self._options.tombstones
            )
            batch = self._builder.build(plan, page)
            try:
                # records, store changes and the cursor commit together or not at all
                positions = self._commit(batch)
            except KafkaTransactionError as exc:
                # aborted cleanly: nothing of this page is visible; redo it
                log.warning("transaction aborted, redoing the page: %s", exc)
                self._metrics.errors.labels("kafka_abortable").inc()
                self.progress.aborted += 1
                # back off while Kafka keeps refusing (a broker outage), up to 30 s
                self._wait(min(0.5 * 2 ** min(aborts, 6), 30.0))
                aborts += 1
                if self._stop.is_set():
                    raise StoppedDuringCommitError(f"the page was aborted: {exc}") from exc
                continue
            self._store.apply(plan.store_updates, positions)
            self.cursor = plan.next_cursor
            self.progress.add(plan, page, len(batch.dead_letters))
            self._observe(plan, batch)
            return

    def _commit(self, batch: TransactionBatch) -> dict[int, int]:
        """Commit; after an unknown outcome, rewind to what Kafka holds, then re-raise."""
        try:
            return self._sink.commit(batch)
        except ProducerFencedError:
            raise
        except KafkaFatalError as exc:
            self._metrics.errors.labels("kafka_fatal").inc()
            # until a rewind succeeds nothing may commit: this process's cursor and store
            # may be behind what Kafka holds (the commit may have landed)
            self._rewind_needed = True
            if self._stop.is_set():
                # recreating the producer and reading Kafka would only hold up the stop:
                # the next start rewinds to what Kafka holds anyway
                raise StoppedDuringCommitError(f"producer unusable: {exc}") from exc
            log.error("producer unusable, recreating it and rewinding: %s", exc)
            self._rewind()
            raise

    def _rewind(self) -> None:
        self._sink.recreate()
        self.cursor = self._restore()
        self._rewind_needed = False

    def _heartbeat(self) -> None:
        """A quiet poll still commits the cursor, so 'last commit' stays fresh."""
        assert self.cursor is not None
        positions = self._commit(self._builder.heartbeat(self.cursor))
        self._store.apply({}, positions)
        self._metrics.last_commit.set(self._clock.now())

    def _observe(self, plan: Plan, batch: TransactionBatch) -> None:
        m = self._metrics
        for change in plan.changes:
            m.changes_published.labels(change.op.value).inc()
        for reason, count in plan.skipped.items():
            m.skipped.labels(reason).inc(count)
        m.dead_lettered.inc(len(batch.dead_letters))
        m.store_entries.set(self._store.entries())
        m.store_bytes.set(self._store.size_bytes())
        if self.cursor is not None:
            m.export_cursor.set(self.cursor.start_time)
        m.last_commit.set(self._clock.now())

    def _beat(self) -> None:
        self._health.beat()
        self._metrics.last_iteration.set(self._clock.now())

    def _wait(self, seconds: float) -> None:
        # Waiting on purpose is not being wedged: keep /livez fed while we wait.
        deadline = self._clock.now() + seconds
        while not self._stop.is_set() and (left := deadline - self._clock.now()) > 0:
            self._clock.sleep(min(left, 1.0), self._stop)
            self._beat()
