"""What every command shares: aligned tables, and exit codes scripts can rely on."""

import subprocess
import sys

from ecap_ops.cli.app import render_table


def test_table_aligns_columns_right_where_asked_and_strips_trailing_space():
    table = render_table(
        ["GROUP", "LAG", "NOTE"], [["checkout", "1,200", None], ["g", "5", "slow"]], right=(1,)
    )
    assert table == (
        "GROUP       LAG  NOTE\n--------  -----  ----\ncheckout  1,200\ng             5  slow"
    )


def test_table_with_no_rows_is_its_header():
    assert render_table(["A", "BB"], []) == "A  BB\n-  --"


def test_usage_errors_exit_1_never_2_which_means_changes_pending():
    for args in (["plan", "--no-such-flag"], ["describe-topic"], ["no-such-command"]):
        out = subprocess.run(
            [sys.executable, "-m", "ecap_ops", *args], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 1, (args, out.returncode, out.stderr)
        assert "Error:" in out.stderr


def _all_commands(group, ctx):
    import click

    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        yield cmd
        if isinstance(cmd, click.Group):
            yield from _all_commands(cmd, ctx)


def test_every_numeric_option_refuses_nan_and_infinity():
    """A plain click.FloatRange lets NaN through (it compares false with every bound): a
    `--interval nan` would spin a watch loop. Every float option is a FiniteRange."""
    import click
    from click.testing import CliRunner

    from ecap_ops.cli import main
    from ecap_ops.cli.app import FiniteRange

    ctx = click.Context(main)
    floats = [
        (cmd.name, p.name)
        for cmd in _all_commands(main, ctx)
        for p in cmd.params
        if isinstance(p.type, click.FloatRange) or p.type is click.FLOAT
    ]
    assert floats, "no float option found: the walk over the commands is broken"
    plain = [
        (c, n)
        for c, n in floats
        for cmd in _all_commands(main, ctx)
        if cmd.name == c
        for p in cmd.params
        if p.name == n and not isinstance(p.type, FiniteRange)
    ]
    assert plain == [], f"float options that accept NaN: {plain}"
    for value in ("nan", "inf", "-inf"):
        res = CliRunner().invoke(main, ["lag", "--watch", "--interval", value])
        # Exit 1 as for any other bad argument (`--budget 0`), with the reason.
        assert res.exit_code == 1, res.output
        assert "not a finite number" in res.output or "not in the range" in res.output
