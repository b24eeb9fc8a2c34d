"""Publishing alerts to an agency's ingress topic: encode, prove origin, key by alert id."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from broker.crypto import SecretBytes, sign_ingress
from broker.kafka import KafkaConnection, producer, start, stop_client
from broker.topology import TopicNames
from schemas import alert_codec


def frame_alert(agency: str, key_id: str, mac_key: SecretBytes, alert: dict[str, Any]
                ) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """The key, value and origin headers of one alert as an agency publishes it. Pure; no Kafka."""
    value = alert_codec().encode(alert)
    headers = sign_ingress(agency, key_id, mac_key, value, alert["alert_id"])
    return alert["alert_id"].encode(), value, headers


_RAW_CHECK = 1024  # ``send_raw``'s sends held before the ones done are checked and let go


class IngressPublisher:
    """Writes one agency's alerts to its ingress topic, idempotently, with its origin MAC.

    The record key is the alert id: it keeps every version of an agency record in one
    partition, in order, and lets the broker detect replays of the same id.
    """

    def __init__(self, conn: KafkaConnection, agency: str, key_id: str, mac_key: SecretBytes,
                 names: TopicNames | None = None) -> None:
        self.conn, self.agency, self.key_id, self.mac_key = conn, agency, key_id, mac_key
        self.topic = (names or TopicNames()).ingress(agency)
        self._producer = producer(conn, f"puente-adapter-{agency}", acks="all", enable_idempotence=True,
                                  linger_ms=5, max_batch_size=256 * 1024)
        self._raw: list[asyncio.Future[Any]] = []  # ``send_raw``'s sends not yet known to have succeeded

    async def __aenter__(self) -> IngressPublisher:
        await start(self._producer, self.conn, f"publishing to {self.topic}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:  # leaving normally: every record sent raw must have reached Kafka
                await self.flush()
        finally:
            await stop_client(self._producer)

    def frame(self, alert: dict[str, Any]) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
        """The key, value and headers of one alert, without sending it."""
        return frame_alert(self.agency, self.key_id, self.mac_key, alert)

    def sign(self, alert_id: str, value: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
        """The key and origin headers for an alert already encoded (adapters encode once, to validate)."""
        return alert_id.encode(), sign_ingress(self.agency, self.key_id, self.mac_key, value, alert_id)

    async def send_framed(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> asyncio.Future[Any]:
        """Queue one framed record; the future resolves when Kafka has acknowledged it (or fails)."""
        fut: asyncio.Future[Any] = await self._producer.send(self.topic, value, key=key, headers=headers)
        return fut

    async def flush(self) -> None:
        """Wait until every queued record has been sent; raise the first failure of a record sent by ``send_raw``."""
        await self._producer.flush()
        raw, self._raw = self._raw, []
        for outcome in await asyncio.gather(*raw, return_exceptions=True):  # each one's failure retrieved
            if isinstance(outcome, BaseException):
                raise outcome

    async def send_raw(self, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        """Send already-framed bytes (used to replay or to inject test input), without waiting for Kafka: ``flush``,
        and leaving the publisher, wait for it and raise if it failed, so that no record sent this way is lost
        unsaid; one found failed meanwhile raises at the next send."""
        self._raw.append(await self._producer.send(self.topic, value, key=key, headers=headers))
        if len(self._raw) >= _RAW_CHECK:
            for fut in self._raw:
                if fut.done():
                    fut.result()  # raises the send's failure
            self._raw = [fut for fut in self._raw if not fut.done()]

    async def publish(self, alerts: Iterable[dict[str, Any]]) -> int:
        """Send every alert; returns how many were sent once all are acknowledged."""
        futures = []
        for alert in alerts:
            key, value, headers = self.frame(alert)
            futures.append(await self._producer.send(self.topic, value, key=key, headers=headers))
        await self._producer.flush()
        for fut in futures:
            await fut
        return len(futures)
