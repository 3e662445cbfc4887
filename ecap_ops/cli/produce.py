"""`test-produce`: send one JSON message to a topic, as the setup guide does."""

import click

from ecap_ops.cli.app import CliContext, emit_json, guarded, main, output_option, pass_cli


@main.command("test-produce")
@click.argument("topic")
@click.argument("message", metavar="JSON")
@click.option(
    "--key",
    "-k",
    help="The record key. Default: the message's field named by the catalog's partition_key.",
)
@output_option
@pass_cli
@guarded
def test_produce_cmd(cli: CliContext, topic, message, key, output):
    """Send one JSON message to TOPIC and print the partition and offset it landed at."""
    from ecap_ops.services.produce import test_produce

    catalog = cli.catalog()
    with cli.gateway() as gw:
        p = test_produce(gw, catalog, topic, message, key=key)
    if output == "json":
        emit_json(p.to_dict())
        return
    k = "none" if p.key is None else f"{p.key!r} (from {p.key_source})"
    click.echo(
        f"Produced to {p.topic} partition {p.partition} at offset {p.offset}; key {k}; {p.size_bytes:,} of {p.max_message_bytes:,} bytes allowed."
    )
