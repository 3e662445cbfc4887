#!/usr/bin/env bash
# The setup guide's "start the development environment": local Kafka (KRaft, loopback)
# with the catalog's topics. `make run` does this and starts the Dagster UI too.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
make setup
.venv/bin/ecap-ops broker start "$@"
.venv/bin/ecap-ops create-topics
