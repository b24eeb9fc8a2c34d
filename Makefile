# Puente's two commands: `make demo` runs the main job, `make test` runs every test.
.PHONY: demo console test chaos setup kafka-up kafka-down kafka-status bench clean

demo:
	@scripts/demo.sh

test:
	@scripts/test.sh

# A Kafka node and a broker worker killed mid-stream on the 3-node cluster (minutes; not in `make test`).
chaos:
	@scripts/chaos.sh

# The auditors' console on the last demo run's audit (URL and sign-in names: the end of `make demo`;
# their passwords: .puente/demo/console-passwords).
console:
	@scripts/console.sh

setup:
	@scripts/setup.sh

kafka-up: setup
	@.venv/bin/puente kafka up

kafka-down:
	@.venv/bin/puente kafka down

kafka-status:
	@.venv/bin/puente kafka status

bench: setup
	@scripts/bench.sh

# Only what is rebuilt: the local Kafka, the demo's runs, the test workers' homes, the build. .puente/keys (the
# keystore: keys, partners' stores, console accounts) and .puente/audit (the auditors' index) are kept.
# A Kafka folder goes only after `puente kafka wipe` stopped its Kafka: deleted under a running one, that Kafka
# would be left running with its data gone. The wipe follows PUENTE_HOME, so one set elsewhere is refused: clean
# would stop that Kafka, yet delete only ./.puente's folders.
clean:
	@if [ -n "$$PUENTE_HOME" ] && [ "$$(realpath -m -- "$$PUENTE_HOME")" != "$$(realpath -m .puente)" ]; then \
	  echo "make clean: PUENTE_HOME names another folder than .puente: unset it (clean cleans ./.puente)," \
	       "or run puente kafka wipe for the Kafka there" >&2; exit 1; fi
	@for home in .puente .puente/test-worker*; do \
	  [ -d "$$home/kafka" ] || continue; \
	  if ! { [ -x .venv/bin/puente ] && PUENTE_HOME=$$home .venv/bin/puente kafka wipe >/dev/null && \
	         PUENTE_HOME=$$home .venv/bin/puente kafka wipe --shape cluster >/dev/null; }; then \
	    echo "make clean: kept $$home/kafka and .venv: puente kafka wipe failed there, so its Kafka may still" \
	         "run; stop it with puente kafka down, then run make clean again" >&2; exit 1; fi; \
	done
	rm -rf .puente/kafka .puente/demo .puente/test-worker* .venv build *.egg-info
