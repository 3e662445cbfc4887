#!/usr/bin/env python3
"""The setup guide's `python3 scripts/manage_kafka.py create-topics`: the same CLI as ecap-ops.

Works with whichever Python runs it: under any interpreter other than the project's
`.venv`, it hands over to `.venv/bin/python` when that exists (`make setup` creates it);
otherwise it uses ecap-ops from the running Python if installed there, and if not, says
in one line how to get it.
"""

import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_PYTHON = os.path.join(ROOT, ".venv", "bin", "python")
# Set on the hand-over, so a venv that is not what it seems cannot make it loop.
HANDED_OVER = "ECAP_OPS_MANAGE_KAFKA_HANDED_OVER"
# What the commands import besides the standard library.
NEEDED = ("click", "yaml", "kafka")


def _in_project_venv() -> bool:
    return os.path.realpath(sys.prefix) == os.path.realpath(os.path.join(ROOT, ".venv"))


if __name__ == "__main__":
    if (
        not _in_project_venv()
        and os.access(VENV_PYTHON, os.X_OK)
        and not os.environ.get(HANDED_OVER)
    ):
        script = os.path.abspath(__file__)
        try:
            os.execve(
                VENV_PYTHON, [VENV_PYTHON, script, *sys.argv[1:]], {**os.environ, HANDED_OVER: "1"}
            )
        except OSError as exc:
            sys.exit(
                f"manage_kafka.py: cannot run {VENV_PYTHON} ({exc.strerror}); "
                f"run `make setup` in {ROOT} to recreate it"
            )
    sys.path.insert(0, ROOT)
    absent = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    if absent:
        sys.exit(
            f"manage_kafka.py: {sys.executable} lacks ecap-ops' dependencies "
            f"(no module {', '.join(absent)}): run `make setup` in {ROOT} once "
            "(it creates .venv with them), then run this again."
        )
    from ecap_ops.cli import main

    main(prog_name="manage_kafka.py")
