"""Every Prometheus metric zendesk-cdc exports, built on one injectable registry.

Names follow Prometheus conventions: `zendesk_cdc_` prefix, base units, `_total` for
counters, timestamps instead of "seconds since". Labelled series are created up front
so dashboards and alerts see 0 rather than nothing.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from producer import __version__

PREFIX = "zendesk_cdc"

ENDPOINTS = ("incremental_tickets", "incremental_tickets_cursor", "oauth_tokens")
STATUS_CLASSES = ("2xx", "400", "401", "403", "404", "409", "422", "429", "5xx", "error")
OPS = ("create", "update", "delete")
SKIP_REASONS = ("duplicate", "unchanged", "stale")
ERROR_KINDS = (
    "rate_limited",
    "transient",
    "malformed_response",
    "auth",
    "fatal",
    "cursor_stuck",
    "kafka_abortable",
    "kafka_fatal",
    "schema_registry",
)


def status_class(status: int | None) -> str:
    """Collapse an HTTP status into the label values above (bounded cardinality)."""
    if status is None:
        return "error"
    if 200 <= status < 300:
        return "2xx"
    if status >= 500:
        return "5xx"
    label = str(status)
    return label if label in STATUS_CLASSES else "error"


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        p = PREFIX
        self.build_info = Info(f"{p}_build", "Version of zendesk-cdc", registry=r)
        self.build_info.info({"version": __version__})

        # Zendesk side
        self.api_requests = Counter(
            f"{p}_api_requests_total",
            "Zendesk API requests by endpoint and status class",
            ["endpoint", "status"],
            registry=r,
        )
        self.api_request_duration = Histogram(
            f"{p}_api_request_duration_seconds",
            "Zendesk API request duration",
            ["endpoint"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.rate_limit_waits = Counter(
            f"{p}_rate_limit_waits_total", "Times the client waited for the rate budget", registry=r
        )
        self.rate_limit_wait_seconds = Counter(
            f"{p}_rate_limit_wait_seconds_total", "Seconds spent waiting for the rate budget",
            registry=r,
        )
        self.rate_limited = Counter(
            f"{p}_rate_limited_total", "429 Too Many Requests responses", registry=r
        )
        self.rate_budget_per_minute = Gauge(
            f"{p}_rate_budget_requests_per_minute",
            "Incremental export requests per minute this service allows itself",
            registry=r,
        )
        self.per_page = Gauge(f"{p}_per_page", "Current per_page of export requests", registry=r)
        self.errors = Counter(
            f"{p}_errors_total", "Errors by kind (see errors.py)", ["kind"], registry=r
        )
        self.tickets_fetched = Counter(
            f"{p}_tickets_fetched_total", "Tickets received from the export, repeats included",
            registry=r,
        )
        self.pages_fetched = Counter(
            f"{p}_pages_fetched_total", "Export pages received", registry=r
        )
        self.malformed_tickets = Counter(
            f"{p}_malformed_tickets_total", "Tickets the export client could not read", registry=r
        )

        # Pipeline
        self.changes_published = Counter(
            f"{p}_changes_published_total", "Ticket changes published, by op", ["op"], registry=r
        )
        self.skipped = Counter(
            f"{p}_tickets_skipped_total", "Tickets not published, by reason", ["reason"],
            registry=r,
        )
        self.dead_lettered = Counter(
            f"{p}_dead_lettered_total", "Tickets sent to the dead-letter topic", registry=r
        )
        self.tombstones = Counter(
            f"{p}_tombstones_published_total", "Tombstones published after deletes", registry=r
        )
        self.transactions = Counter(
            f"{p}_transactions_total", "Kafka transactions by outcome", ["outcome"], registry=r
        )
        self.transaction_duration = Histogram(
            f"{p}_transaction_duration_seconds",
            "From begin_transaction to a finished commit",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.producer_recreated = Counter(
            f"{p}_producer_recreated_total", "Transactional producers recreated after fatal errors",
            registry=r,
        )

        # Progress
        self.export_cursor = Gauge(
            f"{p}_export_cursor_timestamp_seconds",
            "Committed export cursor (Zendesk end_time), unix seconds",
            registry=r,
        )
        self.last_commit = Gauge(
            f"{p}_last_commit_timestamp_seconds", "When the last transaction committed",
            registry=r,
        )
        self.last_iteration = Gauge(
            f"{p}_last_loop_iteration_timestamp_seconds", "When the poll loop last went round",
            registry=r,
        )
        self.caught_up = Gauge(
            f"{p}_caught_up_timestamp_seconds",
            "When the export last reached its end: every change before it is published",
            registry=r,
        )
        self.backfill_start = Gauge(
            f"{p}_backfill_start_timestamp_seconds",
            "Export cursor when this process started, unix seconds",
            registry=r,
        )
        self.ready = Gauge(f"{p}_ready", "1 once state is restored and the producer is ready",
                           registry=r)

        # Store
        self.store_entries = Gauge(f"{p}_store_entries", "Tickets in the compact store", registry=r)
        self.store_bytes = Gauge(f"{p}_store_bytes", "Compact store size on disk", registry=r)
        self.store_restored = Counter(
            f"{p}_store_restored_entries_total", "Store entries replayed from the changelog",
            registry=r,
        )

        # librdkafka statistics
        self.producer_queue = Gauge(
            f"{p}_producer_queue_messages", "Messages waiting in the producer queue", registry=r
        )
        self.broker_rtt = Gauge(
            f"{p}_broker_rtt_seconds", "Average broker round-trip time (librdkafka stats)",
            ["broker"], registry=r,
        )

        for endpoint in ENDPOINTS:
            self.api_request_duration.labels(endpoint)
            for status in STATUS_CLASSES:
                self.api_requests.labels(endpoint, status)
        for op in OPS:
            self.changes_published.labels(op)
        for reason in SKIP_REASONS:
            self.skipped.labels(reason)
        for kind in ERROR_KINDS:
            self.errors.labels(kind)
        for outcome in ("committed", "aborted"):
            self.transactions.labels(outcome)
