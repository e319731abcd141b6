"""Wire formats: Avro single-object encoding (default) and Confluent framing (with a registry).

Single-object: ``C3 01`` + 8-byte CRC-64-AVRO fingerprint + Avro body; no registry needed.
Confluent: ``00`` + 4-byte big-endian schema id + Avro body; the writer schema comes from a
registry lookup the caller injects. Decoders take either, chosen by the first byte, and resolve
the writer schema to the newest reader version of the expected record.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from schemas.catalog import Catalog, Schema
from schemas.errors import InvalidUtf8Error, UndecodableError, UnknownSchemaError

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
SINGLE_OBJECT_HEADER_LEN = 10
CONFLUENT_MAGIC = 0
CONFLUENT_HEADER_LEN = 5

RegistryLookup = Callable[[int], Schema]
"""Returns the writer schema registered under a Confluent schema id (raises if unknown)."""


class Encoder:
    """Callable: record dict -> single-object-encoded bytes."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._header = SINGLE_OBJECT_MAGIC + schema.fingerprint
        self._parsed = schema.parsed

    def __call__(self, record: dict[str, Any]) -> bytes:
        buf = io.BytesIO()
        buf.write(self._header)
        schemaless_writer(buf, self._parsed, record)
        return buf.getvalue()


@dataclass(frozen=True)
class Decoded:
    record: dict[str, Any]
    writer: Schema


class Decoder:
    """Callable: bytes -> record dict, for messages of the record ``names`` (one or several).

    Each message is read with the newest version of its writer's record (Avro schema
    resolution). Raises :class:`UnknownSchemaError` for bad magic, an unknown fingerprint/id or
    another record, :class:`InvalidUtf8Error` for a string that is not UTF-8, and
    :class:`UndecodableError` for a body that does not decode (truncated, corrupt, trailing bytes).
    """

    def __init__(
        self,
        catalog: Catalog,
        names: str | Iterable[str],
        registry_lookup: RegistryLookup | None = None,
    ) -> None:
        self._catalog = catalog
        self._names = {names} if isinstance(names, str) else set(names)
        self._readers = {name: catalog.latest(name) for name in self._names}
        self._registry_lookup = registry_lookup

    def __call__(self, data: bytes) -> dict[str, Any]:
        return self.decode(data).record

    def decode(self, data: bytes) -> Decoded:
        writer, offset = self._writer_for(data)
        latest = self._readers[writer.name]
        reader = None if writer.fingerprint == latest.fingerprint else latest.parsed
        buf = io.BytesIO(data)
        buf.seek(offset)
        try:
            record = schemaless_reader(buf, writer.parsed, reader)
        except UnicodeDecodeError as exc:
            raise InvalidUtf8Error(f"{writer.name} v{writer.version}: {exc}") from exc
        except Exception as exc:  # fastavro raises EOFError, ValueError, IndexError, ...
            raise UndecodableError(f"{writer.name} v{writer.version}: {exc!r}") from exc
        if buf.tell() != len(data):
            raise UndecodableError(
                f"{writer.name} v{writer.version}: {len(data) - buf.tell()} trailing bytes"
            )
        return Decoded(record, writer)

    def _writer_for(self, data: bytes) -> tuple[Schema, int]:
        if data[:2] == SINGLE_OBJECT_MAGIC:
            if len(data) < SINGLE_OBJECT_HEADER_LEN:
                raise UndecodableError(f"truncated single-object header ({len(data)} bytes)")
            fp = bytes(data[2:SINGLE_OBJECT_HEADER_LEN])
            writer = self._catalog.by_fingerprint(fp)
            if writer is None:
                raise UnknownSchemaError(f"unknown schema fingerprint {fp.hex()}")
            offset = SINGLE_OBJECT_HEADER_LEN
        elif data[:1] == bytes([CONFLUENT_MAGIC]) and self._registry_lookup is not None:
            if len(data) < CONFLUENT_HEADER_LEN:
                raise UndecodableError(f"truncated Confluent header ({len(data)} bytes)")
            schema_id = int.from_bytes(data[1:CONFLUENT_HEADER_LEN], "big")
            try:
                writer = self._registry_lookup(schema_id)
            except Exception as exc:
                raise UnknownSchemaError(f"schema id {schema_id}: {exc}") from exc
            offset = CONFLUENT_HEADER_LEN
        else:
            raise UnknownSchemaError(f"unknown wire format (first bytes {bytes(data[:2]).hex()!r})")
        if writer.name not in self._names:
            raise UnknownSchemaError(
                f"expected {' or '.join(sorted(self._names))}, got {writer.name}"
            )
        return writer, offset
