"""``python -m schemas check``: every schema parses, and each version reads the one before.

Compatibility is proven by writing generated records with version N-1 and reading them with
version N (Avro schema resolution); a new field without a default, a removed enum symbol or a
changed type fails here before it can break a consumer.
"""

from __future__ import annotations

import io
import itertools
import sys

import click
from fastavro import schemaless_reader, schemaless_writer
from fastavro.utils import generate_many

from schemas import BATCH_ITEMS
from schemas.catalog import Catalog, default_catalog, load_schema


@click.group()
def cli() -> None:
    """Pulse data contracts."""


@cli.command()
@click.option("--samples", default=50, show_default=True, help="Records generated per check.")
def check(samples: int) -> None:
    """Prove every schema parses and each version can read the previous one."""
    catalog = default_catalog()
    failures = 0
    for name in catalog.names():
        versions = catalog.versions(name)
        click.echo(f"{name}: versions {[s.version for s in versions]}")
        for older, newer in itertools.pairwise(versions):
            try:
                for record in generate_many(older.parsed, samples):
                    buf = io.BytesIO()
                    schemaless_writer(buf, older.parsed, record)
                    buf.seek(0)
                    schemaless_reader(buf, older.parsed, newer.parsed)
                click.echo(f"  v{newer.version} reads v{older.version}: ok")
            except Exception as exc:
                failures += 1
                click.echo(f"  v{newer.version} reads v{older.version}: FAIL {exc!r}", err=True)
    failures += _check_batch_items(catalog)
    sys.exit(1 if failures else 0)


def _check_batch_items(catalog: Catalog) -> int:
    """A batch envelope inlines its item record: it must equal a released version of it."""
    failures = 0
    for batch_name, item_name in BATCH_ITEMS.items():
        released = {s.fingerprint: s.version for s in catalog.versions(item_name)}
        for batch in catalog.versions(batch_name):
            items = batch.definition["fields"][0]["type"]["items"]
            fp = load_schema(items).fingerprint
            if fp in released:
                click.echo(f"  {batch_name} v{batch.version} holds {item_name} v{released[fp]}: ok")
            else:
                failures += 1
                click.echo(f"  {batch_name} v{batch.version}: items match no {item_name}", err=True)
    return failures


if __name__ == "__main__":
    cli()
