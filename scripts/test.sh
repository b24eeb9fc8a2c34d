#!/usr/bin/env bash
# The README's test command: set up, start a local Kafka, lint, type-check, check the import layers, run
# every test, stop Kafka.
# Extra arguments go to pytest (e.g. scripts/test.sh -k codec).
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh || exit 1
export PATH="$PWD/.venv/bin:$PATH"

started=$(date +%s)
status=0
stop_kafka() { puente kafka down >/dev/null 2>&1 || true; }
trap stop_kafka EXIT

echo "== ruff"
ruff check . || status=1
echo "== mypy"
mypy || status=1
echo "== import layers"
lint-imports --no-cache || status=1
echo "== kafka"
puente kafka up || exit 1
eval "$(puente kafka env)"
echo "== pytest"
python -m pytest "$@"
rc=$?
# Exit code 5 means pytest collected no test: that is a failure here, not a pass.
[ $rc -ne 0 ] && status=1
echo "== test wall time: $(( $(date +%s) - started ))s"
exit $status
