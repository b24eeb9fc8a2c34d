#!/usr/bin/env bash
# Puente's benchmarks: policy, crypto and in-process pipeline CPU costs (when those benches exist), then the broker end to end
# (bench/bench_broker.py) and the audit index at a million decisions (bench/bench_audit_index.py), on
# the Kafka that PUENTE_CLIENT_CONFIG (with PUENTE_BOOTSTRAP) names when set, else on the local Kafka, which is started here if it is not running (and stopped again only if it
# was started here) and pointed at with `eval "$(puente kafka env)"`: Puente has no default Kafka.
#
#   scripts/bench.sh                      # full run (a few minutes at most)
#   scripts/bench.sh --quick              # smoke run, about a minute
#   scripts/bench.sh --json FILE          # also: the broker results line goes to FILE
#
# Arguments other than --quick go to bench_broker.py. Uses .venv (see scripts/setup.sh or `make setup`);
# PYTHON=/path/to/python overrides it.
set -uo pipefail
cd "$(dirname "$0")/.."

quick=()
broker_args=()
for arg in "$@"; do
  if [ "$arg" = "--quick" ]; then
    quick=(--quick)
  else
    broker_args+=("$arg")
  fi
done

if [ -n "${PYTHON:-}" ]; then
  PY=$PYTHON
  PUENTE=("$PY" -m puente.cli)
else
  PY=.venv/bin/python
  PUENTE=(.venv/bin/puente)
fi
if ! command -v "$PY" >/dev/null 2>&1 && [ ! -x "$PY" ]; then
  echo "bench: $PY not found: run scripts/setup.sh (or make setup) first, or set PYTHON" >&2
  exit 1
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

started_kafka=0
stop_kafka() {
  if [ "$started_kafka" = 1 ]; then
    echo "== stopping the Kafka this script started"
    "${PUENTE[@]}" kafka down >/dev/null 2>&1 || true
  fi
}
trap stop_kafka EXIT
trap 'exit 130' INT TERM

failed=()
run() {
  local name=$1
  shift
  echo
  echo "== $name"
  local t0=$SECONDS
  if "$@"; then
    echo "== $name: done in $((SECONDS - t0))s"
  else
    echo "== $name: FAILED (exit $?)" >&2
    failed+=("$name")
  fi
}

for bench in bench/bench_policy.py bench/bench_crypto.py bench/bench_pipeline.py; do
  if [ -f "$bench" ]; then
    run "$(basename "$bench" .py)" "$PY" "$bench" "${quick[@]}"
  fi
done

if [ -n "${PUENTE_BOOTSTRAP:-}${PUENTE_CLIENT_CONFIG:-}" ]; then
  echo
  echo "== Kafka as set: ${PUENTE_BOOTSTRAP:-from $PUENTE_CLIENT_CONFIG} (the local Kafka is left alone)"
else
  if ! "${PUENTE[@]}" kafka status >/dev/null 2>&1; then
    echo
    echo "== starting the local Kafka"
    started_kafka=1
    if ! "${PUENTE[@]}" kafka up; then
      echo "bench: Kafka did not start; bench_broker.py needs it" >&2
      exit 1
    fi
  fi
  if ! kafka_env=$("${PUENTE[@]}" kafka env); then
    echo "bench: \`puente kafka env\` failed; bench_broker.py needs PUENTE_CLIENT_CONFIG" >&2
    exit 1
  fi
  eval "$kafka_env"
fi
run bench_broker "$PY" bench/bench_broker.py "${quick[@]}" "${broker_args[@]}"
run bench_audit_index "$PY" bench/bench_audit_index.py "${quick[@]}"

echo
if [ "${#failed[@]}" -gt 0 ]; then
  echo "bench: failed: ${failed[*]}" >&2
  exit 1
fi
echo "bench: all benchmarks ran"
