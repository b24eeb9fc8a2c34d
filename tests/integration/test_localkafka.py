"""The local Kafka runner: formats, starts, answers and stops without leaving a process."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from broker.credentials import client_properties, scram_jaas
from broker.kafka import Admin, KafkaConnection, connection_from_properties
from broker.kafka.acls import scram_users, upsert_users
from puente.dev.localkafka import KAFKA_VERSION, LocalKafka, fetch_kafka
from puente.dev.localkafka._nodeconf import node_client_properties
from puente.errors import KafkaAuthError, KafkaSetupError


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


def _handshake(port: int, ca: Path, *, tls12_cipher: str | None) -> str:
    """The cipher a TLS handshake with the node agrees on: TLS 1.2 offering only ``tls12_cipher``, else TLS 1.3."""
    context = ssl.create_default_context(cafile=str(ca))
    if tls12_cipher is not None:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(tls12_cipher)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        return tls.cipher()[0]  # type: ignore[index]


def test_the_nodes_accept_only_aead_cipher_suites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reviewer's probe: TLS 1.2 with ECDHE-ECDSA-AES128-SHA (CBC, SHA-1) handshook. Now it is refused; TLS 1.2
    with AES-GCM or ChaCha20-Poly1305 and TLS 1.3 still connect, and the node starts and serves its admin."""
    monkeypatch.setenv("PUENTE_KAFKA_PORT", "19892")
    kafka = LocalKafka("single", root=tmp_path)
    try:
        kafka.up(timeout=90)
        port = kafka.nodes[0].port
        for cbc in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA256"):
            with pytest.raises(ssl.SSLError):
                _handshake(port, kafka.ca_file, tls12_cipher=cbc)
        for aead in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"):
            assert _handshake(port, kafka.ca_file, tls12_cipher=aead) == aead
        assert _handshake(port, kafka.ca_file, tls12_cipher=None) in {
            "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
    finally:
        kafka.down()


def _running_single() -> LocalKafka:
    """The running local single node the integration tests use (PUENTE_HOME, PUENTE_KAFKA_PORT)."""
    kafka = LocalKafka("single")
    assert [s.alive and s.listening for s in kafka.status()] == [True], "start it with `puente kafka up`"
    return kafka


def _logs_in(kafka: LocalKafka, tmp_path: Path, user: str, password: str) -> bool:
    """Whether a SCRAM login as ``user`` with ``password`` lists the topics on the node's client port."""
    config = tmp_path / f"{user}.properties"
    config.write_text(client_properties(kafka.bootstrap, kafka.ca_file, user, password))
    config.chmod(0o600)
    admin = Admin(connection_from_properties(config, timeout_s=5))
    try:
        asyncio.run(admin.call("listing topics", lambda c: c.list_topics(timeout=5)))
    except KafkaAuthError:
        return False
    return True


def test_the_nodes_super_user_has_no_password_login_on_the_client_port(kafka_admin: KafkaConnection,
                                                                        tmp_path: Path) -> None:
    """The nodes' principal (kafka-node, a super user) logs in by certificate only: on the client port, which every
    party reaches, a SCRAM login as kafka-node is refused with the nodes' password an older secrets.json kept (or any
    other), while the admin's login works."""
    kafka = _running_single()
    kept = json.loads((kafka.folder / "secrets.json").read_text())
    assert _logs_in(kafka, tmp_path, "admin", kept["admin"])
    logged_in = [_logs_in(kafka, tmp_path, "kafka-node", password)  # a list: no password in a failure's report
                 for password in (kept.get("kafka-node", "none-kept"), kept["admin"])]
    assert logged_in == [False, False]


def test_the_internal_port_takes_the_nodes_certificate_and_refuses_anyone_without_one(
        kafka_admin: KafkaConnection, tmp_path: Path) -> None:
    """The health check's configuration (node_client_properties, as compose-files writes it) gets Kafka's own
    BrokerApiVersionsCommand an answer on the internal port with the node's certificate; a TLS client with no
    certificate, as any party would be, is refused there."""
    kafka = _running_single()
    node = kafka.nodes[0]
    config = tmp_path / "node-client.properties"
    config.write_text(node_client_properties(f"127.0.0.1:{node.internal_port}", str(kafka.tls_folder / "node1.pem"),
                                             str(kafka.ca_file)))
    tool = "org.apache.kafka.tools.BrokerApiVersionsCommand"  # kafka-broker-api-versions.sh, the health check's
    answered = []
    for _ in range(5):  # the tool gives up on a node slow to answer, as on a busy machine: the check retries too
        done = subprocess.run(["java", "-cp", f"{fetch_kafka(KAFKA_VERSION)}/*", tool, "--bootstrap-server",
                               f"127.0.0.1:{node.internal_port}", "--command-config", str(config)],
                              capture_output=True, text=True, check=False, timeout=120)
        answered.append(done.returncode == 0 and f"127.0.0.1:{node.internal_port} (id: 1" in done.stdout)
        if answered[-1] or "Request METADATA failed" not in done.stderr:
            break
    assert answered[-1], done.stderr[:3000]
    with pytest.raises((ssl.SSLError, ConnectionError)):
        context = ssl.create_default_context(cafile=str(kafka.ca_file))
        with socket.create_connection(("127.0.0.1", node.internal_port), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"\x00\x00\x00\x00")
            if not tls.recv(1):  # TLS 1.3: the refusal of a missing certificate comes after the handshake
                raise ConnectionError("closed")


def _node_login_kept(kafka: LocalKafka, password: str | None = None) -> bool:
    """Whether kafka-node has a SCRAM login, first giving it ``password`` as an older Puente's format did."""
    async def run() -> bool:
        admin = Admin(kafka.admin_connection())
        if password is not None:
            await upsert_users(admin, {"kafka-node": password})
        return "kafka-node" in await scram_users(admin)
    return asyncio.run(run())


def _commits_a_transaction(kafka: LocalKafka) -> None:
    """A transactional producer (the admin) commits a record: the coordinator reaches the partition's leader."""
    async def run() -> None:
        writer = AIOKafkaProducer(**kafka.admin_connection().aiokafka(), transactional_id="localkafka-upgrade")
        await writer.start()
        try:
            await writer.begin_transaction()
            await writer.send_and_wait("__puente_ready", b"upgraded")
            await writer.commit_transaction()
        finally:
            await writer.stop()
    asyncio.run(run())


def _older_properties(current: str, node_password: str) -> str:
    """A node's server.properties as before the INTERNAL listener: the nodes replicate over CLIENT, logging in
    as kafka-node with a password."""
    props = dict(line.split("=", 1) for line in current.splitlines() if "=" in line and not line.startswith("#"))
    props.pop("listener.name.internal.ssl.client.auth")
    props["listeners"] = ",".join(x for x in props["listeners"].split(",") if not x.startswith("INTERNAL:"))
    props["advertised.listeners"] = props["advertised.listeners"].split(",INTERNAL:")[0]
    props["inter.broker.listener.name"] = "CLIENT"
    props["listener.security.protocol.map"] = "CLIENT:SASL_SSL,CONTROLLER:SSL"
    props["sasl.mechanism.inter.broker.protocol"] = "SCRAM-SHA-512"
    props["listener.name.client.scram-sha-512.sasl.jaas.config"] = scram_jaas("kafka-node", node_password)
    return "".join(f"{k}={v}\n" for k, v in props.items())


def test_kafka_up_deletes_the_nodes_old_login_only_once_every_node_runs_the_new_configuration(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A storage an older Puente formatted holds kafka-node's SCRAM login: `up` over nodes of the current
    configuration deletes it, with a note, and transactions still commit. Over a node started with the older
    configuration (no INTERNAL listener: it replicates with that login), `up` refuses in one line and deletes
    nothing, and `status` does not call that node up."""
    monkeypatch.setenv("PUENTE_KAFKA_PORT", "18492")
    kafka = LocalKafka("single", root=tmp_path)
    password = "older-node-password-1"
    try:
        kafka.up(timeout=90)
        assert _node_login_kept(kafka, password)
        kafka.up(timeout=90)
        assert not _node_login_kept(kafka)
        assert any("deleted the nodes' SCRAM login (kafka-node)" in note for note in kafka.notes), kafka.notes
        _commits_a_transaction(kafka)

        kafka.notes.clear()
        assert _node_login_kept(kafka, password)
        kafka.stop_node(1)
        props = kafka.nodes[0].folder / "server.properties"
        props.write_text(_older_properties(props.read_text(), password))
        kafka.start_node(1)
        kafka.wait_ready(timeout=90)
        with pytest.raises(KafkaSetupError) as refused:
            kafka.up(timeout=90)
        assert str(refused.value) == "node 1 runs an older configuration: `puente kafka down` then `puente kafka up`"
        assert _node_login_kept(kafka) and kafka.notes == []
        assert [(s.alive, s.listening) for s in kafka.status()] == [(True, False)]
        _commits_a_transaction(kafka)
    finally:
        kafka.down()
