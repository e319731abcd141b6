"""Pulse data contracts: the Avro records every stage exchanges, and their wire formats.

A leaf package (stdlib + fastavro only): streams, sinks and producers all import it, it imports
none of them.
"""

from schemas.catalog import Catalog, Schema, default_catalog
from schemas.codec import Decoded, Decoder, Encoder
from schemas.errors import InvalidUtf8Error, SchemaError, UndecodableError, UnknownSchemaError

ANALYTICS_EVENT = "pulse.v1.AnalyticsEvent"
ANALYTICS_EVENT_BATCH = "pulse.v1.AnalyticsEventBatch"
ENRICHED_EVENT = "pulse.v1.EnrichedEvent"
ENRICHED_EVENT_BATCH = "pulse.v1.EnrichedEventBatch"
WINDOW_COUNT = "pulse.v1.WindowCount"
WINDOW_COUNT_BATCH = "pulse.v1.WindowCountBatch"
PLUGIN_INFO = "pulse.v1.PluginInfo"
PERSON = "pulse.v1.Person"
GROUP_INFO = "pulse.v1.GroupInfo"
ERASURE = "pulse.v1.Erasure"
# Batch envelope -> the record its `events` array holds.
BATCH_ITEMS = {
    ANALYTICS_EVENT_BATCH: ANALYTICS_EVENT,
    ENRICHED_EVENT_BATCH: ENRICHED_EVENT,
    WINDOW_COUNT_BATCH: WINDOW_COUNT,
}

__all__ = [
    "ANALYTICS_EVENT",
    "ANALYTICS_EVENT_BATCH",
    "BATCH_ITEMS",
    "ENRICHED_EVENT",
    "ENRICHED_EVENT_BATCH",
    "ERASURE",
    "GROUP_INFO",
    "PERSON",
    "PLUGIN_INFO",
    "WINDOW_COUNT",
    "WINDOW_COUNT_BATCH",
    "Catalog",
    "Decoded",
    "Decoder",
    "Encoder",
    "InvalidUtf8Error",
    "Schema",
    "SchemaError",
    "UndecodableError",
    "UnknownSchemaError",
    "default_catalog",
]
