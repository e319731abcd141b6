"""An erased person's events taken out of a run before it is written.

A message that names an erased id is decoded; that person's events are dead-lettered (the id
only) and the rest re-encoded with the message's own writer schema, so the run assembles into
the same containers, under the same tokens, as it did before the erasure: a replay of a run
first written before the erasure is dropped as that run's repeat, never written twice."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Message

from schemas import Decoder, Encoder, SchemaError, default_catalog
from schemas.container import ItemSchemas, ItemType, NotPassthroughError, block_of
from sinks.tables import TableSpec
from sinks.worker.dead_letters import DeadLetters
from sinks.worker.erasures import named


class Scrubbed:
    """A consumed message whose value is replaced (everything else is the message's)."""

    __slots__ = ("_msg", "_value")

    def __init__(self, msg: Message, value: bytes) -> None:
        self._msg, self._value = msg, value

    def value(self) -> bytes:
        return self._value

    @property
    def original(self) -> bytes:
        return self._msg.value() or b""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._msg, name)


class Scrub:
    def __init__(self, spec: TableSpec, dead_letters: DeadLetters) -> None:
        assert spec.record is not None
        catalog = default_catalog()
        self._decoder = Decoder(catalog, [spec.record] + ([spec.batch] if spec.batch else []))
        self._batch, self._field = spec.batch, spec.batch_field
        self._latest_batch = catalog.latest(spec.batch) if spec.batch else None
        self._encoders: dict[bytes, Encoder] = {}
        self._dead_letters = dead_letters

    def __call__(self, messages: list[Message], erased: frozenset[str]) -> list[Message]:
        """The run's messages, those naming an erased id replaced by what remains of them."""
        if not erased:
            return messages
        return [self._one(msg, erased) for msg in messages]

    def _one(self, msg: Message, erased: frozenset[str]) -> Message:
        value = msg.value() or b""
        if not named(value, erased):
            return msg
        try:
            decoded = self._decoder.decode(value)
        except SchemaError:  # dead-lettered as undecodable; the dead_letters sink strips it
            return msg
        is_batch = decoded.writer.name == self._batch
        records = decoded.record[self._field] if is_batch else [decoded.record]
        kept = []
        for index, record in enumerate(records):
            user_id = record.get("user_id") or ""
            if user_id in erased:
                self._dead_letters.erased(msg, index if is_batch else None, user_id)
            else:
                kept.append(record)
        if len(kept) == len(records):  # the id was elsewhere (a subject, an attribute)
            return msg
        # A lone record with nothing left becomes an empty envelope: a message with no rows
        # (``write.assemble`` files it, rowless, in its original's container).
        writer = decoded.writer if is_batch or kept else self._latest_batch
        assert writer is not None
        encode = self._encoders.get(writer.fingerprint)
        if encode is None:
            encode = self._encoders[writer.fingerprint] = Encoder(writer)
        return Scrubbed(msg, encode({self._field: kept} if writer.name == self._batch else kept[0]))


def block(msg: Message, items: ItemSchemas) -> tuple[ItemType, int, bytes]:
    """``schemas.container.block_of`` the message; a scrubbed one in the container of the
    message it was, even with no rows left (so the run's containers keep their numbers)."""
    if not isinstance(msg, Scrubbed):
        return block_of(msg.value() or b"", items)
    item, _, _ = block_of(msg.original, items)
    try:
        _, count, payload = block_of(msg.value(), items)
    except NotPassthroughError:  # an empty envelope
        return item, 0, b""
    return item, count, payload
