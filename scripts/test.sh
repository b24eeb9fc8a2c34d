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
# The tests run in PUENTE_TEST_WORKERS processes (pytest-xdist; default 2, this machine's cores): most of an
# integration test's time is spent waiting on Kafka, not computing. Each worker past the first gets a local
# Kafka of its own (PUENTE_TEST_KAFKAS: their ports and PUENTE_HOMEs), as logins and cluster-wide ACLs are
# one per cluster.
workers=${PUENTE_TEST_WORKERS:-2}
case $workers in ''|*[!0-9]*|0) echo "test: PUENTE_TEST_WORKERS must be a whole number from 1 (got '$workers')" >&2; exit 2;; esac
port=${PUENTE_KAFKA_PORT:-19092}
homes=()
for ((i = 1; i < workers; i++)); do homes+=("$PWD/.puente/test-worker$i"); done
stop_kafka() {
  puente kafka down >/dev/null 2>&1 || true
  for home in "${homes[@]}"; do PUENTE_HOME=$home puente kafka down >/dev/null 2>&1 || true; done
}
trap stop_kafka EXIT

echo "== ruff"
ruff check . || status=1
echo "== mypy"
mypy || status=1
echo "== import layers"
lint-imports --no-cache || status=1
echo "== kafka"
pids=()
kafkas=""
for ((i = 1; i < workers; i++)); do
  mkdir -p "${homes[i-1]}"
  (PUENTE_HOME=${homes[i-1]} PUENTE_KAFKA_PORT=$((port + 20 * i)) puente kafka up >"${homes[i-1]}/up.log" 2>&1) &
  pids+=($!)
  kafkas+="$((port + 20 * i)):${homes[i-1]};"
done
if [ -n "$kafkas" ]; then export PUENTE_TEST_KAFKAS=$kafkas; fi  # none with one worker: an empty variable is refused
puente kafka up || exit 1
for ((i = 1; i < workers; i++)); do
  if ! wait "${pids[i-1]}"; then
    echo "test: the Kafka of test worker $i did not start:" >&2
    cat "${homes[i-1]}/up.log" >&2
    exit 1
  fi
done
eval "$(puente kafka env)"
echo "== pytest ($workers worker(s))"
parallel=()
[ "$workers" -gt 1 ] && parallel=(-n "$workers" --dist loadgroup)
# The slowest tests are listed at the end: what to look at first when the run nears CI's 30 minutes.
python -m pytest "${parallel[@]}" --durations=40 "$@"
rc=$?
# Exit code 5 means pytest collected no test: that is a failure here, not a pass.
[ $rc -ne 0 ] && status=1
echo "== test wall time: $(( $(date +%s) - started ))s"
exit $status
