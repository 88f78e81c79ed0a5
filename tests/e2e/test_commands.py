"""The other commands as a user runs them: `simulate` serves what `curl` can read with the
printed credentials; `run` without Kafka settings exits 2 naming the variable."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import httpx

from producer.broker import free_port
from tests.e2e.conftest import CLI, clean_env

CURL = re.compile(r"curl -u '([^']+)' '([^']+)'")


def test_simulate_serves_the_export_with_the_printed_credentials(tmp_path: Path) -> None:
    port = free_port()
    with subprocess.Popen(
        [CLI, "simulate", "--port", str(port), "--tickets", "25", "--seed", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=clean_env(),
        cwd=tmp_path,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            banner = process.stdout.readline() + process.stdout.readline()
            found = CURL.search(banner)
            assert found, banner
            user, url = found.groups()
            assert f"127.0.0.1:{port}" in url
            # what `curl -u user:password URL` sends: Basic auth split at the first colon
            login, _, password = user.partition(":")
            response = httpx.get(url, auth=(login, password), timeout=10)
            assert response.status_code == 200
            page = response.json()
            assert page["count"] == len(page["tickets"]) == 2  # per_page=2 in the printed URL
            assert page["end_of_stream"] is False
            assert "zendesk-ratelimit-incremental-exports" in response.headers
            assert httpx.get(url, auth=(login, "wrong"), timeout=10).status_code == 401
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(10)
    assert code == 0


def test_run_without_kafka_settings_exits_2_naming_the_variable(tmp_path: Path) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [CLI, "run", "--zendesk-url", "http://127.0.0.1:9", "--http-address", ""],
        env=clean_env(ZENDESK_CDC_ZENDESK_API_TOKEN="t0k3n-abc", ZENDESK_CDC_ZENDESK_EMAIL="a@b"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "ZENDESK_CDC_BOOTSTRAP_SERVERS" in done.stderr
    assert "t0k3n-abc" not in done.stderr
    assert time.monotonic() - started < 20
