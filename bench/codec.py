"""Codec benchmark: fingerprint + plan + Avro encode of ~3 KB tickets, pages of 1,000.

    python -m bench codec                     # 20 pages, single-object framing
    python -m bench codec --pages 50 --registry

The pipeline target (issue 3) is >= 10,000 tickets/s on one core for parse -> plan ->
encode -> produce; this measures the CPU part we own (JSON parse reported apart) so
the transactional produce has headroom. Rates are per CPU second of this process
(`time.process_time`), so other load on the machine does not count against us.
Tickets are generated here, shaped like §7 of ZENDESK_API.md; half of each page is
new to the store and half are real updates. `--tune-gc` shows what raising the
cyclic GC's gen-0 threshold buys: the mapping allocates many small dicts and tuples,
and with default thresholds young collections take a third of the encode time.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient

from producer.codec import RegistrySerializer, SingleObjectSerializer, encode_plan
from producer.model import ExportCursor, ExportPage, Version
from producer.plan import plan_page
from producer.wire import RecordSerializer

TARGET_TICKETS_PER_SECOND = 10_000
WORDS = ("printer", "fire", "invoice", "refund", "délai", "réponse", "退款", "login", "error")


def make_ticket(rng: random.Random, ticket_id: int, ts: int) -> dict[str, Any]:
    """A realistic ticket of about 3 KB of JSON."""

    def text(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n))

    custom = [
        {"id": 360_000_000 + i, "value": v}
        for i, v in enumerate(
            [None, text(2), True, 12.5, 7, ["a_b", "c_d"], None, text(1), False, None] * 2
        )
    ]
    return {
        "url": f"https://acme.zendesk.com/api/v2/tickets/{ticket_id}.json",
        "id": ticket_id,
        "external_id": None,
        "via": {
            "channel": "email",
            "source": {
                "from": {"address": f"user{ticket_id}@example.com", "name": text(2)},
                "to": {"name": "Support", "address": "support@acme.zendesk.com"},
                "rel": None,
            },
        },
        "created_at": "2024-02-27T09:15:02Z",
        "updated_at": "2024-03-04T17:40:11Z",
        "type": "question",
        "subject": text(6),
        "raw_subject": text(6),
        "description": text(90),
        "priority": "normal",
        "status": rng.choice(["new", "open", "pending", "solved"]),
        "recipient": "support@acme.zendesk.com",
        "requester_id": 20_978_392 + ticket_id,
        "submitter_id": 20_978_392,
        "assignee_id": 1_900_000_001,
        "organization_id": None,
        "group_id": 360_000_123,
        "collaborator_ids": [1, 2],
        "follower_ids": [],
        "email_cc_ids": [],
        "forum_topic_id": None,
        "problem_id": None,
        "has_incidents": False,
        "is_public": True,
        "due_at": None,
        "tags": [rng.choice(WORDS) for _ in range(5)],
        "custom_fields": custom,
        "satisfaction_rating": {"score": "offered"},
        "sharing_agreement_ids": [],
        "custom_status_id": 1_900_000_002,
        "fields": custom,
        "followup_ids": [],
        "ticket_form_id": 360_000_001,
        "brand_id": 360_000_002,
        "allow_channelback": False,
        "allow_attachments": True,
        "from_messaging_channel": False,
        "generated_timestamp": ts,
    }


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench codec")
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--registry", action="store_true", help="Schema Registry framing")
    parser.add_argument("--tune-gc", action="store_true", help="gc.freeze + gen-0 50,000")
    args = parser.parse_args(argv)

    rng = random.Random(7)
    serializer: RecordSerializer = SingleObjectSerializer()
    if args.registry:
        client = SchemaRegistryClient.new_client({"url": "mock://bench"})
        serializer = RegistrySerializer(client, topic="bench", dead_letter_topic="bench.dlq")

    bodies = []
    for p in range(args.pages):
        first_ts = 1_700_000_000 + p * 10
        generated = [
            make_ticket(rng, 1 + p * args.page_size + i, first_ts + i // 100)
            for i in range(args.page_size)
        ]
        bodies.append(json.dumps({"tickets": generated}).encode())
    size = sum(len(b) for b in bodies) / (args.pages * args.page_size)
    if args.tune_gc:
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)

    parse = plan_time = encode_time = 0.0
    published = 0
    for p, body in enumerate(bodies):
        t0 = time.process_time()
        tickets: tuple[dict[str, Any], ...] = tuple(json.loads(body)["tickets"])
        t1 = time.process_time()
        page = ExportPage(
            tickets=tickets,
            start=ExportCursor(int(tickets[0]["generated_timestamp"])),
            next_cursor=ExportCursor(int(tickets[-1]["generated_timestamp"])),
            end_of_stream=False,
            fetched_at=time.time(),
        )
        # half the page is known to the store with an older, different version
        known = {int(t["id"]): Version(1, p) for t in tickets[::2]}
        plan = plan_page(page, known)
        t2 = time.process_time()
        encoded = encode_plan(plan, page, account="acme", serializer=serializer, now=time.time())
        t3 = time.process_time()
        parse, plan_time, encode_time = parse + t1 - t0, plan_time + t2 - t1, encode_time + t3 - t2
        published += len(encoded.records)

    n = args.pages * args.page_size
    ours = plan_time + encode_time
    rate = n / ours
    print(f"tickets: {n} in pages of {args.page_size}, {size:,.0f} bytes of JSON each")
    framing = "registry" if args.registry else "single-object"
    print(f"framing: {framing}; gc tuned: {args.tune_gc}; records: {published}")
    print(f"json parse:          {n / parse:>10,.0f} tickets/s")
    print(f"fingerprint + plan:  {n / plan_time:>10,.0f} tickets/s")
    print(f"map + avro encode:   {n / encode_time:>10,.0f} tickets/s")
    print(f"plan + encode:       {rate:>10,.0f} tickets/s (target {TARGET_TICKETS_PER_SECOND:,})")
    print(f"parse + plan + encode: {n / (parse + ours):>8,.0f} tickets/s")
    return 0 if rate >= TARGET_TICKETS_PER_SECOND else 1
