"""`zendesk-cdc demo`: the whole pipeline on this machine, with nothing to install or configure.

A built-in Zendesk simulator (a generated history, then live activity) and an embedded
Kafka-protocol broker (tansu) start on loopback; the real service runs against them on
an accelerated clock; then a sample of the published records is decoded and the result
is checked against the simulator's ground truth.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from producer.broker import EmbeddedBroker
from producer.clock import ScaledClock
from producer.codec import Decoded, RecordDecoder
from producer.config import load_settings
from producer.kafka_log import LogRecord, read_topic
from producer.logs import configure_logging
from producer.metrics import Metrics
from producer.model import ExportPage
from producer.poller import Poller
from producer.progress import BackfillProgress
from producer.service import build_service, kafka_connection
from producer.simulator import (
    DEFAULT_OAUTH_CLIENT_ID,
    DEFAULT_OAUTH_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
    LiveActivity,
    Observed,
    Simulator,
    SimulatorConfig,
    SimulatorServer,
)

SAMPLE = 3
LIVE_EVENTS_PER_MINUTE = 120.0


def _say(text: str = "") -> None:
    print(text, flush=True)


def run_demo(
    *, tickets: int, speed: float, live_seconds: float, seed: int, stop: threading.Event
) -> int:
    configure_logging("text", "WARNING")
    _say("zendesk-cdc demo: built-in Zendesk simulator + embedded Kafka broker, on this machine")
    clock = ScaledClock(speed=speed)
    sim_config = SimulatorConfig(tickets=tickets, seed=seed)
    started = time.monotonic()
    with (
        EmbeddedBroker() as broker,
        SimulatorServer(Simulator(sim_config, clock)) as server,
        tempfile.TemporaryDirectory(prefix="zendesk-cdc-demo-") as state,
    ):
        _say(f"  simulator  {server.base_url}  ({tickets} tickets, clock x{speed:g})")
        _say(f"  broker     {broker.bootstrap_servers}  (tansu, in memory)")
        _say("  auth       OAuth, refresh token rotated into a temporary state dir")
        settings = load_settings(
            zendesk_url=server.base_url,
            # OAuth with refresh, as recommended: the pair rotates into the state dir
            zendesk_oauth_client_id=DEFAULT_OAUTH_CLIENT_ID,
            zendesk_oauth_client_secret=DEFAULT_OAUTH_CLIENT_SECRET,
            zendesk_oauth_refresh_token=DEFAULT_REFRESH_TOKEN,
            bootstrap_servers=broker.bootstrap_servers,
            state_dir=Path(state),
            http_address="",
            log_format="text",
        )
        metrics = Metrics()
        with build_service(settings, stop=stop, clock=clock, metrics=metrics) as service:
            poller = service.poller
            poller.start()
            assert poller.cursor is not None
            progress = BackfillProgress(clock)
            tty = sys.stdout.isatty()

            def show(p: Poller, page: ExportPage) -> None:
                first = min((int(t["generated_timestamp"]) for t in page.tickets), default=0)
                cursor = p.cursor.start_time if p.cursor else 0
                published = sum(p.progress.published.values())
                line = progress.line(first, cursor, p.progress.tickets, published)
                print(("\r" if tty else "") + line, end="" if tty else "\n", flush=True)

            poller.on_page = show
            _say(
                f"\nBackfill: reading the history under the {settings.requests_per_minute}"
                "-requests-per-minute budget"
            )
            poller.drain()
            _say("\n" if tty else "")
            _say(
                f"Live: {live_seconds:g} s of simulated activity "
                f"({live_seconds * speed / 60:g} simulated minutes), polling every minute"
            )
            progress.phase = "live    "
            activity = LiveActivity(server.simulator, LIVE_EVENTS_PER_MINUTE)
            activity.start()
            deadline = time.monotonic() + live_seconds
            while not stop.is_set() and time.monotonic() < deadline:
                clock.sleep(settings.poll_interval_seconds, stop)
                poller.drain()
            activity.stop()
            # let the hold-back pass, so the last live changes become exportable
            clock.sleep(settings.hold_back_seconds + 2, stop)
            poller.drain()
            _say("\n" if tty else "")
            summary = poller.progress
            truth = server.simulator.ground_truth()

        records = read_topic(kafka_connection(settings), settings.records_topic)
    elapsed = time.monotonic() - started
    decoder = RecordDecoder()
    decoded = [(r, decoder.decode(r.value)) for r in records if r.value is not None]
    tombstones = sum(1 for r in records if r.value is None)
    _print_samples(decoded)
    observed = [
        Observed(int(d.value["ticket"]["id"]), int(d.value["ticket"]["generated_timestamp"]))
        for _, d in decoded
    ]
    missed = truth.missed(observed)
    versions = Counter((o.ticket_id, o.generated_timestamp) for o in observed)
    duplicated = sum(n - 1 for n in versions.values() if n > 1)
    ops = Counter(str(d.value["op"]) for _, d in decoded)
    _say("Summary")
    _say(f"  pages read            {summary.pages}  ({summary.tickets} tickets, repeats included)")
    _say(f"  changes published     {sum(ops.values())}  " + _counts(ops))
    _say(f"  tombstones            {tombstones}")
    _say(f"  skipped               {sum(summary.skipped.values())}  " + _counts(summary.skipped))
    _say(f"  dead-lettered         {summary.dead_lettered}")
    _say(f"  transactions          {summary.transactions} committed, {summary.aborted} aborted")
    _say(f"  real changes missed   {len(missed)} (checked against the simulator's ground truth)")
    _say(f"  published twice       {duplicated}")
    _say(f"  time                  {elapsed:.1f} s")
    return 0 if not missed and not duplicated else 1


def _counts(counter: Counter[str]) -> str:
    return "(" + ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) + ")"


def _print_samples(decoded: Sequence[tuple[LogRecord, Decoded]]) -> None:
    _say(f"A sample of the records on the topic, decoded ({SAMPLE} of {len(decoded)}):")
    step = max(1, len(decoded) // SAMPLE)
    for _, d in decoded[::step][:SAMPLE]:
        value = d.value
        t = value["ticket"]
        _say(
            f"  op={value['op']:<6} id={t['id']:<6} status={t['status']:<8} "
            f"generated_timestamp={t['generated_timestamp']}  subject={str(t['subject'])[:48]!r}"
        )
    _say()
