"""What each sink writes: topic, record, target table and columns (pure).

Enriched events and window counts are flat Avro records whose field names are the table's
column names: ClickHouse maps them by name (``FORMAT Avro``), and a record decoded in Python maps
onto the row without reshaping. Dead letters are not Avro: their rows come from their headers.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas import (
    ENRICHED_EVENT,
    ENRICHED_EVENT_BATCH,
    GROUP_INFO,
    WINDOW_COUNT,
    WINDOW_COUNT_BATCH,
)
from sinks import dead_letter_rows
from sinks.settings import SinkSettings


@dataclass(frozen=True)
class TableSpec:
    table: str  # in the Pulse database
    topic: str
    record: str | None  # Avro full name of one row's record; None: rows from headers (DLQ)
    columns: tuple[str, ...]
    batch: str | None = None  # Avro full name of a batch envelope of such records, if any
    batch_field: str = "events"  # the envelope's array field
    # Whether a message a streams worker sent twice is skipped (see ``repeats``). Counts need
    # not be: a window key's latest version wins.
    skip_repeats: bool = True
    # Whether its rows can name a person: an erased person's are kept out (``worker.scrub``).
    erasable: bool = False

    @property
    def avro(self) -> bool:
        return self.record is not None


EVENT_COLUMNS = (
    "event_id", "event_time", "received_at", "lateness_ms", "instance_id", "frontend_system",
    "session_id", "user_id", "plugin_id", "plugin_known", "plugin_title", "plugin_owner",
    "plugin_lifecycle", "plugin_package", "plugin_category", "extension", "extension_kind",
    "route_ref", "action", "subject", "value", "attributes", "entity_ref", "entity_kind",
    "entity_namespace", "entity_name", "search_types", "is_page_view", "source_partition",
    "source_offset", "groups", "user_verified",
)  # fmt: skip
COUNT_COLUMNS = (
    "window_start", "window_size_ms", "instance_id", "plugin_id", "extension", "action",
    "source_partition", "event_count", "value_sum", "version", "emitted_at",
)  # fmt: skip
GROUP_COLUMNS = (
    "ref", "type", "title", "parents", "ancestors", "members", "direct_members", "deleted",
    "synced_at",
)  # fmt: skip


def table_specs(settings: SinkSettings) -> dict[str, TableSpec]:
    return {
        "events": TableSpec(
            "events",
            settings.topic_enriched,
            ENRICHED_EVENT,
            EVENT_COLUMNS,
            ENRICHED_EVENT_BATCH,
            erasable=True,
        ),
        "counts_1m": TableSpec(
            "counts_1m",
            settings.topic_counts,
            WINDOW_COUNT,
            COUNT_COLUMNS,
            WINDOW_COUNT_BATCH,
            "counts",
            skip_repeats=False,
        ),
        "dead_letters": TableSpec(
            "dead_letters", settings.topic_dlq, None, dead_letter_rows.COLUMNS, erasable=True
        ),
        # A group's snapshot of a day replaces the day's earlier one: repeats change nothing.
        "group_members": TableSpec(
            "group_members", settings.topic_groups, GROUP_INFO, GROUP_COLUMNS, skip_repeats=False
        ),
    }
