"""Pulse's topics and their idempotent creation (confluent-kafka admin)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_fixed

from streams.errors import KafkaUnavailableError
from streams.settings import KafkaSettings


def pulse_topics(settings: KafkaSettings) -> list[str]:
    return [settings.topic_raw, settings.topic_enriched, settings.topic_counts, settings.topic_dlq]


def event_topics(settings: KafkaSettings) -> list[str]:
    """The topics whose messages can name a person: bounded by PULSE_EVENTS_RETENTION_DAYS."""
    return [settings.topic_raw, settings.topic_enriched, settings.topic_dlq]


def apply_retention(admin: AdminClient, settings: KafkaSettings) -> str:
    """Set the event topics' ``retention.ms`` to PULSE_EVENTS_RETENTION_DAYS, or (0) remove the
    setting so that the broker's default applies; return what they keep."""
    days = settings.events_retention_days
    op = AlterConfigOpType.SET if days else AlterConfigOpType.DELETE
    value = str(days * 86_400_000) if days else None
    resources = [
        ConfigResource(ResourceType.TOPIC, name, incremental_configs=[
            ConfigEntry("retention.ms", value, incremental_operation=op)
        ])
        for name in event_topics(settings)
    ]  # fmt: skip
    for resource, future in admin.incremental_alter_configs(resources).items():
        try:
            future.result()
        except KafkaException as exc:
            raise KafkaUnavailableError(f"setting the retention of {resource.name}: {exc}") from exc
    kept = f"{days} days" if days else "the broker's retention.ms"
    return f"{', '.join(event_topics(settings))} keep {kept}"


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


def ensure_topics(
    admin: AdminClient,
    names: Iterable[str],
    partitions: int,
    replication: int = 1,
    config: dict[str, str] | None = None,
) -> list[str]:
    """Create the topics that do not exist yet and wait until every partition has a leader;
    return the names created. Replicated topics need two in-sync copies for a write
    (``acks=all``), so one broker may be down."""
    names = list(names)
    settings = {**_config(replication), **(config or {})}
    # A node killed and not yet fenced (9 s) can still be the controller librdkafka asks, and
    # the create then times out (test_broker.py::test_a_worker_starts_while_a_node_of_three
    # _is_down): ask again, as the metadata moves on to a live node.
    created = Retrying(
        retry=retry_if_exception(_timed_out),
        stop=stop_after_delay(CREATE_PATIENCE_S),
        wait=wait_fixed(1),
        reraise=True,
    )(_create, admin, names, partitions, replication, settings)
    wait_for_leaders(admin, names)
    return created


CREATE_PATIENCE_S = 60.0  # all attempts
CREATE_TIMEOUT_S = 15.0  # one attempt (librdkafka's default is a minute)


def _create(
    admin: AdminClient, names: list[str], partitions: int, replication: int, settings: dict
) -> list[str]:
    existing = set(admin.list_topics(timeout=10).topics)
    wanted = [n for n in names if n not in existing]
    futures = admin.create_topics([NewTopic(n, partitions, replication, config=settings)
                                   for n in wanted], request_timeout=CREATE_TIMEOUT_S
                                  ) if wanted else {}  # fmt: skip
    created = []
    for name, future in futures.items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise KafkaUnavailableError(f"creating topic {name}: {exc}") from exc
    return created


def _timed_out(exc: BaseException) -> bool:
    cause = exc.__cause__
    return (
        isinstance(exc, KafkaUnavailableError)
        and isinstance(cause, KafkaException)
        # librdkafka's local error codes are underscore-named in confluent-kafka's public API
        and cause.args[0].code() == KafkaError._TIMED_OUT
    )


def wait_for_leaders(admin: AdminClient, names: list[str], timeout_s: float = 60.0) -> None:
    """Until every partition of these topics has a leader. Kafka creates a topic's partitions
    asynchronously: a client that reads the metadata right after the create may find none,
    and a reader that assigned that empty list would never see a message."""
    deadline = time.monotonic() + timeout_s
    pending = list(names)
    while pending:
        topics = admin.list_topics(timeout=10).topics
        pending = [n for n in pending if not _led(topics.get(n))]
        if pending and time.monotonic() > deadline:
            raise KafkaUnavailableError(f"topics without partition leaders: {pending}")
        if pending:
            time.sleep(0.1)


def _led(meta: object) -> bool:
    if meta is None or meta.error is not None or not meta.partitions:  # type: ignore[attr-defined]
        return False
    return all(p.leader >= 0 for p in meta.partitions.values())  # type: ignore[attr-defined]


def _config(replication: int) -> dict[str, str]:
    return {"min.insync.replicas": str(2 if replication >= 3 else 1)}
