"""Pulse sinks: Kafka topics into ClickHouse tables, migrations, and SQL access for analysts."""
