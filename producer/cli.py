"""The `zendesk-cdc` command: run, demo, check-config, simulate.

Every setting of `producer.config.Settings` is also a `run`/`check-config` flag
(`--per-page 500` is ZENDESK_CDC_PER_PAGE=500); flags win over the environment.

Exit codes: 0 done (or stopped by SIGTERM/SIGINT), 2 bad settings, 3 Zendesk refused
us for good (credentials, scope, URL), 4 Kafka, the Schema Registry or the committed
state cannot be used.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

from producer import __version__
from producer.config import Settings, load_settings
from producer.errors import (
    CdcError,
    ConfigError,
    FatalZendeskError,
    KafkaError,
    SchemaRegistryError,
    StateError,
)

log = logging.getLogger("zendesk_cdc")

EXIT_CONFIG = 2
EXIT_ZENDESK = 3
EXIT_KAFKA = 4


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (each also ZENDESK_CDC_<NAME> in the environment)")
    for name, field in Settings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        help_text = field.description or ""
        if field.annotation is bool:
            group.add_argument(
                flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        elif name == "kafka_extra":
            group.add_argument(flag, dest=name, type=json.loads, default=None, help=help_text)
        else:
            group.add_argument(flag, dest=name, default=None, metavar=name.upper(), help=help_text)


def _settings_from(args: argparse.Namespace) -> Settings:
    overrides = {name: getattr(args, name, None) for name in Settings.model_fields}
    return load_settings(**overrides)


def _install_signal_handlers(stop: threading.Event) -> None:
    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s; finishing the transaction in flight", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def cmd_check_config(args: argparse.Namespace) -> int:
    settings = _settings_from(args)
    effective = settings.redacted()
    effective["(derived) account"] = settings.account
    effective["(derived) transactional.id"] = settings.producer_transactional_id
    effective["(derived) topics"] = {
        "records": settings.records_topic,
        "changelog": settings.changelog,
        "offsets": settings.offsets,
        "dead_letters": settings.dead_letters,
    }
    print(json.dumps(effective, indent=2, default=str))
    problems = []
    if not settings.zendesk_url:
        problems.append("ZENDESK_CDC_ZENDESK_URL is not set")
    if not settings.bootstrap_servers:
        problems.append("ZENDESK_CDC_BOOTSTRAP_SERVERS is not set")
    for problem in problems:
        print(f"warning: {problem} (needed by `run`)", file=sys.stderr)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from producer.service import run_service  # noqa: PLC0415 - keeps --help fast

    settings = _settings_from(args)
    stop = threading.Event()
    _install_signal_handlers(stop)
    return run_service(settings, stop=stop, once=args.once)


def cmd_demo(args: argparse.Namespace) -> int:
    from producer.demo import run_demo  # noqa: PLC0415

    stop = threading.Event()
    _install_signal_handlers(stop)
    return run_demo(
        tickets=args.tickets,
        speed=args.speed,
        live_seconds=args.live_seconds,
        seed=args.seed,
        stop=stop,
    )


def cmd_simulate(args: argparse.Namespace) -> int:
    from producer.simulator import run_simulator  # noqa: PLC0415

    stop = threading.Event()
    _install_signal_handlers(stop)
    options: dict[str, Any] = {k: v for k, v in vars(args).items() if k not in ("func", "command")}
    run_simulator(stop=stop, **options)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zendesk-cdc",
        description="Zendesk ticket changes as an exactly-once Avro stream on Kafka.",
    )
    parser.add_argument("--version", action="version", version=f"zendesk-cdc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="the service: poll Zendesk, publish changes to Kafka")
    run.add_argument("--once", action="store_true", help="drain to end_of_stream, then exit 0")
    _add_setting_flags(run)
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser(
        "demo", help="built-in Zendesk simulator + embedded broker + the pipeline, end to end"
    )
    demo.add_argument("--tickets", type=int, default=20_000, help="history size (20000)")
    demo.add_argument(
        "--speed",
        type=float,
        default=60.0,
        help="simulated seconds per real second (60: a minute per second)",
    )
    demo.add_argument(
        "--live-seconds",
        type=float,
        default=10.0,
        help="real seconds of live activity after the backfill (10)",
    )
    demo.add_argument("--seed", type=int, default=7, help="data generator seed (7)")
    demo.set_defaults(func=cmd_demo)

    check = sub.add_parser("check-config", help="print the effective settings, secrets redacted")
    _add_setting_flags(check)
    check.set_defaults(func=cmd_check_config)

    sim = sub.add_parser("simulate", help="serve the built-in Zendesk simulator over HTTP")
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    sim.add_argument("--port", type=int, default=8080, help="port (8080)")
    sim.add_argument("--tickets", type=int, default=5_000, help="tickets in the history (5000)")
    sim.add_argument("--seed", type=int, default=1, help="data generator seed (1)")
    sim.add_argument("--speed", type=float, default=1.0, help="clock speed-up (1: real time)")
    sim.add_argument(
        "--activity-per-minute",
        type=float,
        default=30.0,
        help="ticket events per simulated minute after start (30; 0: none)",
    )
    sim.add_argument(
        "--rate-limit", type=int, default=10, help="incremental export requests per minute (10)"
    )
    sim.set_defaults(func=cmd_simulate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"zendesk-cdc: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except FatalZendeskError as exc:
        _report(exc)
        return EXIT_ZENDESK
    except (KafkaError, SchemaRegistryError, StateError) as exc:
        _report(exc)
        return EXIT_KAFKA
    except CdcError as exc:
        _report(exc)
        return 1
    return code


def _report(exc: Exception) -> None:
    """One line saying why we stop: a log record once logging is set up (JSON in
    containers), else plain text."""
    if logging.getLogger().handlers:
        log.error("stopping: %s", exc)
    else:
        print(f"zendesk-cdc: {exc}", file=sys.stderr)
