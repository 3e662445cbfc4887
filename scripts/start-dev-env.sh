#!/usr/bin/env bash
# The setup guide's "start the development environment": local Kafka (KRaft, loopback)
# with the catalog's topics. `make run` does this and starts the Dagster UI too.
# Arguments go to `ecap-ops broker start` (e.g. --port 19092); the topics are created on
# the broker that actually runs, whatever port it has.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
make setup
.venv/bin/ecap-ops broker start "$@"
data_dir=()
for ((i = 1; i <= $#; i++)); do
  if [ "${!i}" = "--data-dir" ]; then
    j=$((i + 1))
    data_dir=(--data-dir "${!j}")
  fi
done
bootstrap="$(.venv/bin/ecap-ops broker status "${data_dir[@]}" -o json |
  .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["bootstrap_servers"])')"
KAFKA_BOOTSTRAP_SERVERS="$bootstrap" .venv/bin/ecap-ops create-topics
echo "export KAFKA_BOOTSTRAP_SERVERS=$bootstrap"
