"""The Quix Streams peer for ``python -m streams bench`` (runs in its own virtualenv: quixstreams
pins an older confluent-kafka). The same job as the Pulse worker, written the way Quix's docs
recommend: expand each envelope into records, filter invalid ones, enrich, produce the enriched
events, and count per (window, instance, plugin, extension, action) with ``group_by`` and a
tumbling window on event time. It reuses Pulse's pure decode/validate/enrich functions.

The rate runs from the first input message to the moment 95% of ``--events`` were counted
(``current()`` emits one update per counted event), so it covers the whole job, the ``group_by``
repartition hop included. Prints ``QUIX t0=<epoch s> t95=<epoch s>``.
"""

from __future__ import annotations

import argparse
import sys
import time

from quixstreams import Application
from quixstreams.dataframe.windows import Count, Sum

from schemas import (
    ANALYTICS_EVENT,
    ANALYTICS_EVENT_BATCH,
    ENRICHED_EVENT,
    Decoder,
    Encoder,
    default_catalog,
)
from schemas.identity import Pseudonymizer
from streams.job.enrich import enrich
from streams.job.validate import Limits, ValidationError, validate


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("bootstrap", "topic", "out", "counts", "group", "state_dir"):
        parser.add_argument(f"--{name.replace('_', '-')}", required=True)
    parser.add_argument("--events", type=int, required=True)
    args = parser.parse_args()

    catalog = default_catalog()
    decode = Decoder(catalog, [ANALYTICS_EVENT, ANALYTICS_EVENT_BATCH])
    encode = Encoder(catalog.latest(ENRICHED_EVENT))
    pseudonymize = Pseudonymizer(b"benchmark-secret-0123456789")
    limits = Limits()
    seen = [0]
    marks: dict[str, float] = {}

    def expand(value: bytes) -> list[dict]:
        marks.setdefault("t0", time.time())
        record = decode(value)
        return record.get("events", [record])

    def valid(event: dict) -> bool:
        try:
            validate(event, int(time.time() * 1000), limits)
            return True
        except ValidationError:
            return False

    def enriched(event: dict) -> dict:
        out = enrich(
            event, partition=0, offset=0, now_ms=int(time.time() * 1000), pseudonymize=pseudonymize
        )
        out["value"] = out["value"] or 0.0
        return out

    def progress(_: dict) -> None:
        seen[0] += 1
        n = seen[0]
        if n == args.events * 95 // 100:
            print(f"QUIX t0={marks['t0']:.3f} t95={time.time():.3f}", flush=True)

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        commit_interval=1.0,
        state_dir=args.state_dir,
        consumer_extra_config={"session.timeout.ms": 6000},
        loglevel="WARNING",
    )
    raw = app.topic(args.topic, value_deserializer="bytes", key_deserializer="bytes")
    out = app.topic(args.out, value_serializer="bytes", key_serializer="bytes")
    counts = app.topic(args.counts, value_serializer="json", key_serializer="str")
    sdf = app.dataframe(raw)
    sdf = sdf.apply(expand, expand=True).filter(valid).apply(enriched)
    sdf.apply(encode).to_topic(out)
    sdf = sdf.set_timestamp(lambda value, key, ts, headers: value["event_time"])
    sdf = sdf.group_by(
        lambda v: f"{v['instance_id']}|{v['plugin_id']}|{v['extension']}|{v['action']}",
        name="window-key",
    )
    # Pulse keeps windows open for late events for an hour (PULSE_WINDOW_RETENTION_S); so does
    # this peer, or it would skip late events instead of counting them.
    window = sdf.tumbling_window(60_000, grace_ms=3_600_000)
    sdf = window.agg(count=Count(), value_sum=Sum("value")).current()
    sdf = sdf.update(progress)
    sdf.to_topic(counts)
    app.run()


if __name__ == "__main__":
    sys.exit(main())
