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


def _first_of(failures: list[BaseException]) -> BaseException:
    """The first failure, saying how many other sends failed with it (none is dropped unsaid)."""
    if len(failures) > 1:
        failures[0].add_note(f"{len(failures) - 1:,} other record(s) sent raw failed too")
    return failures[0]


def _failure(fut: asyncio.Future[Any]) -> BaseException | None:
    """Why a send done failed (its failure retrieved, so asyncio never reports it as unseen), or None."""
    return asyncio.CancelledError("the send was cancelled before Kafka took it") if fut.cancelled() \
        else fut.exception()


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
        self._check_at = _RAW_CHECK  # how many held sends make ``send_raw`` look at the ones done

    async def __aenter__(self) -> IngressPublisher:
        await start(self._producer, self.conn, f"publishing to {self.topic}")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None = None, *_: object) -> None:
        """Leaving normally (``exc_type`` None), wait for every record sent raw and raise the first that failed.
        The producer is stopped whatever happens; a raw send not waited for is let go, its failure retrieved."""
        try:
            if exc_type is None and self._raw:
                await self.flush()
        finally:
            for fut in self._raw:
                fut.add_done_callback(_failure)
            self._raw = []
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
        self._check_at = _RAW_CHECK
        failures = [outcome for outcome in await asyncio.gather(*raw, return_exceptions=True)  # each retrieved
                    if isinstance(outcome, BaseException)]
        if failures:
            raise _first_of(failures)

    async def send_raw(self, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        """Send already-framed bytes (used to replay or to inject test input), without waiting for Kafka: ``flush``,
        and leaving the publisher, wait for it and raise if it failed, so that no record sent this way is lost
        unsaid; one found failed meanwhile raises at a later send, once."""
        self._raw.append(await self._producer.send(self.topic, value, key=key, headers=headers))
        if len(self._raw) >= self._check_at:  # every ``_RAW_CHECK`` sends, not at each while Kafka is slow
            done = [fut for fut in self._raw if fut.done()]
            self._raw = [fut for fut in self._raw if not fut.done()]
            self._check_at = len(self._raw) + _RAW_CHECK
            failures = [failure for failure in map(_failure, done) if failure is not None]  # each one retrieved
            if failures:
                raise _first_of(failures)

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
