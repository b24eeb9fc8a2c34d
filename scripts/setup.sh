#!/usr/bin/env bash
# Prepare a fresh machine for Puente: a virtualenv with Puente and its tools, and Kafka in the cache.
# Idempotent: a second run only checks. Used by `make test` and `make demo`.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "setup: Python 3.11 or newer is needed (found: $("$PY" --version 2>&1))" >&2
  exit 1
fi
for tool in java mvn; do
  command -v "$tool" >/dev/null || { echo "setup: '$tool' is needed on PATH (Java 17+ and Maven fetch and run Kafka)" >&2; exit 1; }
done

stamp=.venv/.puente-installed
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing Puente and its development tools into .venv"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[dev]'
  touch "$stamp"
fi
# The native Avro codec (native/, Rust): several times faster than fastavro. Built with
# cargo from crates the first time; Puente runs without it (fastavro decodes), but CI requires it.
native_stamp=.venv/.puente-native
if [ ! -f "$native_stamp" ] || [ -n "$(find native -newer "$native_stamp" -not -path 'native/target*' -print -quit)" ]; then
  if command -v cargo >/dev/null; then
    echo "setup: building the native Avro codec (native/, about a minute the first time)"
    .venv/bin/python -m pip install --quiet ./native
    touch "$native_stamp"
  else
    echo "setup: cargo not found; the native Avro codec is not built and fastavro does its work instead" >&2
  fi
fi
.venv/bin/puente kafka fetch
