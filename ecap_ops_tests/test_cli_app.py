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
