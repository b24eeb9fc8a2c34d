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
# Puente's own modules compiled once here: where Python is told not to write bytecode
# (PYTHONDONTWRITEBYTECODE), every worker, adapter and CLI process compiled them again as it
# started, about 0.1 s of CPU each (a restarted worker's, and each test's CLI process).
.venv/bin/python -m compileall -q -j 0 adapters broker policies puente schemas >/dev/null
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
# The console's browser tests drive Debian's Chromium (Playwright never downloads a browser here).
if ! command -v "${PUENTE_CHROMIUM:-/usr/bin/chromium}" >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian's chromium for the console's browser tests (a few minutes the first time)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; } \
      || echo "setup: could not install chromium; the console's browser tests will fail until it is there" >&2
  else
    echo "setup: chromium not found; install Debian's 'chromium' package (or set PUENTE_CHROMIUM) for the console's browser tests" >&2
  fi
fi
.venv/bin/puente kafka fetch
