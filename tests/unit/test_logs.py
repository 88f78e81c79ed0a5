"""Logs: JSON lines in containers, readable text on a terminal, and no secret, whatever
path it takes into a record (message, argument, extra field, exception)."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from producer.logs import REDACTED, SecretScrubber, configure_logging

TOKEN = "tok-3f9a2c7d1e"
PASSWORD = "pw-88aa41"
TEXT_LINE = re.compile(r"^\d\d:\d\d:\d\d (INFO|WARNING|ERROR)\s+\S+: ")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def log_everything(log: logging.Logger) -> None:
    log.info("plain line")
    log.info("token in the message %s", TOKEN)
    log.warning("password in extras", extra={"settings": {"sasl_password": PASSWORD}})
    try:
        raise RuntimeError(f"refused with Basic admin/token:{TOKEN}")
    except RuntimeError:
        log.exception("failed with the password %r", PASSWORD)


def test_json_lines_parse_and_carry_extras_without_secrets() -> None:
    stream = io.StringIO()
    configure_logging("json", "INFO", [TOKEN, PASSWORD], stream)
    log_everything(logging.getLogger("zendesk_cdc.test"))

    lines = stream.getvalue().splitlines()
    assert len(lines) == 4
    entries = [json.loads(line) for line in lines]
    assert [e["level"] for e in entries] == ["info", "info", "warning", "error"]
    assert {e["logger"] for e in entries} == {"zendesk_cdc.test"}
    assert entries[0]["msg"] == "plain line"
    assert entries[1]["msg"] == f"token in the message {REDACTED}"
    assert entries[2]["settings"] == {"sasl_password": REDACTED}
    assert "RuntimeError: refused with Basic admin/token:" + REDACTED in entries[3]["exc"]
    for line in lines:
        assert TOKEN not in line
        assert PASSWORD not in line
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$", json.loads(line)["ts"])


def test_json_keeps_unicode_readable() -> None:
    stream = io.StringIO()
    configure_logging("json", "INFO", [], stream)
    logging.getLogger("zendesk_cdc").info("délai 退款")
    assert json.loads(stream.getvalue())["msg"] == "délai 退款"
    assert "délai 退款" in stream.getvalue()


def test_text_when_forced_on_a_stream_that_is_not_a_terminal() -> None:
    stream = io.StringIO()
    configure_logging("text", "INFO", [TOKEN, PASSWORD], stream)
    log_everything(logging.getLogger("zendesk_cdc.test"))
    text = stream.getvalue()
    assert TOKEN not in text
    assert PASSWORD not in text
    starts = [line for line in text.splitlines() if TEXT_LINE.match(line)]
    assert len(starts) == 4  # the traceback lines belong to the last record
    assert f"settings={{'sasl_password': '{REDACTED}'}}" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


@pytest.mark.parametrize(("stream", "expect_json"), [(io.StringIO(), True), (Terminal(), False)])
def test_auto_is_json_off_a_terminal_and_text_on_one(
    stream: io.StringIO, expect_json: bool
) -> None:
    configure_logging("auto", "INFO", [], stream)
    logging.getLogger("zendesk_cdc").info("hello")
    line = stream.getvalue().splitlines()[0]
    if expect_json:
        assert json.loads(line)["msg"] == "hello"
    else:
        assert TEXT_LINE.match(line)


def test_level_filters_and_noisy_libraries_are_quieted() -> None:
    stream = io.StringIO()
    configure_logging("json", "WARNING", [], stream)
    logging.getLogger("zendesk_cdc").info("not shown")
    logging.getLogger("zendesk_cdc").warning("shown")
    configure_logging("json", "INFO", [], stream)
    logging.getLogger("httpx").info("HTTP Request: GET https://acme.zendesk.com/...")
    assert [json.loads(line)["msg"] for line in stream.getvalue().splitlines()] == ["shown"]


def test_reconfiguring_replaces_the_handler_instead_of_doubling_lines() -> None:
    stream = io.StringIO()
    configure_logging("json", "INFO", [], stream)
    configure_logging("json", "INFO", [], stream)
    logging.getLogger("zendesk_cdc").info("once")
    assert len(stream.getvalue().splitlines()) == 1


def test_scrubber_replaces_the_longest_secret_whole() -> None:
    scrub = SecretScrubber(["abcd", "abcd-efgh-ijkl"])
    assert scrub("x abcd-efgh-ijkl y abcd") == f"x {REDACTED} y {REDACTED}"


def test_scrubber_ignores_empty_and_tiny_values() -> None:
    # a 1-3 character "secret" would redact half of every line; real ones are longer
    scrub = SecretScrubber(["", "a", "ab", "abc"])
    assert scrub("a cab abc") == "a cab abc"
