#!/usr/bin/env python3
"""The setup guide's `python3 scripts/manage_kafka.py create-topics`: the same CLI as ecap-ops."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ecap_ops.cli import main  # noqa: E402

if __name__ == "__main__":
    main(prog_name="manage_kafka.py")
