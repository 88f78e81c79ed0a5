"""`zendesk-cdc run` as a user runs it: stop signals, exit codes, and what it writes to stderr.

The simulator is served from the test process on the real clock; the service is a real
subprocess with its probes on a free port. Every run is configured with secrets of each
kind, and no stderr line may contain one.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from producer.broker import EmbeddedBroker, free_port
from producer.simulator import SimulatorServer
from tests.e2e.conftest import CLI, CliRun, clean_env
from tests.e2e.support import scrape, wait_until

API_TOKEN = "sim-api-token-0123456789abcdef"
SASL_PASSWORD = "sasl-pw-7f3a9c1e"
OAUTH_CLIENT_SECRET = "oauth-client-secret-5d2b8e"
EXTRA_SASL_PASSWORD = "extra-sasl-pw-91c4d0"
SECRETS = (API_TOKEN, SASL_PASSWORD, OAUTH_CLIENT_SECRET, EXTRA_SASL_PASSWORD)
GRACE = 5.0  # far inside Kubernetes' default 30 s terminationGracePeriodSeconds
TEXT_LINE = re.compile(r"^\d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR)\s+\S+: ")


def run_args(
    zendesk_url: str, bootstrap: str, state: Path, *extra: str, log_format: str = "json"
) -> list[str]:
    """`run` flags; secrets go in half by environment (secret_env) and half by flag."""
    return [
        "run",
        "--zendesk-url", zendesk_url,
        "--zendesk-email", "admin@example.com",
        "--bootstrap-servers", bootstrap,
        "--topic", f"e2e-{state.name}-{time.monotonic_ns()}",
        "--state-dir", str(state),
        "--http-address", "{http}",
        "--log-format", log_format,
        "--requests-per-minute", "100",
        "--per-page", "100",
        "--sasl-password", SASL_PASSWORD,
        "--kafka-extra", json.dumps({"sasl.password": EXTRA_SASL_PASSWORD}),
        *extra,
    ]  # fmt: skip


def secret_env(token: str = API_TOKEN) -> dict[str, str]:
    return {
        "ZENDESK_CDC_ZENDESK_API_TOKEN": token,
        "ZENDESK_CDC_ZENDESK_OAUTH_CLIENT_SECRET": OAUTH_CLIENT_SECRET,
    }


def assert_clean_json(lines: list[str]) -> list[dict[str, object]]:
    assert lines, "no log lines at all"
    entries = []
    for line in lines:
        for secret in SECRETS:
            assert secret not in line
        entries.append(json.loads(line))  # every line, not just most
    return entries


def committed(run: CliRun) -> float:
    try:
        return scrape(run.http).value("zendesk_cdc_transactions_total", outcome="committed")
    except httpx.TransportError:
        return 0.0  # not serving yet


@pytest.mark.parametrize(
    ("signum", "phase"),
    [(signal.SIGTERM, "backfill"), (signal.SIGTERM, "idle"), (signal.SIGINT, "backfill")],
    ids=["sigterm-backfill", "sigterm-idle", "sigint-backfill"],
)
def test_stop_signal_exits_0_within_seconds(
    signum: signal.Signals,
    phase: str,
    sim_server: Callable[..., SimulatorServer],
    cli: Callable[..., CliRun],
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    # backfill: 2,000 tickets at 100 a page and 0.6 s a page keep it busy for ~12 s
    sim = sim_server(tickets=2000 if phase == "backfill" else 40)
    run = cli(run_args(sim.base_url, kafka_bootstrap, tmp_path / "state"), secret_env())
    pages = 2 if phase == "backfill" else 1
    wait_until(lambda: committed(run) >= pages, 30, f"{pages} committed pages")
    if phase == "idle":
        # caught up: the loop sits in its 60 s poll wait and asks Zendesk nothing
        asked = sim.simulator.request_count()
        time.sleep(1.0)
        assert sim.simulator.request_count() == asked
    assert run.process.poll() is None
    progressed = committed(run)

    sent = time.monotonic()
    run.process.send_signal(signum)
    code = run.wait(timeout=20)
    took = time.monotonic() - sent

    assert code == 0
    assert took < GRACE, f"took {took:.1f} s to stop"
    entries = assert_clean_json(run.stderr_lines())
    messages = [str(e["msg"]) for e in entries]
    assert f"received {signum.name}; finishing the transaction in flight" in messages
    assert messages[-1] == "stopped"
    if phase == "backfill":
        assert sim.simulator.request_count(status=200) < 20  # it really stopped mid-backfill
        assert progressed < 20


def test_sigterm_while_the_broker_is_gone_mid_commit_exits_0_within_seconds(
    sim_server: Callable[..., SimulatorServer], cli: Callable[..., CliRun], tmp_path: Path
) -> None:
    server = sim_server(tickets=2000)  # a backfill: a commit every 0.6 s
    with EmbeddedBroker() as broker:  # its own: the other tests share theirs
        args = run_args(server.base_url, broker.bootstrap_servers, tmp_path / "state")
        run = cli(args, secret_env())
        wait_until(lambda: committed(run) >= 1, 30, "a committed page")
        broker.stop()
        # a page costs 0.6 s to fetch: by now a commit waits on the broker that is gone
        time.sleep(1.0)
        assert run.process.poll() is None

        sent = time.monotonic()
        run.process.send_signal(signal.SIGTERM)
        code = run.wait(timeout=60)
        took = time.monotonic() - sent

    assert code == 0
    # unbounded, the changelog flush alone waits 10 s, a commit and its retries 40 s
    assert took < 6, f"took {took:.1f} s to stop"
    messages = [str(e["msg"]) for e in assert_clean_json(run.stderr_lines())]
    assert "received SIGTERM; finishing the transaction in flight" in messages
    assert any(m.startswith("stopped before the transaction in flight finished") for m in messages)
    assert messages[-1] == "stopped"


def test_401_exits_3_with_an_actionable_message(
    sim_server: Callable[..., SimulatorServer],
    cli: Callable[..., CliRun],
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    sim = sim_server(tickets=10, api_token="the-account-has-another-token")
    run = cli(run_args(sim.base_url, kafka_bootstrap, tmp_path / "s"), secret_env())
    assert run.wait(timeout=30) == 3
    lines = run.stderr_lines()
    assert_clean_json(lines)  # the reason to stop too is a JSON line, in JSON mode
    for line in lines:
        for secret in SECRETS:
            assert secret not in line
    assert "check the email and API token, or the OAuth token" in lines[-1]
    assert "401" in lines[-1]
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    assert any(
        e["level"] == "error" and "credentials rejected (401)" in str(e["msg"]) for e in logged
    )


@pytest.mark.parametrize("log_format", ["text", "auto"])
def test_log_format_text_when_forced_json_when_auto_on_a_pipe(
    log_format: str,
    sim_server: Callable[..., SimulatorServer],
    cli: Callable[..., CliRun],
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    sim = sim_server(tickets=10, api_token="the-account-has-another-token")
    args = run_args(sim.base_url, kafka_bootstrap, tmp_path / "s", log_format=log_format)
    run = cli(args, secret_env())
    assert run.wait(timeout=30) == 3
    logged = [line for line in run.stderr_lines() if not line.startswith("zendesk-cdc: ")]
    assert len(logged) >= 3
    for line in logged:
        for secret in SECRETS:
            assert secret not in line
        if log_format == "text":
            assert TEXT_LINE.match(line), line  # stderr is a file, not a TTY: forced
        else:
            json.loads(line)  # auto on a pipe/file means a container: JSON


# --- Kafka unreachable at start ---------------------------------------------------------

BrokerDownRun = tuple[int, list[str], float, str]  # exit code, stderr lines, seconds, bootstrap


@pytest.fixture(scope="module")
def broker_down_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> BrokerDownRun:
    """One run against a bootstrap address nothing listens on (it takes ~15 s: shared)."""
    tmp = tmp_path_factory.mktemp("broker-down")
    bootstrap = f"127.0.0.1:{free_port()}"
    args = run_args("http://127.0.0.1:9", bootstrap, tmp / "state")
    args = [a.replace("{http}", "") for a in args]
    started = time.monotonic()
    done = subprocess.run(
        [CLI, *args], env=clean_env(**secret_env()), capture_output=True, timeout=120, check=False
    )
    took = time.monotonic() - started
    return done.returncode, done.stderr.decode().splitlines(), took, bootstrap


def test_broker_down_at_start_exits_4_with_a_message(
    broker_down_run: BrokerDownRun,
) -> None:
    code, lines, took, _ = broker_down_run
    assert code == 4
    assert took < 60
    last = json.loads(lines[-1])  # the reason to stop is one JSON log line, like the rest
    assert last["level"] == "error"
    assert "topics" in last["msg"]
    for line in lines:
        for secret in SECRETS:
            assert secret not in line


def test_broker_down_message_names_the_bootstrap_servers(
    broker_down_run: BrokerDownRun,
) -> None:
    _, lines, _, bootstrap = broker_down_run
    assert bootstrap in lines[-1]


def test_broker_down_stderr_is_only_json(
    broker_down_run: BrokerDownRun,
) -> None:
    _, lines, _, _ = broker_down_run
    assert_clean_json(lines)
