"""`broker.kafka.quotas` on the wire, no Kafka: AlterClientQuotas v0 encodes as Kafka's protocol says, its answer and
DescribeClientQuotas's decode into each user's quotas and each refused user; an authorization refusal is a
KafkaAccessError naming the login, and a node that offers no version 0 is one clear line."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiokafka.errors import IncompatibleBrokerVersion
from aiokafka.protocol.admin import DescribeClientQuotasResponse_v0

import broker.kafka.quotas as quotas
from broker.kafka import KafkaConnection
from broker.kafka.quotas import (
    AlterClientQuotasRequest_v0,
    AlterClientQuotasResponse_v0,
    alter_request,
    set_user_quotas,
    user_quotas,
)
from puente.errors import KafkaAccessError, KafkaOperationError, KafkaUnavailableError

CONN = KafkaConnection(bootstrap="kafka:9093", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                       username="partner-COL", password="s3cret-pw", timeout_s=2)
KAFKA_4 = {48: (0, 1), 49: (0, 1)}  # what Kafka 4.1 answers ApiVersions with for these two


def _s(text: str | None) -> bytes:
    """A protocol STRING (NULLABLE_STRING when None)."""
    if text is None:
        return struct.pack(">h", -1)
    return struct.pack(">h", len(text.encode())) + text.encode()


def _n(count: int) -> bytes:
    return struct.pack(">i", count)


def test_a_change_encodes_as_kafkas_protocol_says() -> None:
    """entries: [entity: [type, name], ops: [key, FLOAT64 value, remove]], validate_only; the default is null."""
    request = alter_request({"partner-COL": {"producer_byte_rate": 1048576.0, "request_percentage": None},
                             "<default>": {"consumer_byte_rate": 2.5}})
    built = request.prepare(KAFKA_4)
    assert isinstance(built, AlterClientQuotasRequest_v0) and (built.API_KEY, built.API_VERSION) == (49, 0)
    expected = (_n(2)
                + _n(1) + _s("user") + _s(None)
                + _n(1) + _s("consumer_byte_rate") + struct.pack(">d", 2.5) + b"\x00"
                + _n(1) + _s("user") + _s("partner-COL")
                + _n(2) + _s("producer_byte_rate") + struct.pack(">d", 1048576.0) + b"\x00"
                + _s("request_percentage") + struct.pack(">d", 0.0) + b"\x01"
                + b"\x00")  # validate_only
    assert built.encode() == expected
    assert built.to_object()["entries"][1]["ops"][1] == {"key": "request_percentage", "value": 0.0, "remove": True}
    header = built.build_request_header(correlation_id=7, client_id="puente-admin").encode()
    assert header[:4] == struct.pack(">hh", 49, 0)


def test_an_answer_decodes_into_each_entry() -> None:
    """A hand-built AlterClientQuotas v0 answer: throttle time, then each entry's error code, message and entity."""
    data = (struct.pack(">i", 12) + _n(2)
            + struct.pack(">h", 0) + _s(None) + _n(1) + _s("user") + _s("partner-COL")
            + struct.pack(">h", 42) + _s("Invalid configuration key bogus") + _n(1) + _s("user") + _s(None))
    answer = AlterClientQuotasResponse_v0.decode(data)
    assert answer.throttle_time_ms == 12
    assert answer.entries == [(0, None, [("user", "partner-COL")]), (42, "Invalid configuration key bogus",
                                                                     [("user", None)])]
    assert quotas.alter_failures(answer, CONN, "setting client quotas") == {
        "<default>": "INVALID_REQUEST: Invalid configuration key bogus"}


def test_an_authorization_refusal_names_the_login_and_what_to_check() -> None:
    """CLUSTER_AUTHORIZATION_FAILED on any entry is the login's refusal: KafkaAccessError, never the password."""
    data = struct.pack(">i", 0) + _n(1) + struct.pack(">h", 31) + _s(None) + _n(1) + _s("user") + _s("partner-COL")
    with pytest.raises(KafkaAccessError) as refused:
        quotas.alter_failures(AlterClientQuotasResponse_v0.decode(data), CONN, "setting client quotas")
    assert "User:partner-COL" in str(refused.value) and "ALTER_CONFIGS" in str(refused.value)
    assert "PUENTE_CLIENT_CONFIG" in str(refused.value) and "s3cret" not in str(refused.value)


def test_no_version_0_on_the_node_is_one_clear_line() -> None:
    """aiokafka picks the version the node offers: none (an old Kafka) or none defined here is refused as such."""
    with pytest.raises(IncompatibleBrokerVersion):
        alter_request({"u": {"k": 1.0}}).prepare({})
    with pytest.raises(NotImplementedError):
        alter_request({"u": {"k": 1.0}}).prepare({49: (1, 1)})


class _Node:
    """aiokafka's admin client as far as ``broker.kafka.quotas`` uses it: each request is built for the node's API
    versions (as aiokafka's connection does) and encoded; ``answer`` gives the bytes of the node's reply."""

    def __init__(self, versions: dict[int, tuple[int, int]], answer: Callable[[Any], bytes]) -> None:
        self.versions, self.answer = versions, answer
        self.sent: list[Any] = []

    async def _send_request(self, request: Any) -> Any:
        built = request.prepare(self.versions)
        built.encode()
        self.sent.append(built)
        return built.RESPONSE_TYPE.decode(self.answer(built))


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> Callable[..., _Node]:
    def make(answer: Callable[[Any], bytes], versions: dict[int, tuple[int, int]] = KAFKA_4) -> _Node:
        made = _Node(versions, answer)

        @contextlib.asynccontextmanager
        async def session(conn: KafkaConnection, what: str) -> AsyncIterator[_Node]:
            yield made

        monkeypatch.setattr(quotas, "admin_session", session)
        return made
    return make


def _described(users: dict[str | None, dict[str, float]], extra: list[Any] | None = None) -> bytes:
    """A DescribeClientQuotas v0 answer holding ``users``' own quotas (None: the default) and ``extra`` entries."""
    entries = [([("user", user)], list(values.items())) for user, values in users.items()] + (extra or [])
    return DescribeClientQuotasResponse_v0(0, 0, None, entries).encode()


def test_reading_keeps_each_users_quotas_and_no_other_entity(node: Callable[..., _Node]) -> None:
    """Every entity is asked for (no component, not strict); a user's own, the default's, and a user's for one client
    id or its default client id (which Kafka takes before the user's own) are kept, each under its key; a client
    id's alone and an IP's are not a user's, and not kept. Each key names its entity back."""
    made = node(lambda _: _described({"partner-COL": {"producer_byte_rate": 1048576.0}, None: {"x": 1.0}}, [
        ([("client-id", "c1")], [("producer_byte_rate", 5.0)]),
        ([("ip", "10.0.0.1")], [("connection_creation_rate", 5.0)]),
        ([("user", "partner-COL"), ("client-id", "c1")], [("producer_byte_rate", 9.0)]),
        ([("client-id", None), ("user", "partner-COL")], [("request_percentage", 1e4)])]))
    found = asyncio.run(user_quotas(CONN))
    assert found == {"partner-COL": {"producer_byte_rate": 1048576.0}, "<default>": {"x": 1.0},
                     "partner-COL/client-id=c1": {"producer_byte_rate": 9.0},
                     "partner-COL/client-id=<default>": {"request_percentage": 1e4}}
    assert made.sent[0].to_object() == {"components": [], "strict": False}
    assert [quotas.user_entity(key) for key in found] == [
        [("user", "partner-COL")], [("user", None)], [("user", "partner-COL"), ("client-id", "c1")],
        [("user", "partner-COL"), ("client-id", None)]]


def test_a_refused_read_is_an_access_error(node: Callable[..., _Node]) -> None:
    """DescribeClientQuotas answered CLUSTER_AUTHORIZATION_FAILED: KafkaAccessError naming the login."""
    node(lambda _: DescribeClientQuotasResponse_v0(0, 31, "denied", []).encode())
    with pytest.raises(KafkaAccessError, match="User:partner-COL"):
        asyncio.run(user_quotas(CONN))


def test_setting_waits_until_the_cluster_reads_the_change_back(node: Callable[..., _Node]) -> None:
    """Set, then read back until the change is listed; a user Kafka refused is returned with its reason."""
    held: dict[str | None, dict[str, float]] = {}
    reads = []

    def answer(built: Any) -> bytes:
        if built.API_KEY == 48:
            reads.append(1)
            if len(reads) > 1:  # the change reaches the node a moment after the call returns
                held["partner-COL"] = {"producer_byte_rate": 1048576.0}
            return _described(held)
        return (struct.pack(">i", 0) + _n(2) + struct.pack(">h", 0) + _s(None) + _n(1) + _s("user") + _s("partner-COL")
                + struct.pack(">h", 42) + _s("bad key") + _n(1) + _s("user") + _s("partner-USA"))

    node(answer)
    failed = asyncio.run(set_user_quotas(CONN, {"partner-COL": {"producer_byte_rate": 1048576.0},
                                                "partner-USA": {"bogus": 1.0}}))
    assert failed == {"partner-USA": "INVALID_REQUEST: bad key"} and len(reads) == 2


def test_nothing_to_change_sends_nothing(node: Callable[..., _Node]) -> None:
    """No change, no request."""
    made = node(lambda _: b"")
    assert asyncio.run(set_user_quotas(CONN, {"partner-COL": {}})) == {} and made.sent == []


@pytest.mark.parametrize("versions", [{48: (0, 1)}, {48: (0, 1), 49: (2, 3)}], ids=["unknown", "too-new"])
def test_a_node_without_version_0_is_one_clear_line(node: Callable[..., _Node],
                                                    versions: dict[int, tuple[int, int]]) -> None:
    """A node that does not offer AlterClientQuotas v0: KafkaOperationError in one line naming what is needed."""
    node(lambda _: b"", versions)
    with pytest.raises(KafkaOperationError) as refused:
        asyncio.run(set_user_quotas(CONN, {"partner-COL": {"producer_byte_rate": 1.0}}))
    text = str(refused.value)
    assert "\n" not in text and "AlterClientQuotas version 0" in text and "kafka:9093" in text


def test_a_node_that_does_not_answer_is_unavailable(node: Callable[..., _Node]) -> None:
    """No answer within the connection's timeout: KafkaUnavailableError, as for every other Kafka call."""
    made = node(lambda _: b"")

    async def silent(request: Any) -> Any:
        await asyncio.Event().wait()

    made._send_request = silent  # type: ignore[method-assign]
    with pytest.raises(KafkaUnavailableError, match="kafka:9093"):
        asyncio.run(user_quotas(CONN.model_copy(update={"timeout_s": 0.1})))
