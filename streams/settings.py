"""Settings of the streams processes (``PULSE_*`` environment variables), built at entry points."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.identity import Pseudonymizer
from streams.job.validate import Limits


class KafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PULSE_", extra="ignore")

    kafka_bootstrap: str = Field("127.0.0.1:9092", description="host:port[,host:port]")
    kafka_session_timeout_s: float = Field(
        10.0, gt=0, description="a member silent this long leaves the group (Kafka's own: 45)"
    )
    topic_raw: str = "pulse.events.raw"
    topic_enriched: str = "pulse.events.enriched"
    topic_counts: str = "pulse.counts.1m"
    topic_dlq: str = "pulse.events.dlq"
    topic_catalog: str = "pulse.catalog.plugins"
    topic_people: str = Field("pulse.catalog.people", description="each user's groups")
    topic_groups: str = Field("pulse.catalog.groups", description="each group's population")
    topic_erasures: str = Field("pulse.erasures", description="erased people's keyed ids")
    partitions: int = Field(4, ge=1, description="partition count used when creating topics")
    replication_factor: int = Field(
        1, ge=1, description="copies of each partition of topics Pulse (and faust) creates"
    )
    events_retention_days: int = Field(
        0, ge=0, description="the event topics keep messages this long (0: the broker's default)"
    )


class WorkerSettings(KafkaSettings):
    app_id: str = Field("pulse-streams", description="faust app id = consumer group")
    # An enriched envelope is ~14 KB: faust's default batch (16 KB) holds one, so every
    # message was its own batch. Larger batches and a short linger: 3-5% more events/s.
    producer_batch_bytes: int = Field(
        524_288, ge=16_384, le=1_000_000, description="largest producer batch per partition"
    )
    producer_linger_ms: int = Field(
        20, ge=0, le=1_000, description="how long the producer waits to fill a batch"
    )
    user_id_secret: SecretStr = Field(..., description="HMAC key that pseudonymizes user ids")
    window_seconds: int = Field(60, ge=1)
    window_retention_s: int = Field(3600, ge=0, description="late events within it correct counts")
    flush_interval_s: float = Field(1.0, gt=0, description="state persisted, counts emitted")
    max_unflushed_messages: int = Field(20_000, ge=1, description="flush early past this many")
    flush_deadline_s: float = Field(
        60.0,
        gt=0,
        description="a flush not delivered within it stops the worker (exit 1) for a restart",
    )
    dedup_horizon_s: int = Field(600, ge=0)
    dedup_max_ids: int = Field(1_000_000, ge=1, description="bounds de-duplication memory")
    max_message_bytes: int = 1_048_576
    max_batch_events: int = Field(1000, ge=1, le=1024)
    max_subject_bytes: int = 2048
    max_field_bytes: int = 512
    max_attributes: int = 64
    max_attribute_key_bytes: int = 128
    max_attribute_value_bytes: int = 1024
    max_future_skew_s: int = 300
    max_age_s: int = 7 * 24 * 3600
    processing_guarantee: str = Field("at_least_once", pattern="^(at_least_once|exactly_once)$")
    data_dir: Path = Path(".pulse/streams")
    web_port: int = 6066
    faust_metrics: bool = Field(True, description="faust's Prometheus sensors on /metrics")
    trace_flushes: bool = Field(
        False, description="log each flush's buckets and acked offsets (crash analysis)"
    )
    web_bind: str = "127.0.0.1"
    log_level: str = "info"

    def limits(self) -> Limits:
        return Limits(
            max_message_bytes=self.max_message_bytes,
            max_batch_events=self.max_batch_events,
            max_subject_bytes=self.max_subject_bytes,
            max_field_bytes=self.max_field_bytes,
            max_attributes=self.max_attributes,
            max_attribute_key_bytes=self.max_attribute_key_bytes,
            max_attribute_value_bytes=self.max_attribute_value_bytes,
            max_future_skew_ms=self.max_future_skew_s * 1000,
            max_age_ms=self.max_age_s * 1000,
        )


class CatalogSettings(KafkaSettings):
    """``python -m streams catalog sync``."""

    user_id_secret: SecretStr | None = Field(
        None, description="HMAC key for user refs (as the worker's); needed to sync people"
    )

    def keyer(self) -> Pseudonymizer:
        if self.user_id_secret is None:
            raise ValueError("PULSE_USER_ID_SECRET is needed to sync people (users are keyed)")
        return Pseudonymizer(self.user_id_secret.get_secret_value().encode())


class Sender(NamedTuple):
    """Who posts with a collector token: a Backstage instance, through a browser or through
    its backend (which takes the user from Backstage's credentials: ``verified``)."""

    instance: str
    verified: bool


class CollectorSettings(KafkaSettings):
    """``python -m streams collect``."""

    collector_port: int = 7007
    collector_bind: str = "127.0.0.1"
    collector_tokens: SecretStr = Field(
        ..., description="instance=token[,instance=token...]: one bearer token per Backstage"
    )
    collector_backend_tokens: SecretStr = Field(
        SecretStr(""),
        description="instance=token pairs held by Backstage backends (Pulse's backend plugin): "
        "the users of their events are verified by Backstage",
    )
    cors_origins: str = Field("", description="comma-separated browser origins allowed to POST")
    collector_exclude: str = Field(
        "", description="comma-separated user and group entity refs whose events are refused"
    )
    user_id_secret: SecretStr = Field(..., description="HMAC key for user refs (as the worker's)")
    max_request_bytes: int = Field(1_048_576, ge=1024)
    max_batch_events: int = Field(1000, ge=1, le=1024)
    rate_limit_events_per_s: float = Field(2000.0, gt=0, description="per instance, on average")
    rate_limit_burst: float = Field(10_000.0, gt=0, description="per instance, at once")
    delivery_timeout_s: float = Field(10.0, gt=0, description="Kafka must confirm within it")
    max_buffered_messages: int = Field(100_000, ge=1, description="producer queue bound")
    log_level: str = "info"

    def tokens(self) -> dict[str, Sender]:
        """token -> who sends with it."""
        out: dict[str, Sender] = {}
        kinds = ((self.collector_tokens, False), (self.collector_backend_tokens, True))
        for setting, verified in kinds:
            name = "PULSE_COLLECTOR_BACKEND_TOKENS" if verified else "PULSE_COLLECTOR_TOKENS"
            for pair in setting.get_secret_value().split(","):
                if not pair.strip() and verified:
                    continue
                instance, sep, token = pair.strip().partition("=")
                if not sep or not instance or len(token) < 16:
                    raise ValueError(f"{name}: instance=token pairs, tokens of 16+ chars")
                if token in out:
                    raise ValueError(f"{name}: a token is given twice")
                out[token] = Sender(instance, verified)
        return out

    @property
    def origins(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]
