# Puente's two commands: `make demo` runs the main job, `make test` runs every test.
.PHONY: demo console test chaos setup kafka-up kafka-down kafka-status bench clean

demo:
	@scripts/demo.sh

test:
	@scripts/test.sh

# A Kafka node and a broker worker killed mid-stream on the 3-node cluster (minutes; not in `make test`).
chaos:
	@scripts/chaos.sh

# The auditors' console on the last demo run's audit (URL and sign-ins: the end of `make demo`).
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
clean:
	-@.venv/bin/puente kafka wipe 2>/dev/null
	-@.venv/bin/puente kafka wipe --shape cluster 2>/dev/null
	rm -rf .puente/kafka .puente/demo .puente/test-worker* .venv build *.egg-info
