"""Settings of the streams processes (``PULSE_*`` environment variables), built at entry points."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PULSE_", extra="ignore")

    kafka_bootstrap: str = Field("127.0.0.1:9092", description="host:port[,host:port]")
    # Tansu completes a group join after ~session_timeout/2: keep it short for local runs.
    kafka_session_timeout_s: float = 6.0
    topic_raw: str = "pulse.events.raw"
    topic_enriched: str = "pulse.events.enriched"
    topic_counts: str = "pulse.counts.1m"
    topic_dlq: str = "pulse.events.dlq"
    partitions: int = Field(4, ge=1, description="partition count used when creating topics")


class WorkerSettings(KafkaSettings):
    app_id: str = Field("pulse-streams", description="faust app id = consumer group")
    user_id_secret: SecretStr = Field(..., description="HMAC key that pseudonymizes user ids")
    window_seconds: int = Field(60, ge=1)
    emit_interval_s: float = Field(1.0, gt=0, description="how often changed counts are emitted")
    data_dir: Path = Path(".pulse/streams")
    web_port: int = 6066
    web_bind: str = "127.0.0.1"
    log_level: str = "info"
