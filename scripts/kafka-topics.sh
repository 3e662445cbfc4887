#!/usr/bin/env bash
# The setup guide's management script: passes its arguments straight to `ecap-ops`, so
# `./scripts/kafka-topics.sh create-topics`, `describe-topic transactions`, `health-check`
# and the rest work as written.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -x "$here/.venv/bin/ecap-ops" ]; then
  exec "$here/.venv/bin/ecap-ops" "$@"
fi
exec ecap-ops "$@"
