"""The local Kafka's readiness checks: each judgement names the node that is not ready, and the node probe
tells a serving node from one that only holds its port."""

from __future__ import annotations

import json
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from puente.dev import pki
from puente.dev.localkafka._nodeconf import RECOVERY, NodeConf, secured_properties
from puente.dev.localkafka._ready import (
    PartitionView,
    QuorumView,
    answers,
    api_versions_ok,
    api_versions_request,
    broker_problem,
    partition_problem,
    quorum_file,
    quorum_problem,
    read_quorum,
)


def test_quorum_state_is_read_as_kafka_writes_it(tmp_path: Path) -> None:
    """A node's quorum-state file gives its leader and epoch; a missing or garbled one gives None."""
    path = quorum_file(tmp_path)
    assert read_quorum(path) is None
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"leaderId": 2, "leaderEpoch": 7, "votedId": -1,
                                "votedDirectoryId": "AAAAAAAAAAAAAAAAAAAAAA", "data_version": 1}))
    assert read_quorum(path) == QuorumView(2, 7)
    path.write_text("{not json")
    assert read_quorum(path) is None
    path.write_text(json.dumps({"leaderId": "2", "leaderEpoch": 7}))
    assert read_quorum(path) is None


def test_the_quorum_is_ready_only_when_every_node_follows_one_running_leader() -> None:
    """All nodes agreeing on a running leader is ready; a node without a leader, a node on an older
    epoch, or a leader that is not running is named."""
    same = {1: QuorumView(3, 5), 2: QuorumView(3, 5), 3: QuorumView(3, 5)}
    assert quorum_problem(same, {1, 2, 3}) is None
    assert quorum_problem({**same, 2: None}, {1, 2, 3}) == "node 2 knows no controller quorum leader yet"
    assert quorum_problem({**same, 1: QuorumView(-1, 6)}, {1, 2, 3}) == "node 1 knows no controller quorum leader yet"
    stale = quorum_problem({**same, 2: QuorumView(1, 4)}, {1, 2, 3})
    assert stale is not None and stale.startswith("node 2 still follows another")
    gone = quorum_problem(same, {1, 2})
    assert gone == "the controller quorum leader, node 3 (epoch 5), is not running"


def test_brokers_are_ready_when_every_node_is_registered() -> None:
    """The first node missing from the registered brokers is named, with how many are."""
    assert broker_problem({1, 2, 3}, [1, 2, 3]) is None
    assert broker_problem([1], [1, 2, 3]) == "node 2 is not registered as a broker yet (1 of 3 are)"


def test_partitions_are_ready_with_a_leader_and_every_replica_in_sync() -> None:
    """An offline partition and an under-replicated one are each reported, naming the lagging node."""
    good = PartitionView("__puente_ready", 0, 1, (1, 2, 3), (1, 2, 3))
    assert partition_problem([good]) is None
    offline = PartitionView("__puente_ready", 1, -1, (1, 2, 3), (1,))
    assert partition_problem([good, offline]) == "__puente_ready[1] has no leader (offline)"
    lagging = PartitionView("__consumer_offsets", 4, 2, (2, 3, 1), (2, 1))
    assert partition_problem([good, lagging]) == "node 3 is not in sync for __consumer_offsets[4] (under-replicated)"


def test_api_versions_request_is_framed_as_kafka_reads_it() -> None:
    """Size prefix, api key 18, version 0, the correlation id and the client id; a reply with that id counts."""
    frame = api_versions_request(42, "x")
    size, key, version, correlation, length = struct.unpack(">ihhih", frame[:14])
    assert (size, key, version, correlation, length, frame[14:]) == (len(frame) - 4, 18, 0, 42, 1, b"x")
    assert api_versions_ok(struct.pack(">iih", 6, 42, 0), 42)
    assert api_versions_ok(struct.pack(">iih", 6, 42, 35), 42)  # UNSUPPORTED_VERSION: still serving
    assert not api_versions_ok(struct.pack(">iih", 6, 41, 0), 42)
    assert not api_versions_ok(b"\x00\x00", 42)


def test_recovery_settings_are_in_every_nodes_configuration() -> None:
    """Both the local runner and compose get the short broker session, with heartbeats well inside it."""
    props = secured_properties(NodeConf(1, "", "", "", "", "", "", 3, 2))
    for key, value in RECOVERY.items():
        assert props[key] == value
    assert int(props["broker.heartbeat.interval.ms"]) * 3 <= int(props["broker.session.timeout.ms"]) < 9000


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[Path, int, list[bool]]]:
    """A TLS listener on 127.0.0.1 with a certificate from a test CA; it replies to one ApiVersions request
    while ``serving[0]`` is true, else holds the connection without a word."""
    pem = pki.issue(tmp_path, "node1", ["127.0.0.1"], common="kafka-node")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pem)
    serving = [True]
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            with raw:
                if not serving[0]:
                    raw.recv(1)
                    continue
                try:
                    with context.wrap_socket(raw, server_side=True) as tls:
                        request = tls.recv(64)
                        correlation = struct.unpack(">i", request[8:12])[0]
                        tls.sendall(struct.pack(">iih", 6, correlation, 0))
                except (OSError, ssl.SSLError):
                    continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield tmp_path / "ca.pem", port, serving
    listener.close()


def test_a_node_answers_only_when_it_serves_requests(tls_server: tuple[Path, int, list[bool]]) -> None:
    """A node that replies over TLS answers; one that accepts and stays silent, a closed port, or a missing
    CA file does not (and none of them raises)."""
    ca, port, serving = tls_server
    assert answers(port, ca, timeout=2)
    serving[0] = False
    assert not answers(port, ca, timeout=0.5)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        closed = free.getsockname()[1]
    assert not answers(closed, ca, timeout=0.5)
    assert not answers(port, ca.parent / "missing.pem", timeout=0.5)
