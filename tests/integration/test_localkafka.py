"""The local Kafka runner: formats, starts, answers and stops without leaving a process."""

from __future__ import annotations

from pathlib import Path

import pytest

from puente.dev.localkafka import LocalKafka


def test_a_cluster_id_starting_with_a_dash_still_formats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A random base64url cluster id may begin with '-'; formatting must not read it as an option."""
    monkeypatch.setenv("PUENTE_KAFKA_PORT", "18392")  # below the ephemeral ports (32768 up), where clients bind
    kafka = LocalKafka("single", root=tmp_path)
    kafka.folder.mkdir(parents=True)
    (kafka.folder / "cluster.id").write_text("-AbCdEfGhIjKlMnOpQrStUw\n")
    try:
        kafka.up(timeout=90)
        assert [s.alive and s.listening for s in kafka.status()] == [True]
    finally:
        kafka.down()
    assert [s.alive for s in kafka.status()] == [False]
    assert not (kafka.nodes[0].folder / "kafka.pid").exists()
