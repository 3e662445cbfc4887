#!/usr/bin/env bash
# The setup guide's management script: passes its arguments straight to `ecap-ops`, so
# `./scripts/kafka-topics.sh create-topics`, `describe-topic transactions`, `health-check`
# and the rest work as written. Uses the project's .venv (`make setup` creates it), else an
# ecap-ops on PATH.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -x "$here/.venv/bin/ecap-ops" ]; then
  exec "$here/.venv/bin/ecap-ops" "$@"
fi
if command -v ecap-ops >/dev/null 2>&1; then
  exec ecap-ops "$@"
fi
echo "kafka-topics.sh: ecap-ops is not installed: run \`make setup\` in $here once (it creates .venv), then run this again." >&2
exit 1
