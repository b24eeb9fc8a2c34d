"""compose.yaml describes the same Kafka as the local runner, in the cluster shape."""

from __future__ import annotations

from pathlib import Path

import yaml

from puente.dev.localkafka import KAFKA_VERSION

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_compose_parses_and_has_three_kafka_nodes() -> None:
    """compose.yaml is valid YAML with three Kafka services, each with its own volume."""
    services = _compose()["services"]
    nodes = [name for name in services if name.startswith("kafka-")]
    assert nodes == ["kafka-1", "kafka-2", "kafka-3"]
    volumes = {services[n]["volumes"][0].split(":")[0] for n in nodes}
    assert len(volumes) == 3 and volumes <= set(_compose()["volumes"])


def test_compose_pins_the_local_kafka_version() -> None:
    """Every Kafka service runs the official image at the version `puente kafka` fetches."""
    services = _compose()["services"]
    images = {services[n]["image"] for n in services if n.startswith("kafka-")}
    assert images == {f"apache/kafka:{KAFKA_VERSION}"}


def test_compose_cluster_is_kraft_with_replication_three() -> None:
    """The nodes form a KRaft quorum with replication 3 and min.insync.replicas 2."""
    services = _compose()["services"]
    ids = set()
    for name in ("kafka-1", "kafka-2", "kafka-3"):
        env = services[name]["environment"]
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].count("@") == 3
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        ids.add(env["KAFKA_NODE_ID"])
    assert ids == {"1", "2", "3"}
