#!/usr/bin/env bash
# The README's first command: set up, start a local Kafka, run Puente's demo end to end, stop Kafka.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh || exit 1
export PATH="$PWD/.venv/bin:$PATH"
trap 'puente kafka down >/dev/null 2>&1 || true' EXIT
puente kafka up || exit 1
eval "$(puente kafka env)"
puente demo "$@"
