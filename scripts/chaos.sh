#!/usr/bin/env bash
# The chaos test (README: "Kafka alone"): set up, start a fresh 3-node local cluster, run Puente end to end
# on it while a Kafka node and a worker are killed mid-stream, print the longest processing gaps, stop
# the cluster. It takes several minutes, so `make test` leaves it out.
# PUENTE_KAFKA_CLUSTER_PORT moves the cluster's ports (default 29092-29100), PUENTE_HOME its files.
# Extra arguments go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh || exit 1
export PATH="$PWD/.venv/bin:$PATH"

started=$(date +%s)
stop_cluster() { puente kafka down --shape cluster >/dev/null 2>&1 || true; }
trap stop_cluster EXIT

echo "== kafka (3-node cluster, fresh)"
puente kafka wipe --shape cluster >/dev/null || exit 1
puente kafka up --shape cluster || exit 1
echo "== chaos"
PUENTE_CHAOS=1 python -m pytest -s tests/integration/test_chaos.py "$@"
rc=$?
echo "== chaos wall time: $(( $(date +%s) - started ))s"
# Exit code 5 means pytest collected no test: that is a failure here, not a pass.
exit $(( rc != 0 ))
