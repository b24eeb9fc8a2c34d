#!/usr/bin/env bash
# Serve the auditors' console on the last `make demo` run's audit: start the local Kafka (the console
# writes every auditor's query to the audit, so it needs Kafka), serve until Ctrl-C, stop Kafka.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ ! -f .puente/demo/console.env ]; then
  echo "console: no demo run to show: run \`make demo\` first" >&2
  exit 1
fi
scripts/setup.sh >/dev/null || exit 1
export PATH="$PWD/.venv/bin:$PATH"
trap 'puente kafka down >/dev/null 2>&1 || true' EXIT
puente kafka up || exit 1
eval "$(puente kafka env)"
# shellcheck disable=SC1091
. .puente/demo/console.env
unset PUENTE_BOOTSTRAP  # the auditor's own client configuration names the cluster
puente audit serve "$@"
