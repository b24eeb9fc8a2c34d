"""A SASL_PLAINTEXT client (admitted for a Kafka on this host only) takes in no cluster metadata that advertises a
broker off this host: refused at its start in one line, and a later refresh is refused whole, named in a log line.

aiokafka's bootstrap is replaced by one that hands the client's cluster a metadata response, as the real one does
after its first MetadataRequest; no socket is opened. The real Kafka's start is in the integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace as NS
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.metadata import MetadataResponse_v0
from pydantic import SecretStr
from structlog.testing import capture_logs

import broker.kafka.admin as admin_module
from broker.kafka import Admin, KafkaConnection, admin_session, consumer, producer, running, start
from puente.errors import ConfigError

REMOTE = [(1, "kafka.partner.example", 9092)]
LOCAL = [(1, "127.0.0.1", 19092)]


def _conn(protocol: str = "SASL_PLAINTEXT") -> KafkaConnection:
    sasl = protocol.startswith("SASL")
    return KafkaConnection(bootstrap="127.0.0.1:19092", security_protocol=protocol,  # type: ignore[arg-type]
                           sasl_mechanism="SCRAM-SHA-512" if sasl else None, username="partner-COL" if sasl else None,
                           password=SecretStr("s3cret-pw") if sasl else None, source="col.properties",
                           servers_from="bootstrap.servers in col.properties").check()


def _advertising(monkeypatch: pytest.MonkeyPatch, brokers: list[tuple[int, str, int]]) -> None:
    """aiokafka's bootstrap: the bootstrap server's metadata (``brokers``) handed to the cluster, as the real one."""

    async def bootstrap(self: AIOKafkaClient) -> None:
        self.cluster.update_metadata(MetadataResponse_v0(brokers=brokers, topics=[]))
        self._sync_task = asyncio.get_running_loop().create_future()  # started: the real one's metadata task

    monkeypatch.setattr(AIOKafkaClient, "bootstrap", bootstrap)


def _refused(error: ConfigError) -> None:
    text = str(error)
    assert "\n" not in text, text
    for part in ("col.properties", "kafka.partner.example", "SASL_SSL", "advertised.listeners"):
        assert part in text, text
    assert "s3cret-pw" not in text


async def _start_producer(conn: KafkaConnection) -> None:
    await start(producer(conn, "puente-test"), conn, "publishing")


async def _start_consumer(conn: KafkaConnection) -> None:
    await start(consumer(conn, "puente-test", "p.decisions", group_id="g"), conn, "reading")


async def _start_admin(conn: KafkaConnection) -> None:
    async with admin_session(conn, "reading quotas"):
        pass


STARTS: dict[str, Callable[[KafkaConnection], Any]] = {
    "producer": _start_producer, "consumer": _start_consumer, "admin": _start_admin}


@pytest.mark.parametrize("kind", sorted(STARTS))
def test_a_remote_broker_in_the_first_metadata_refuses_the_start_in_one_line(
        kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """SASL_PLAINTEXT: a producer, consumer or aiokafka admin whose bootstrap metadata advertises a broker off this
    host does not start: the ConfigError naming the host, the file and what to set reaches the caller as it is."""
    _advertising(monkeypatch, REMOTE)
    with pytest.raises(ConfigError) as refused:
        asyncio.run(STARTS[kind](_conn()))
    _refused(refused.value)


@pytest.mark.parametrize("protocol", ["SASL_SSL", "PLAINTEXT"])
def test_other_protocols_start_whatever_the_metadata_advertises(protocol: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """TLS checks each broker's name and PLAINTEXT carries no password: their metadata is taken in unchecked."""
    _advertising(monkeypatch, REMOTE)

    async def run() -> None:
        conn = _conn(protocol)
        if protocol == "SASL_SSL":
            conn = conn.model_copy(update={"ca_file": None})
        async with running(producer(conn, "puente-test"), conn, "publishing") as made:
            assert [b.host for b in made.client.cluster.brokers()] == ["kafka.partner.example"]

    asyncio.run(run())


def test_a_later_refresh_advertising_a_remote_broker_is_refused_whole_and_logged(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Started on this host's brokers, a refresh naming a broker off it is refused before it is taken in: the client
    keeps the brokers it had (it reaches no new one), a line names it, and every wait on metadata, then or later,
    raises the error rather than waiting on for good."""
    _advertising(monkeypatch, LOCAL)
    conn = _conn()

    async def run() -> tuple[AIOKafkaProducer, ConfigError]:
        async with running(producer(conn, "puente-test"), conn, "publishing") as made:
            waiting = made.client.force_metadata_update()
            with capture_logs() as logs, pytest.raises(ConfigError) as refused:
                made.client.cluster.update_metadata(MetadataResponse_v0(brokers=REMOTE, topics=[]))
            assert [b.host for b in made.client.cluster.brokers()] == ["127.0.0.1"]
            for wait in (waiting, made.client.force_metadata_update()):  # a wait then and a wait later
                with pytest.raises(ConfigError, match=r"kafka\.partner\.example"):
                    await wait
            assert [(line["event"], line["log_level"]) for line in logs] == [("kafka_metadata_refused", "error")]
            assert "kafka.partner.example" in logs[0]["error"] and logs[0]["bootstrap"] == "127.0.0.1:19092"
            return made, refused.value

    _refused(asyncio.run(run())[1])


class _AdminClient:
    """librdkafka's AdminClient: ListTopics answers the brokers of ``advertised``; every call is recorded."""

    advertised: list[tuple[int, str, int]] = REMOTE

    def __init__(self, config: dict[str, Any]) -> None:
        self.calls: list[str] = []

    def list_topics(self, timeout: float) -> Any:
        self.calls.append("list_topics")
        return NS(brokers={node: NS(id=node, host=host, port=port) for node, host, port in self.advertised})

    def describe_cluster(self, **_: Any) -> str:
        self.calls.append("describe_cluster")
        return "described"

    def poll(self, timeout: float) -> int:
        return 0


def _admin_calls(monkeypatch: pytest.MonkeyPatch, protocol: str,
                 advertised: list[tuple[int, str, int]]) -> tuple[Admin, Any]:
    monkeypatch.setattr(admin_module, "AdminClient", _AdminClient)
    monkeypatch.setattr(_AdminClient, "advertised", advertised)
    conn = _conn(protocol)
    admin = Admin(conn.model_copy(update={"ca_file": None}) if protocol == "SASL_SSL" else conn)
    return admin, admin.call("describing the cluster", lambda c: c.describe_cluster())


def test_the_librdkafka_admin_refuses_a_remote_broker_before_its_first_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """SASL_PLAINTEXT ``Admin``: the cluster's metadata is checked before the first call, which is not made when it
    advertises a broker off this host; the ConfigError reaches the caller in one line."""
    admin, call = _admin_calls(monkeypatch, "SASL_PLAINTEXT", REMOTE)
    with pytest.raises(ConfigError) as refused:
        asyncio.run(call)
    _refused(refused.value)
    assert admin.client.calls == ["list_topics"]  # type: ignore[attr-defined]


def test_the_librdkafka_admin_checks_once_then_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """SASL_PLAINTEXT on this host's brokers: one metadata check, then each call as asked."""
    admin, call = _admin_calls(monkeypatch, "SASL_PLAINTEXT", LOCAL)

    async def twice() -> None:
        assert await call == "described"
        assert await admin.call("describing the cluster", lambda c: c.describe_cluster()) == "described"

    asyncio.run(twice())
    assert admin.client.calls == ["list_topics", "describe_cluster", "describe_cluster"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("protocol", ["SASL_SSL", "PLAINTEXT"])
def test_the_librdkafka_admin_asks_nothing_more_on_other_protocols(protocol: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """No extra round trip where TLS checks the names or no password is sent."""
    admin, call = _admin_calls(monkeypatch, protocol, REMOTE)
    assert asyncio.run(call) == "described"
    assert admin.client.calls == ["describe_cluster"]  # type: ignore[attr-defined]
