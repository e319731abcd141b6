"""The ClickHouse schema: versioned migrations and their cluster rendering."""
