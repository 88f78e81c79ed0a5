"""Pipeline benchmark: parse -> plan -> encode -> transactional produce, on ONE core.

    python -m bench pipeline                       # 20 pages of 1,000, both stores
    python -m bench pipeline --pages 40 --store sqlite --profile
    python -m bench pipeline --framing registry    # through AvroSerializer (mock:// registry)
    python -m bench pipeline --default-gc          # without the service's collector tuning
    python -m bench pipeline --custom-fields 20    # heavier tickets: 20 custom fields

Tickets come from the simulator's generator (realistic shapes, ~2.9 KB of JSON each,
about the 3 KB of the target) and are served as pre-encoded JSON pages through
`httpx.MockTransport`, so no rate limit and no network: the figure is our code. Each page
goes through the real `ExportClient`, `plan_page`, `BatchBuilder` and `TransactionalSink`
(one Kafka transaction per page) against an embedded tansu broker, with the MemoryStore
and the SqliteStore. Half of the pages create tickets, the other half update them.

This process is pinned to CPU 0 and the broker to the others, so librdkafka's threads
share our one core and the broker never takes it. Target (issue 3): 10,000 tickets/s.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import json
import os
import pstats
import random
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka.schema_registry import SchemaRegistryClient

from producer.broker import EmbeddedBroker
from producer.clock import SystemClock
from producer.codec import RecordSerializer, RegistrySerializer, SingleObjectSerializer
from producer.gc_tuning import tune_collector
from producer.kafka_log import KafkaConnection
from producer.metrics import Metrics
from producer.model import ExportCursor
from producer.plan import plan_page
from producer.records import BatchBuilder
from producer.simulator.generator import TicketFactory
from producer.sink import TransactionalSink
from producer.store import MemoryStore, Store
from producer.store_sqlite import open_store
from producer.topics import SinkTopics, default_specs, ensure_topics
from producer.zendesk import ExportClient, ExportOptions

TARGET = 10_000
PER_PAGE = 1000
BASE_URL = "https://bench.zendesk.com"
FIRST_SECOND = 1_700_000_000
STAGES = ("parse", "plan", "encode", "produce+commit")


def more_custom_fields(ticket: dict[str, Any], wanted: int, rng: random.Random) -> None:
    """Pad `custom_fields` (and its duplicate `fields`) to `wanted` entries of every type."""
    values: list[Any] = [None, "ORD-1234", True, 12.5, 7, ["a_b", "c_d"], "multi\nline"]
    fields = ticket["custom_fields"]
    while len(fields) < wanted:
        fields.append({"id": 360_700_000 + len(fields), "value": rng.choice(values)})
    ticket["fields"] = [dict(f) for f in fields]


def build_pages(
    pages: int, rng: random.Random, custom_fields: int = 0
) -> tuple[dict[int, bytes], int]:
    """Pre-encoded export pages by their start_time: the first half creates tickets, the
    second half updates them. Pages share no second, so there are no boundary repeats.
    `custom_fields`: pad each ticket to that many (the generator gives six).

    Returns the bodies and the average ticket size in bytes.
    """
    factory = TicketFactory("bench", rng)
    half = max(1, pages // 2)
    bodies: dict[int, bytes] = {}
    start, sizes = FIRST_SECOND, 0
    for n in range(pages):
        first_id = (n % half) * PER_PAGE + 1
        tickets = []
        for i in range(PER_PAGE):
            ts = start + i * 9 // PER_PAGE  # ascending within a 9-second window
            ticket = factory.ticket(first_id + i, ts - 86_400, ts, ts)
            more_custom_fields(ticket, custom_fields, rng)
            tickets.append(ticket)
        end_time = start + 10
        body = {
            "tickets": tickets,
            "count": len(tickets),
            "end_time": end_time,
            "end_of_stream": n == pages - 1,
            "next_page": f"{BASE_URL}/api/v2/incremental/tickets.json?start_time={end_time}",
        }
        bodies[start] = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        sizes += len(bodies[start])
        start = end_time
    return bodies, sizes // (pages * PER_PAGE)


def export_client(bodies: dict[int, bytes], stop: threading.Event) -> ExportClient:
    """An ExportClient whose Zendesk serves ready-made pages by start_time."""

    def handler(request: httpx.Request) -> httpx.Response:
        body = bodies[int(request.url.params["start_time"])]
        return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    options = ExportOptions(
        base_url=BASE_URL,
        requests_per_minute=10_000_000,  # no budget: this measures our code
        rate_safety_seconds=0.0,
        reserve_fraction=0.0,
    )
    return ExportClient(options, http, SystemClock(), Metrics(), stop)


@dataclass
class Result:
    store: str
    tickets: int = 0
    published: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    stages: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    def rate(self, seconds: float) -> float:
        return self.tickets / seconds if seconds > 0 else float("inf")


@contextlib.contextmanager
def timed(result: Result, stage: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    result.stages[stage] += time.perf_counter() - started


def serializer_for(framing: str, topics: SinkTopics) -> RecordSerializer:
    if framing == "single-object":
        return SingleObjectSerializer()
    # confluent-kafka's in-memory registry: the figure is the AvroSerializer's, not HTTP's
    client = SchemaRegistryClient.new_client({"url": "mock://bench"})
    return RegistrySerializer(client, topic=topics.records, dead_letter_topic=topics.dlq)


def run_pipeline(
    bodies: dict[int, bytes], store: Store, store_name: str, conn: KafkaConnection, framing: str
) -> Result:
    topics = SinkTopics(*(f"bench-{uuid.uuid4().hex[:8]}{s}" for s in ("", ".cl", ".off", ".dlq")))
    ensure_topics(conn, default_specs(topics))
    metrics = Metrics()
    sink = TransactionalSink(
        conn, topics, "bench", metrics, transactional_id=f"bench-{uuid.uuid4().hex[:8]}"
    )
    sink.init()
    builder = BatchBuilder("bench", serializer_for(framing, topics), SystemClock())
    stop = threading.Event()
    client = export_client(bodies, stop)
    result = Result(store_name)
    cursor = ExportCursor(FIRST_SECOND)
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    try:
        while True:
            with timed(result, "parse"):
                page = client.fetch_page(cursor)
            assert page is not None
            with timed(result, "plan"):
                plan = plan_page(page, store.lookup(page.ticket_ids))
            with timed(result, "encode"):
                batch = builder.build(plan, page)
            with timed(result, "produce+commit"):
                positions = sink.commit(batch)
                store.apply(plan.store_updates, positions)
            result.tickets += len(page.tickets)
            result.published += len(plan.changes)
            cursor = plan.next_cursor
            if page.end_of_stream:
                break
    finally:
        result.wall = time.perf_counter() - wall_started
        result.cpu = time.process_time() - cpu_started
        sink.close()
        store.close()
    return result


def report(result: Result, ticket_bytes: int) -> None:
    verdict = "meets" if result.rate(result.wall) >= TARGET else "BELOW"
    print(
        f"{result.store:>7}: {result.tickets} tickets ({result.published} published) in "
        f"{result.wall:.2f} s wall, {result.cpu:.2f} s CPU -> "
        f"{result.rate(result.wall):,.0f} tickets/s end to end "
        f"({result.tickets * ticket_bytes / result.wall / 1e6:.1f} MB/s of JSON); "
        f"{verdict} the {TARGET:,}/s target"
    )
    for stage in STAGES:
        seconds = result.stages[stage]
        print(
            f"         {stage:<15} {seconds:6.2f} s  {result.rate(seconds):>10,.0f} tickets/s  "
            f"{100 * seconds / result.wall:4.1f}%"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench pipeline", description=__doc__)
    parser.add_argument("--pages", type=int, default=20, help="pages of 1,000 tickets (20)")
    parser.add_argument("--store", choices=("memory", "sqlite", "both"), default="both")
    parser.add_argument("--cpu", type=int, default=0, help="the one CPU to pin to (0)")
    parser.add_argument("--profile", action="store_true", help="cProfile: top 25 by own time")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--custom-fields", type=int, default=0,
        help="pad every ticket to this many custom fields (the generator gives 6; 20 makes "
        "~3.9 KB tickets with 40 {id, value} entries, custom_fields and fields together)",
    )  # fmt: skip
    parser.add_argument(
        "--framing", choices=("single-object", "registry"), default="single-object",
        help="Avro framing: single-object (no registry; the default) or Schema Registry "
        "through confluent-kafka's AvroSerializer and its in-memory mock:// registry",
    )  # fmt: skip
    parser.add_argument(
        "--default-gc", action="store_true",
        help="leave Python's collector as it is (the service tunes it: producer.gc_tuning)",
    )  # fmt: skip
    args = parser.parse_args(argv)

    print(f"building {args.pages} pages of {PER_PAGE} tickets ...", flush=True)
    bodies, ticket_bytes = build_pages(args.pages, random.Random(args.seed), args.custom_fields)
    print(f"average ticket: {ticket_bytes} bytes of JSON")
    stores = ("memory", "sqlite") if args.store == "both" else (args.store,)
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as state:
        # we and librdkafka's threads get one core; the broker (not our code, and on
        # another machine in production) gets the others, so it never takes ours
        others = set(range(os.cpu_count() or 1)) - {args.cpu}
        if broker.pid is not None and others:
            os.sched_setaffinity(broker.pid, others)
        os.sched_setaffinity(0, {args.cpu})
        print(
            f"pinned to CPU {args.cpu}; the broker to CPU {','.join(map(str, sorted(others)))}"
            f" ({os.cpu_count()} in all)"
        )
        conn = KafkaConnection(bootstrap_servers=broker.bootstrap_servers)
        if not args.default_gc:
            tune_collector()  # as `zendesk-cdc run` does once the service is built
        print(
            f"garbage collector: {'Python default' if args.default_gc else 'tuned'} "
            f"(gen-0 threshold {gc.get_threshold()[0]})"
        )
        worst = float("inf")
        for name in stores:
            store: Store = (
                MemoryStore() if name == "memory" else open_store(Path(state) / "bench.sqlite")
            )
            profiler = cProfile.Profile() if args.profile else None
            if profiler:
                profiler.enable()
            result = run_pipeline(bodies, store, name, conn, args.framing)
            if profiler:
                profiler.disable()
            report(result, ticket_bytes)
            if profiler:
                pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
            worst = min(worst, result.rate(result.wall))
    return 0 if worst >= TARGET else 1
