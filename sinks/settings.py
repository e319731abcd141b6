"""Settings of the sink processes (``PULSE_*`` environment variables), built at entry points."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sinks.query.credentials import parse_tokens
from sinks.query.limits import QueryLimits


def _default_clickhouse_url() -> str:
    return "chdb://" + str(Path(".pulse/clickhouse").resolve())


class QueryPortSettings(BaseSettings):
    """The query port: where it listens, who may read, and the limits of analysts' queries."""

    model_config = SettingsConfigDict(env_prefix="PULSE_", extra="ignore")

    query_url: str = Field(
        "http://127.0.0.1:8124",
        description="where the process owning an embedded chDB serves read-only SQL",
    )
    query_port: int = Field(8124, description="read-only SQL and the dashboard are served here")
    query_bind: str = "127.0.0.1"
    query_admin_token: SecretStr | None = Field(
        None, description="bearer token that may run writing statements on the query port"
    )
    query_read_tokens: SecretStr | None = Field(
        None, description="read tokens of the query port, one per consumer: name=token,name=token"
    )
    query_token_file: Path | None = Field(
        Path(".pulse/query-token"),
        description="a file holding one more read token, 'local' (make run writes it)",
    )
    query_token: SecretStr | None = Field(
        None, description="the token the CLI sends (default: the one in PULSE_QUERY_TOKEN_FILE)"
    )
    query_max_concurrent: int = Field(
        4, ge=1, description="analyst queries run at once; beyond it the query port answers 429"
    )
    query_max_execution_s: float = Field(60.0, gt=0, description="an analyst query's time limit")
    query_max_memory_bytes: int = Field(1 << 30, ge=1 << 20, description="per analyst query")
    query_max_rows_to_read: int = Field(1_000_000_000, ge=1)
    query_max_bytes_to_read: int = Field(20 << 30, ge=1)
    query_max_result_rows: int = Field(1_000_000, ge=1)
    query_max_result_bytes: int = Field(128 << 20, ge=1)
    query_max_threads: int = Field(
        2, ge=1, description="threads per analyst query (the rest stay with ingestion)"
    )
    min_group_size: int = Field(
        5, ge=1, description="no saved question publishes a figure about fewer people than this"
    )

    def query_limits(self) -> QueryLimits:
        return QueryLimits(
            max_execution_s=self.query_max_execution_s,
            max_memory_bytes=self.query_max_memory_bytes,
            max_rows_to_read=self.query_max_rows_to_read,
            max_bytes_to_read=self.query_max_bytes_to_read,
            max_result_rows=self.query_max_result_rows,
            max_result_bytes=self.query_max_result_bytes,
            max_threads=self.query_max_threads,
        )

    def read_tokens(self) -> dict[str, str]:
        """Consumer name -> read token: PULSE_QUERY_READ_TOKENS, and the token file's as local."""
        text = self.query_read_tokens.get_secret_value() if self.query_read_tokens else ""
        tokens = parse_tokens(text)
        local = self._file_token()
        if local:
            tokens.setdefault("local", local)
        return tokens

    def client_token(self) -> str | None:
        """What a client of the query port (the CLI) sends."""
        if self.query_token:
            return self.query_token.get_secret_value()
        return self._file_token()

    def _file_token(self) -> str | None:
        if self.query_token_file is None or not self.query_token_file.is_file():
            return None
        return self.query_token_file.read_text().strip() or None


class ClickHouseSettings(QueryPortSettings):
    model_config = SettingsConfigDict(env_prefix="PULSE_", extra="ignore")

    clickhouse_url: str = Field(
        default_factory=_default_clickhouse_url,
        description="chdb:///path (embedded) or http(s)://user:pass@host:port (server)",
    )
    database: str = "pulse"
    clickhouse_password: SecretStr | None = Field(
        None, description="overrides the URL's password (keep secrets out of URLs and logs)"
    )
    clickhouse_verify: bool = Field(True, description="verify the server's TLS certificate")
    clickhouse_ca_cert: str | None = Field(None, description="CA bundle file for https://")
    clickhouse_client_cert: str | None = Field(None, description="client certificate (mTLS)")
    clickhouse_client_cert_key: str | None = None
    clickhouse_connect_timeout_s: float = Field(10.0, gt=0)
    clickhouse_send_receive_timeout_s: float = Field(300.0, gt=0)
    clickhouse_cluster: str | None = Field(
        None, description="cluster mode: DDL ON CLUSTER, Replicated and Distributed tables"
    )
    events_retention_days: int = Field(
        0, ge=0, description="events and dead letters kept this long (0: events forever)"
    )
    rollups_retention_days: int = Field(
        0, ge=0, description="rollups, counts and group snapshots kept this long (0: forever)"
    )

    @field_validator("database")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError("database must be a plain identifier")
        return value

    @property
    def embedded(self) -> bool:
        return self.clickhouse_url.startswith("chdb:")

    def connect_options(self) -> dict[str, object]:
        """clickhouse-connect keyword arguments for a server URL (TLS, timeouts, password)."""
        options: dict[str, object] = {
            "verify": self.clickhouse_verify,
            "connect_timeout": self.clickhouse_connect_timeout_s,
            "send_receive_timeout": self.clickhouse_send_receive_timeout_s,
        }
        for name in ("ca_cert", "client_cert", "client_cert_key"):
            value = getattr(self, f"clickhouse_{name}")
            if value:
                options[name] = value
        if self.clickhouse_password is not None:
            options["password"] = self.clickhouse_password.get_secret_value()
        return options


class SinkSettings(ClickHouseSettings):
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_session_timeout_s: float = Field(
        10.0, gt=0, description="a member silent this long leaves the group (Kafka's own: 45)"
    )
    topic_enriched: str = "pulse.events.enriched"
    topic_counts: str = "pulse.counts.1m"
    topic_dlq: str = "pulse.events.dlq"
    topic_groups: str = Field("pulse.catalog.groups", description="each group's population")
    topic_people: str = Field("pulse.catalog.people", description="each user's groups")
    topic_erasures: str = Field("pulse.erasures", description="erased people's keyed ids")
    user_id_secret: SecretStr | None = Field(
        None, description="the workers' HMAC key: erasing by entity ref keys the ref with it"
    )
    erasure_wait_s: float = Field(
        300.0, gt=0, description="how long an erasure waits for the sinks to pass its mark"
    )
    group_prefix: str = Field("pulse-sink", description="consumer group = <prefix>-<table>")
    # Each partition run is one insert and one part per table: small runs mean many parts and
    # merges (sink bench: 73-85k events/s per core at 20,000 rows, 106-112k at 100,000). Under
    # light load batches close by age long before this.
    batch_rows: int = Field(100_000, ge=1)
    batch_age_s: float = Field(0.5, gt=0, description="flush a non-empty batch this old")
    flush_deadline_s: float = Field(
        60.0, gt=0, description="a flush step (insert attempt, dead letters, commit) longer exits"
    )
    insert_parallelism: int = Field(2, ge=1, description="partition runs inserted at once")
    consumers: int = Field(
        1, ge=1, description="group members per table in this process (chDB: one process only)"
    )
    avro_passthrough: bool = Field(
        True, description="hand Avro messages to ClickHouse undecoded (False: decode in Python)"
    )
    repeat_window: int = Field(
        5000,
        ge=0,
        description="messages per partition remembered to skip a streams worker's repeats "
        "(and re-read on assignment); 0 turns it off",
    )
    metrics_port: int = Field(9465, ge=0, description="Prometheus /metrics; 0 turns it off")
    metrics_bind: str = "127.0.0.1"
