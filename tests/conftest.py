"""Fixtures shared by every tier: a real Kafka-protocol broker over TCP.

Set ZENDESK_CDC_TEST_BOOTSTRAP_SERVERS to run the Kafka tests against an external
cluster instead of the embedded tansu broker.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, settings

from producer.broker import EmbeddedBroker

# Property tests judge behaviour, not speed: on a loaded 2-core CI machine generating a
# large ticket can take a second, which must not fail a test.
settings.register_profile(
    "zendesk-cdc", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("zendesk-cdc")

EXTERNAL_KAFKA = os.environ.get("ZENDESK_CDC_TEST_BOOTSTRAP_SERVERS")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """bootstrap.servers of a real broker: external if configured, else embedded tansu."""
    if EXTERNAL_KAFKA:
        yield EXTERNAL_KAFKA
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap_servers


@pytest.fixture
def fresh_broker() -> Iterator[str]:
    """A broker of this test's own, for tests that stop or restart it."""
    with EmbeddedBroker() as broker:
        yield broker.bootstrap_servers


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """Topic and transactional-id names no other test uses, so tests share one broker."""

    def make(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    return make
