"""Wiring: Settings -> the running service (export client, store, sink, poller, probes).

Start-up order matters for exactly-once: topics exist, then the transactional producer
initialises (fencing a zombie and aborting what it left open), then the cursor and the
store are restored from what Kafka holds as committed, then the service is ready.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from producer.clock import Clock, SystemClock
from producer.codec import (
    DEFAULT_MAX_RECORD_BYTES,
    RecordSerializer,
    RegistrySerializer,
    SingleObjectSerializer,
)
from producer.config import Settings
from producer.errors import ConfigError, StoreCorruptError
from producer.gc_tuning import tune_collector
from producer.health import Health, HealthServer
from producer.kafka_log import KafkaConnection
from producer.logs import configure_logging
from producer.metrics import Metrics
from producer.model import ExportCursor, ExportPage
from producer.poller import Poller, PollerOptions
from producer.progress import BackfillProgress
from producer.records import BatchBuilder
from producer.restore import restore
from producer.sink import TransactionalSink
from producer.store import Store
from producer.store_sqlite import SqliteStore, open_store
from producer.topics import SinkTopics, default_specs, ensure_topics
from producer.wire import SubjectStrategy
from producer.zendesk import (
    ApiTokenAuth,
    ExportClient,
    ExportOptions,
    OAuthBearer,
    OAuthRefreshing,
    parse_start,
)

log = logging.getLogger("zendesk_cdc")

OAUTH_TOKEN_FILE = "oauth-token.json"  # noqa: S105 - a file name, not a secret


def kafka_connection(settings: Settings) -> KafkaConnection:
    if not settings.bootstrap_servers:
        raise ConfigError("ZENDESK_CDC_BOOTSTRAP_SERVERS", "is required")
    password = settings.sasl_password
    return KafkaConnection(
        bootstrap_servers=settings.bootstrap_servers,
        security_protocol=settings.security_protocol,
        sasl_mechanism=settings.sasl_mechanism,
        sasl_username=settings.sasl_username,
        sasl_password=password.get_secret_value() if password else None,
        ssl_cafile=settings.ssl_ca_location,
        extra=dict(settings.kafka_extra),
    )


def sink_topics(settings: Settings) -> SinkTopics:
    return SinkTopics(
        settings.records_topic, settings.changelog, settings.offsets, settings.dead_letters
    )


def zendesk_auth(settings: Settings, clock: Clock, metrics: Metrics) -> httpx.Auth:
    """OAuth with refresh, then a static bearer, then an API token, whichever is configured."""
    s = settings
    if s.zendesk_oauth_client_id and s.zendesk_oauth_client_secret:
        refresh = s.zendesk_oauth_refresh_token
        return OAuthRefreshing(
            s.zendesk_oauth_client_id,
            s.zendesk_oauth_client_secret.get_secret_value(),
            s.state_dir / OAUTH_TOKEN_FILE,
            clock=clock,
            metrics=metrics,
            initial_refresh_token=refresh.get_secret_value() if refresh else None,
        )
    if s.zendesk_oauth_access_token:
        return OAuthBearer(s.zendesk_oauth_access_token.get_secret_value())
    if s.zendesk_email and s.zendesk_api_token:  # ApiTokenAuth warns of the retirement
        return ApiTokenAuth(s.zendesk_email, s.zendesk_api_token.get_secret_value())
    raise ConfigError(
        "ZENDESK_CDC_ZENDESK_API_TOKEN",
        "no Zendesk credentials: set ZENDESK_EMAIL + ZENDESK_API_TOKEN, "
        "ZENDESK_OAUTH_ACCESS_TOKEN, or ZENDESK_OAUTH_CLIENT_ID/SECRET/REFRESH_TOKEN",
    )


def export_options(settings: Settings, auth: httpx.Auth) -> ExportOptions:
    if not settings.zendesk_url:
        raise ConfigError("ZENDESK_CDC_ZENDESK_URL", "is required")
    return ExportOptions(
        base_url=settings.zendesk_url,
        auth=auth,
        per_page=settings.per_page,
        per_page_floor=min(settings.per_page_floor, settings.per_page),
        include=settings.include,
        exclude_deleted=settings.exclude_deleted,
        support_type_scope=settings.support_type_scope,
        mode=settings.export_mode,
        hold_back_margin=float(settings.hold_back_seconds),
        requests_per_minute=settings.requests_per_minute,
        reserve_fraction=settings.account_rate_reserve,
        read_timeout=settings.http_timeout_seconds,
        allow_insecure_http=settings.allow_insecure_http,
    )


def record_serializer(settings: Settings) -> RecordSerializer:
    if not settings.schema_registry_url:
        return SingleObjectSerializer()
    from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: PLC0415

    conf: dict[str, str] = {"url": settings.schema_registry_url}
    if settings.schema_registry_basic_auth:
        conf["basic.auth.user.info"] = settings.schema_registry_basic_auth.get_secret_value()
    return RegistrySerializer(
        SchemaRegistryClient(conf),
        topic=settings.records_topic,
        dead_letter_topic=settings.dead_letters,
        subject_strategy=SubjectStrategy(settings.subject_name_strategy),
        auto_register=settings.auto_register_schemas,
    )


def max_record_bytes(settings: Settings) -> int:
    """The largest record value the producer will be allowed to send (message.max.bytes)."""
    configured = settings.kafka_extra.get("message.max.bytes")
    if configured is None:
        return DEFAULT_MAX_RECORD_BYTES
    try:
        return int(configured) - 4096  # room for key, headers and record overhead
    except ValueError as exc:
        raise ConfigError("ZENDESK_CDC_KAFKA_EXTRA", "message.max.bytes is not a number") from exc


def open_local_store(path: Path) -> SqliteStore:
    """Open the store; an unreadable one is discarded, since Kafka's changelog rebuilds it."""
    try:
        return open_store(path)
    except StoreCorruptError as exc:  # an I/O failure is not a reason to wipe a good store
        log.warning("local store unusable (%s); rebuilding it from the changelog", exc)
        SqliteStore.destroy(path)
        return open_store(path)


@dataclass
class Service:
    settings: Settings
    poller: Poller
    store: Store
    sink: TransactionalSink
    http: httpx.Client
    health: Health
    metrics: Metrics

    def close(self) -> None:
        self.sink.close()
        self.store.close()
        self.http.close()


@contextlib.contextmanager
def build_service(
    settings: Settings,
    *,
    stop: threading.Event,
    clock: Clock | None = None,
    metrics: Metrics | None = None,
) -> Iterator[Service]:
    """Everything `run` needs, connected and restored; closed on exit."""
    clock = clock or SystemClock()
    metrics = metrics or Metrics()
    conn = kafka_connection(settings)
    topics = sink_topics(settings)
    auth = zendesk_auth(settings, clock, metrics)
    options = export_options(settings, auth)
    wedged_after = settings.liveness_intervals * max(settings.poll_interval_seconds, 60.0)
    health = Health(clock, wedged_after + settings.http_timeout_seconds)

    ensure_topics(
        conn,
        default_specs(
            topics,
            records_partitions=settings.topic_partitions,
            changelog_partitions=settings.changelog_partitions,
            dlq_partitions=settings.topic_partitions,
            replication_factor=settings.replication_factor,
        ),
        create_missing=settings.create_topics,
    )
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    store = open_local_store(settings.state_dir / f"store-{settings.account}.sqlite")
    sink = TransactionalSink(
        conn,
        topics,
        settings.account,
        metrics,
        transactional_id=settings.producer_transactional_id,
        transaction_timeout_ms=settings.transaction_timeout_ms,
        operation_timeout_s=10.0,
        clock=clock,
        # SIGTERM during a broker outage gives up on the commit in flight within seconds,
        # well inside the pod's grace period (the operation timeouts alone add up to 40 s)
        stop=stop,
    )
    http = httpx.Client(timeout=options.timeout, headers={"Accept": "application/json"})
    first_start = ExportCursor(parse_start(settings.start, clock.now()), mode=settings.export_mode)

    def restore_state() -> ExportCursor:
        state = restore(conn, topics, settings.account, store, metrics)
        sink.resume(state.checkpoint, state.changelog_positions)
        if state.cursor is None:
            log.info("no committed cursor: starting at %s", first_start.start_time)
            return first_start
        if state.cursor.mode is not settings.export_mode:
            log.info(
                "export mode changed to %s: resuming at %s through it",
                settings.export_mode.value,
                state.cursor.start_time,
            )
        return state.cursor.in_mode(settings.export_mode)

    service: Service | None = None
    try:
        sink.init()  # fences a zombie and aborts its open transaction before we read state
        poller = Poller(
            export=ExportClient(options, http, clock, metrics, stop, on_wait=health.beat),
            store=store,
            sink=sink,
            builder=BatchBuilder(
                settings.account,
                record_serializer(settings),
                clock,
                max_record_bytes=max_record_bytes(settings),
            ),
            restore=restore_state,
            options=PollerOptions(settings.poll_interval_seconds, tombstones=settings.tombstones),
            clock=clock,
            metrics=metrics,
            health=health,
            stop=stop,
        )
        service = Service(settings, poller, store, sink, http, health, metrics)
        yield service
    finally:
        if service is not None:
            service.close()
        else:
            sink.close()
            store.close()
            http.close()


def _show_progress_on_terminal(poller: Poller, clock: Clock, settings: Settings) -> None:
    """A backfill progress line on stderr, every page (terminal runs only)."""
    progress = BackfillProgress(clock, settings.hold_back_seconds)

    def show(p: Poller, page: ExportPage) -> None:
        first = min((int(t["generated_timestamp"]) for t in page.tickets), default=0)
        cursor = p.cursor.start_time if p.cursor else 0
        published = sum(p.progress.published.values())
        print(progress.line(first, cursor, p.progress.tickets, published), file=sys.stderr)

    poller.on_page = show


def run_service(settings: Settings, *, stop: threading.Event, once: bool = False) -> int:
    configure_logging(settings.log_format, settings.log_level, settings.secrets())
    metrics = Metrics()
    clock = SystemClock()
    log.info("starting", extra={"settings": settings.redacted()})
    with build_service(settings, stop=stop, clock=clock, metrics=metrics) as service:
        tune_collector()
        server = None
        if settings.http_address:
            server = HealthServer(settings.http_address, metrics, service.health).start()
            log.info("serving /metrics, /livez, /readyz on %s", settings.http_address)
        if settings.log_format == "text" or (settings.log_format == "auto" and sys.stderr.isatty()):
            _show_progress_on_terminal(service.poller, clock, settings)
        try:
            service.poller.start()
            if once:
                service.poller.drain()
            else:
                service.poller.run_forever()
        finally:
            if server is not None:
                server.stop()
    p = service.poller.progress
    log.info(
        "stopped",
        extra={
            "pages": p.pages,
            "published": dict(p.published),
            "skipped": dict(p.skipped),
            "dead_lettered": p.dead_lettered,
        },
    )
    return 0
