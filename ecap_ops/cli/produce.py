"""`test-produce`: send one JSON message to a topic, as the setup guide does."""

import sys

import click

from ecap_ops.cli.app import CliContext, emit_json, guarded, main, output_option, pass_cli


def _read_bounded(stream, source: str) -> bytes:
    """At most MAX_INPUT_BYTES (+1, to tell that there was more) from a binary stream."""
    from ecap_ops.services.produce import MAX_INPUT_BYTES, MessageInvalid

    try:
        return stream.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise MessageInvalid(
            f"{source}: cannot be read: {exc.strerror or exc}; nothing was produced"
        ) from None


def message_text(message: str | None, file: str | None) -> str:
    """The message from the argument, --file PATH, or standard input (`-`, or no argument
    with stdin not a terminal), checked to be UTF-8 text."""
    from ecap_ops.services.produce import MessageInvalid, check_text, decode_message

    if message is not None and file is not None:
        raise MessageInvalid(
            "give the message once: as the JSON argument (or `-` for stdin) or with --file, not both; "
            "nothing was produced"
        )
    if file is not None:
        shown = click.format_filename(file)
        source = f"--file {shown}"
        try:
            with open(file, "rb") as fh:
                data = _read_bounded(fh, source)
        except FileNotFoundError:
            raise MessageInvalid(f"{source}: no such file; nothing was produced") from None
        except IsADirectoryError:
            raise MessageInvalid(f"{source}: is a directory; nothing was produced") from None
        except OSError as exc:
            raise MessageInvalid(
                f"{source}: cannot be read: {exc.strerror or exc}; nothing was produced"
            ) from None
        return decode_message(data, f"the message in {shown}")
    interactive = sys.stdin is None or sys.stdin.isatty()
    if message == "-" or (message is None and not interactive):
        data = _read_bounded(getattr(sys.stdin, "buffer", sys.stdin), "standard input")
        return decode_message(data, "the message on standard input")
    if message is None:
        raise MessageInvalid(
            "no message: give it as the JSON argument, with --file PATH, or on standard input "
            "(`-`, or pipe it in); nothing was produced"
        )
    check_text(message, "the message argument")
    return message


@main.command("test-produce")
@click.argument("topic")
@click.argument("message", metavar="[JSON|-]", required=False)
@click.option(
    "--file",
    "-f",
    "file",
    metavar="PATH",
    help="Read the message from this file (UTF-8 JSON), for big messages.",
)
@click.option(
    "--key",
    "-k",
    help="The record key. Default: the message's field named by the catalog's partition_key.",
)
@output_option
@pass_cli
@guarded
def test_produce_cmd(cli: CliContext, topic, message, file, key, output):
    """Send one JSON message to TOPIC and print the partition and offset it landed at.

    The message is the JSON argument, the file given with --file, or standard input (`-`, or
    no argument while stdin is a pipe or file). It must be UTF-8 JSON: no NaN or Infinity, no
    duplicate keys, nested at most 64 levels, within the topic's max.message.bytes. Anything
    else is refused and nothing is produced.
    """
    from ecap_ops.services.produce import test_produce

    text = message_text(message, file)
    catalog = cli.catalog()
    with cli.gateway() as gw:
        p = test_produce(gw, catalog, topic, text, key=key)
    if output == "json":
        emit_json(p.to_dict())
        return
    k = "none" if p.key is None else f"{p.key!r} (from {p.key_source})"
    click.echo(
        f"Produced to {p.topic} partition {p.partition} at offset {p.offset}; key {k}; {p.size_bytes:,} of {p.max_message_bytes:,} bytes allowed."
    )
