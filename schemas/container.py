"""Avro object container files built from messages' bytes, without decoding a record.

A sink hands ClickHouse one container (``FORMAT Avro``) instead of decoding rows in Python. A
single-object message's body *is* one encoded record, and a batch envelope (a record whose only
field is an array) encodes as ``count, items..., 0``: its items are already a container block's
payload. So each message becomes one block, copied, and ClickHouse does the decoding.

Only what can be proved cheaply is taken: single-object framing with a known fingerprint, and
an envelope written as one array block (fastavro's way). Anything else raises
:class:`NotPassthroughError` and the caller decodes that message itself.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from typing import Any

from schemas.catalog import Catalog, Schema
from schemas.codec import SINGLE_OBJECT_HEADER_LEN, SINGLE_OBJECT_MAGIC
from schemas.errors import SchemaError

MAGIC = b"Obj\x01"
SYNC_SIZE = 16


class NotPassthroughError(SchemaError):
    reason = "not_passthrough"


def zigzag(n: int) -> bytes:
    """An Avro long: zig-zag, then base-128 varint."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read_long(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """(value, next position) of the Avro long at ``pos``."""
    shift = result = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise NotPassthroughError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7


@dataclass(frozen=True)
class ItemType:
    """The writer schema of one record as a container header carries it."""

    key: str  # identifies the schema: blocks with equal keys share a container
    definition: dict[str, Any] = field(compare=False, hash=False)


class ItemSchemas:
    """For each writer fingerprint of a record (and of its batch envelope): the item type."""

    def __init__(self, catalog: Catalog, record: str, batch: str | None = None) -> None:
        self._by_fp: dict[bytes, tuple[ItemType, bool]] = {}
        for schema in catalog.versions(record):
            self._by_fp[schema.fingerprint] = (_item_type(schema.definition), False)
        for schema in catalog.versions(batch) if batch else ():
            self._by_fp[schema.fingerprint] = (_item_type(_item_definition(schema)), True)

    def lookup(self, fingerprint: bytes) -> tuple[ItemType, bool] | None:
        return self._by_fp.get(fingerprint)


def _item_type(definition: dict[str, Any]) -> ItemType:
    return ItemType(json.dumps(definition, sort_keys=True, separators=(",", ":")), definition)


def _item_definition(batch: Schema) -> dict[str, Any]:
    fields = batch.definition["fields"]
    if len(fields) != 1 or not isinstance(fields[0]["type"], dict):
        raise ValueError(f"{batch.name} is not an envelope of one array field")
    items = fields[0]["type"].get("items")
    if not isinstance(items, dict):
        raise ValueError(f"{batch.name}: its items are not an inline record")
    return items


def block_of(message: bytes, items: ItemSchemas) -> tuple[ItemType, int, bytes]:
    """(item type, record count, block payload) of one message."""
    if message[:2] != SINGLE_OBJECT_MAGIC or len(message) <= SINGLE_OBJECT_HEADER_LEN:
        raise NotPassthroughError("not a single-object message")
    fp = bytes(message[2:SINGLE_OBJECT_HEADER_LEN])
    found = items.lookup(fp)
    if found is None:
        raise NotPassthroughError(f"fingerprint {fp.hex()} is not one of this table's records")
    item, is_batch = found
    if not is_batch:
        return item, 1, message[SINGLE_OBJECT_HEADER_LEN:]
    count, start = read_long(message, SINGLE_OBJECT_HEADER_LEN)
    if count <= 0 or message[-1] != 0:
        # An empty envelope, a block with a byte size, or not one block: decode it instead.
        raise NotPassthroughError("envelope is not one positive array block")
    # A multi-block array would also end in 0; its payload then holds more bytes than `count`
    # records and ClickHouse fails the block on the sync marker, so it cannot be misread.
    return item, count, message[start:-1]


class ContainerWriter:
    """Accumulates blocks of records of one writer schema into one object container."""

    def __init__(self, item: ItemType) -> None:
        self.item = item
        self.sync = os.urandom(SYNC_SIZE)
        self.records = 0
        self._buf = io.BytesIO()
        meta = {"avro.schema": json.dumps(item.definition).encode(), "avro.codec": b"null"}
        self._buf.write(MAGIC)
        self._buf.write(zigzag(len(meta)))
        for key, value in meta.items():
            self._buf.write(zigzag(len(key)) + key.encode())
            self._buf.write(zigzag(len(value)) + value)
        self._buf.write(b"\x00")
        self._buf.write(self.sync)

    def add_block(self, count: int, payload: bytes | memoryview) -> None:
        buf = self._buf
        buf.write(zigzag(count))
        buf.write(zigzag(len(payload)))
        buf.write(payload)
        buf.write(self.sync)
        self.records += count

    def getvalue(self) -> bytes:
        return self._buf.getvalue()
