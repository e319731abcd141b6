"""Pulse data contracts: the Avro records every stage exchanges, and their wire formats.

A leaf package (stdlib + fastavro only): streams, sinks and producers all import it, it imports
none of them.
"""

from schemas.catalog import Catalog, Schema, default_catalog
from schemas.codec import Decoded, Decoder, Encoder
from schemas.errors import SchemaError, UndecodableError, UnknownSchemaError

ANALYTICS_EVENT = "pulse.v1.AnalyticsEvent"
ENRICHED_EVENT = "pulse.v1.EnrichedEvent"
WINDOW_COUNT = "pulse.v1.WindowCount"

__all__ = [
    "ANALYTICS_EVENT",
    "ENRICHED_EVENT",
    "WINDOW_COUNT",
    "Catalog",
    "Decoded",
    "Decoder",
    "Encoder",
    "Schema",
    "SchemaError",
    "UndecodableError",
    "UnknownSchemaError",
    "default_catalog",
]
