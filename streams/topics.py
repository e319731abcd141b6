"""Pulse's topics and their idempotent creation (confluent-kafka admin)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from streams.errors import KafkaUnavailableError
from streams.settings import KafkaSettings

# Tansu returns no topic configs (DescribeConfigs is empty), so state the ones clients read.
_DEFAULT_CONFIG = {"retention.ms": "604800000", "retention.bytes": "-1"}


def pulse_topics(settings: KafkaSettings) -> list[str]:
    return [settings.topic_raw, settings.topic_enriched, settings.topic_counts, settings.topic_dlq]


def wait_for_broker(bootstrap: str, timeout_s: float = 60.0) -> AdminClient:
    """Return an admin client once the cluster answers a metadata request."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            admin.list_topics(timeout=2)
            return admin
        except KafkaException as exc:
            last = exc
            time.sleep(0.2)
    raise KafkaUnavailableError(f"no Kafka broker at {bootstrap} after {timeout_s:.0f}s: {last}")


def ensure_topics(admin: AdminClient, names: Iterable[str], partitions: int) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    existing = set(admin.list_topics(timeout=10).topics)
    wanted = [n for n in names if n not in existing]
    if not wanted:
        return []
    futures = admin.create_topics(
        [NewTopic(n, partitions, 1, config=dict(_DEFAULT_CONFIG)) for n in wanted]
    )
    created = []
    for name, future in futures.items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise KafkaUnavailableError(f"creating topic {name}: {exc}") from exc
    return created
