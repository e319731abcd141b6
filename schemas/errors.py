"""Errors of the schemas package. Each carries a stable ``reason`` code for dead letters."""


class SchemaError(Exception):
    """Root of every error this package raises."""

    reason = "schema_error"


class UndecodableError(SchemaError):
    """The bytes are not a valid encoding of the schema their header names."""

    reason = "undecodable"


class UnknownSchemaError(SchemaError):
    """The header names no schema this reader knows (bad magic, unknown fingerprint or id)."""

    reason = "unknown_schema"


class InvalidUtf8Error(UndecodableError):
    """A string field holds bytes that are not UTF-8."""

    reason = "invalid_utf8"
