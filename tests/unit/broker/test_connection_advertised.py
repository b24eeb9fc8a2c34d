"""`KafkaConnection.check_advertised`: SASL_PLAINTEXT is for a Kafka on this host only, and the bootstrap address
is not all the client connects to: every broker the cluster's metadata advertises must be on this host too."""

from __future__ import annotations

from typing import NamedTuple

import pytest
from pydantic import SecretStr

from broker.kafka import KafkaConnection
from puente.errors import ConfigError


class Broker(NamedTuple):
    """A broker of a cluster's metadata, as aiokafka's ``cluster.brokers()`` gives it."""

    nodeId: int  # aiokafka's field name
    host: str
    port: int
    rack: str | None = None


def _conn(protocol: str = "SASL_PLAINTEXT", bootstrap: str = "127.0.0.1:19092") -> KafkaConnection:
    sasl = protocol.startswith("SASL")
    return KafkaConnection(bootstrap=bootstrap, security_protocol=protocol,  # type: ignore[arg-type]
                           sasl_mechanism="SCRAM-SHA-512" if sasl else None, username="partner-COL" if sasl else None,
                           password=SecretStr("s3cret-pw") if sasl else None, source="col.properties",
                           servers_from="bootstrap.servers in col.properties").check()


@pytest.mark.parametrize("hosts", [
    ["127.0.0.1"], ["localhost", "127.0.0.2"], ["::1"], ["[::1]"], ["LOCALHOST"], [],
], ids=str)
def test_brokers_on_this_host_pass(hosts: list[str]) -> None:
    """A local Kafka advertises loopback addresses (or none yet): the plaintext login stays on this host."""
    _conn().check_advertised(Broker(i, host, 19092) for i, host in enumerate(hosts))


@pytest.mark.parametrize("hosts", [
    ["kafka-1.example.org"], ["127.0.0.1", "10.0.0.5"], ["192.168.1.20"], ["2001:db8::1"],
    ["kafka.localhost.example.org"], ["my-tunnel"],  # a name is not taken on trust, whatever it resolves to
], ids=str)
def test_a_broker_off_this_host_is_refused_in_one_line(hosts: list[str]) -> None:
    """A forwarder on the loopback port to a remote Kafka (or a process there advertising a host of its choosing):
    refused before the client reaches it, in one line naming what to check and never the password."""
    with pytest.raises(ConfigError) as refused:
        _conn().check_advertised(Broker(i, host, 9092) for i, host in enumerate(hosts))
    message = str(refused.value)
    assert "\n" not in message and "s3cret-pw" not in message
    assert "SASL_PLAINTEXT" in message and "SASL_SSL" in message and "advertised.listeners" in message
    assert "bootstrap.servers in col.properties" in message
    assert next(h for h in hosts if h not in ("127.0.0.1",)) in message


def test_a_hosts_name_is_shown_on_one_line() -> None:
    """Kafka's metadata is the cluster's text: a host holding a line break cannot start a line of its own."""
    with pytest.raises(ConfigError) as refused:
        _conn().check_advertised([Broker(1, "evil\nPuente: all fine", 9092)])
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("protocol", ["SASL_SSL", "SSL", "PLAINTEXT"])
def test_other_protocols_are_not_this_checks(protocol: str) -> None:
    """TLS authenticates each broker by its name; PLAINTEXT is a Kafka without security, chosen as such."""
    _conn(protocol, "kafka-1:9093").check_advertised([Broker(1, "kafka-2.example.org", 9093)])
