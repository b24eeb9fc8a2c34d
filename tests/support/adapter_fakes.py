"""Stand-ins for what an adapter run writes to and reads from, for the adapters' unit tests (no Kafka)."""

from __future__ import annotations

import asyncio
import io
from typing import Any


class FakeKafka:
    """Stands in for the ingress publisher and the dead-letter producer of an AdapterRun: records what is sent."""

    def __init__(self) -> None:
        self.dead: list[bytes] = []
        self.headers: list[dict[str, bytes]] = []
        self.published = 0

    @staticmethod
    def _done() -> asyncio.Future[Any]:
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    def sign(self, alert_id: str, value: bytes) -> tuple[bytes, list[Any]]:
        return alert_id.encode(), []

    async def send_framed(self, key: bytes, value: bytes, headers: Any) -> asyncio.Future[Any]:
        self.published += 1
        return self._done()

    async def send(self, topic: str, value: bytes, *, key: bytes, headers: Any) -> asyncio.Future[Any]:
        self.dead.append(key)
        self.headers.append(dict(headers))
        return self._done()

    async def flush(self) -> None:
        return None


class Pipe(io.RawIOBase):
    """A stream that cannot be rewound, as standard input from a pipe."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._data.readinto(buffer)
