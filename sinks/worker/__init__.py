"""The sink workers: one consumer group per table; consume, batch, insert, then commit.

Per flush, for each partition's run of messages (``batch.Run``):
1. record the run's offset range as an insert intent (``intents``),
2. insert it under the token ``topic:partition:first-last`` (``write``, ``insert``),
3. send dead letters and wait for them, then commit the offsets (``flush``).
A killed sink leaves an intent at its partitions' committed offsets; the next owner rebuilds
exactly those runs (``takeover``), whose tokens make ClickHouse drop what was already inserted.
A transient ClickHouse failure keeps the run and retries with backoff (never committing past
it); rows ClickHouse rejects as bad data are isolated by halving and dead-lettered alone.
"""

from sinks.worker.insert import INSERT_SETTINGS
from sinks.worker.stats import SinkStats
from sinks.worker.table_sink import TableSink

__all__ = ["INSERT_SETTINGS", "SinkStats", "TableSink"]
