"""Support for the pipeline acceptance tests: running the service, auditing the topic.

Also a subprocess entry point, `python -m tests.integration.pipeline_support run ...`:
the real `zendesk-cdc` CLI, plus one test-only hook read from the environment,
PIPELINE_KILL_AT=<point>:<k>, which SIGKILLs the process at the k-th transaction:
  before  on entering TransactionalSink.commit: nothing of the page produced yet
  during  records produced and flushed to the broker, transaction still open
  after   the transaction committed on Kafka; store and cursor not yet advanced locally
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from producer.clock import Clock
from producer.codec import RecordDecoder, ticket_from_avro
from producer.config import ENV_PREFIX, Settings, load_settings
from producer.kafka_log import LogRecord, read_topic
from producer.metrics import Metrics
from producer.model import ExportCursor
from producer.poller import Progress
from producer.service import build_service, kafka_connection
from producer.simulator import DEFAULT_EMAIL, DEFAULT_TOKEN, Observed
from producer.simulator.truth import ContentChange, GroundTruth
from producer.sink import Checkpoint, TransactionalSink

KILL_ENV = "PIPELINE_KILL_AT"
KILL_POINTS = ("before", "during", "after")


# --- settings and in-process runs ------------------------------------------------------


def pipeline_settings(
    base_url: str, bootstrap: str, state_dir: Path, name: str, **overrides: Any
) -> Settings:
    """Settings of one test's pipeline: its own topics, account and transactional.id."""
    values: dict[str, Any] = {
        "zendesk_url": base_url,
        "zendesk_email": DEFAULT_EMAIL,
        "zendesk_api_token": DEFAULT_TOKEN,
        "zendesk_account": name,
        "bootstrap_servers": bootstrap,
        "topic": name,
        "state_dir": state_dir,
        "per_page": 200,
        "http_address": "",
        "log_format": "text",
        "log_level": "WARNING",
    }
    values.update(overrides)
    return load_settings(**values)


@dataclass(frozen=True)
class RunResult:
    progress: Progress
    start_cursor: ExportCursor | None  # where restore put the export
    cursor: ExportCursor | None  # where the run left the export
    store_entries: int  # tickets the local store knows at the end


def run_pipeline(settings: Settings, clock: Clock, *, drains: int = 1) -> RunResult:
    """Build the service, restore, drain to the end of the stream `drains` times, close."""
    with build_service(settings, stop=threading.Event(), clock=clock, metrics=Metrics()) as svc:
        svc.poller.start()
        start = svc.poller.cursor
        for _ in range(drains):
            svc.poller.drain()
        return RunResult(svc.poller.progress, start, svc.poller.cursor, svc.store.entries())


def settings_env(settings: Settings) -> dict[str, str]:
    """The explicitly set settings as ZENDESK_CDC_* variables, for a service subprocess."""
    env: dict[str, str] = {}
    for name in sorted(settings.model_fields_set):
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, Enum):
            value = value.value
        env[f"{ENV_PREFIX}{name.upper()}"] = str(value)
    return env


# --- what is on the topics -------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    """The committed content of a records topic, decoded."""

    records: list[LogRecord]  # in partition, offset order
    values: list[dict[str, Any] | None]  # decoded envelope per record; None for a tombstone

    @property
    def changes(self) -> list[dict[str, Any]]:
        return [v for v in self.values if v is not None]

    def observed(self) -> list[Observed]:
        """Every published ticket version, with its content as Zendesk sent it."""
        return [
            Observed(
                int(v["ticket"]["id"]),
                int(v["ticket"]["generated_timestamp"]),
                ticket_from_avro(v["ticket"]),
            )
            for v in self.changes
        ]

    def ops(self) -> Counter[str]:
        return Counter(str(v["op"]) for v in self.changes)


def read_published(settings: Settings, topic: str | None = None) -> Published:
    records = read_topic(kafka_connection(settings), topic or settings.records_topic)
    decoder = RecordDecoder()
    values = [None if r.value is None else decoder.decode(r.value).value for r in records]
    return Published(records, values)


def checkpoints(settings: Settings) -> list[Checkpoint]:
    """The account's committed checkpoints on the offsets topic, oldest first."""
    key = settings.account.encode()
    return [
        Checkpoint.decode(r.value)
        for r in read_topic(kafka_connection(settings), settings.offsets)
        if r.key == key and r.value is not None
    ]


# --- the exactly-once audit ------------------------------------------------------------


@dataclass(frozen=True)
class Audit:
    """Published versions checked against the simulator's ground truth."""

    missed: list[ContentChange]  # real changes no record carries
    repeated: list[ContentChange]  # real changes carried by more than one record
    unexplained: list[Observed]  # records that carry no real change (e.g. system-only)
    per_change: Counter[int] = field(default_factory=Counter)  # change index -> records

    @property
    def exactly_once(self) -> bool:
        return not (self.missed or self.repeated or self.unexplained)


def audit(truth: GroundTruth, observed: Sequence[Observed], *, ignore: Iterable[int] = ()) -> Audit:
    """Match each record to the one content change whose window holds its version.

    A change's window runs from its generated_timestamp to its ticket's next content
    change (system-only updates in between move the version, not the content), so a
    second record in one window is a duplicate, and a record outside any window with
    equal content is not a real change. Tickets in `ignore` are left out of `missed`.
    """
    windows: dict[int, list[tuple[int, float, int]]] = defaultdict(list)
    upper: dict[int, float] = {}
    for i in range(len(truth.changes) - 1, -1, -1):
        c = truth.changes[i]
        windows[c.ticket_id].append(
            (c.generated_timestamp, upper.get(c.ticket_id, float("inf")), i)
        )
        upper[c.ticket_id] = c.generated_timestamp
    per_change: Counter[int] = Counter()
    unexplained: list[Observed] = []
    for obs in observed:
        match = [
            i
            for low, high, i in windows.get(obs.ticket_id, ())
            if low <= obs.generated_timestamp < high
            and (obs.content is None or _content(obs.content) == truth.changes[i].content)
        ]
        if match:
            per_change[match[0]] += 1
        else:
            unexplained.append(obs)
    skip = set(ignore)
    missed = [c for c in truth.missed(observed) if c.ticket_id not in skip]
    repeated = [truth.changes[i] for i, n in per_change.items() if n > 1]
    return Audit(missed, repeated, unexplained, per_change)


def _content(ticket: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in ticket.items() if k != "generated_timestamp"}


def versions_published_twice(observed: Iterable[Observed]) -> list[tuple[int, int]]:
    counts = Counter((o.ticket_id, o.generated_timestamp) for o in observed)
    return sorted(v for v, n in counts.items() if n > 1)


# --- the subprocess entry point --------------------------------------------------------


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install_kill_hook(spec: str) -> None:
    """Make this process SIGKILL itself at `point:k` (see the module docstring)."""
    point, _, nth = spec.partition(":")
    if point not in KILL_POINTS or not nth.isdigit() or int(nth) < 1:
        raise SystemExit(f"{KILL_ENV} must be one of {KILL_POINTS} followed by :k, not {spec!r}")
    k = int(nth)
    calls = Counter[str]()

    def due(name: str) -> bool:
        calls[name] += 1
        return calls[name] == k

    real_commit = TransactionalSink.commit
    real_txn_commit: Callable[[TransactionalSink, Any], None] = TransactionalSink._commit

    def commit(self: TransactionalSink, batch: Any) -> dict[int, int]:
        if point == "before" and due("commit"):
            _die()
        return real_commit(self, batch)

    def txn_commit(self: TransactionalSink, producer: Any) -> None:
        if point == "during" and due("txn"):
            producer.flush(10)  # the records reach the broker inside the open transaction
            _die()
        real_txn_commit(self, producer)
        if point == "after" and due("txn"):
            _die()

    TransactionalSink.commit = commit  # type: ignore[method-assign]
    TransactionalSink._commit = txn_commit  # type: ignore[method-assign]


def main(argv: Sequence[str]) -> int:
    from producer.cli import main as cli_main  # noqa: PLC0415

    spec = os.environ.get(KILL_ENV)
    if spec:
        install_kill_hook(spec)
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
