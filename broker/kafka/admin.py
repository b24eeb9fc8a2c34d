"""Kafka administration through confluent-kafka's AdminClient: topics now, ACLs and users beside them.

aiokafka's admin client has no incremental configuration, ACL or SCRAM calls, and returns raw
protocol answers whose per-resource errors every caller would have to dig out. confluent-kafka's
AdminClient (librdkafka) has all of them and gives one future per resource, so each result is
checked. Its calls block: they run in a thread, each bounded by the connection's timeout.
librdkafka's own log lines go to the standard ``logging`` logger ``confluent_kafka``, which
Puente's logging routes like every other (``puente.logs``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any, TypeVar

from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from broker.kafka.connection import KafkaConnection
from puente.errors import (
    KafkaAccessError,
    KafkaAuthError,
    KafkaError,
    KafkaOperationError,
    KafkaUnavailableError,
)

T = TypeVar("T")
_LOG = logging.getLogger("confluent_kafka")

_UNAVAILABLE = {RdKafkaError._TRANSPORT, RdKafkaError._TIMED_OUT, RdKafkaError._ALL_BROKERS_DOWN,
                RdKafkaError.REQUEST_TIMED_OUT, RdKafkaError._RESOLVE, RdKafkaError.BROKER_NOT_AVAILABLE,
                RdKafkaError.LEADER_NOT_AVAILABLE, RdKafkaError.NOT_CONTROLLER}
_AUTH = {RdKafkaError._AUTHENTICATION, RdKafkaError.SASL_AUTHENTICATION_FAILED, RdKafkaError._SSL}
_ACCESS = {RdKafkaError.TOPIC_AUTHORIZATION_FAILED, RdKafkaError.CLUSTER_AUTHORIZATION_FAILED,
           RdKafkaError.GROUP_AUTHORIZATION_FAILED, RdKafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
           RdKafkaError.SECURITY_DISABLED}


class Admin:
    """An admin connection for one task; ``call`` runs one AdminClient operation within the timeout."""

    def __init__(self, conn: KafkaConnection) -> None:
        self.conn = conn
        config: dict[str, Any] = {**conn.librdkafka(), "logger": _LOG, "client.id": conn.client_id or "puente-admin",
                                  "socket.timeout.ms": int(conn.timeout_s * 1000)}
        self.client = AdminClient(config)

    async def call(self, what: str, operation: Callable[[AdminClient], T]) -> T:
        """``operation(client)`` in a thread, with its Kafka errors made Puente's."""
        try:
            return await asyncio.wait_for(asyncio.to_thread(operation, self.client), self.conn.timeout_s + 5)
        except TimeoutError:
            raise KafkaUnavailableError(f"Kafka at {self.conn.bootstrap} did not answer within "
                                        f"{self.conn.timeout_s:g}s while {what}: check PUENTE_BOOTSTRAP and that "
                                        "Kafka is running") from None
        except KafkaException as exc:
            raise self.error(exc, what) from None

    async def results(self, what: str, futures: Mapping[Any, Future[Any]]) -> dict[Any, Any]:
        """Each future's result, or the Puente error it failed with (one per resource: all are checked)."""
        out: dict[Any, Any] = {}
        for key, future in futures.items():
            try:
                out[key] = await asyncio.wait_for(asyncio.wrap_future(future), self.conn.timeout_s + 5)
            except TimeoutError:
                out[key] = KafkaUnavailableError(f"no answer within {self.conn.timeout_s:g}s while {what}")
            except KafkaException as exc:
                out[key] = self.error(exc, what)
        return out

    def error(self, exc: KafkaException, what: str) -> KafkaError:
        """The Puente error for a librdkafka failure while doing ``what``."""
        err = exc.args[0] if exc.args and isinstance(exc.args[0], RdKafkaError) else None
        code = err.code() if err is not None else None
        text = (err.str() if err is not None else str(exc))[:300]
        where = f"Kafka at {self.conn.bootstrap}"
        if code in _UNAVAILABLE:
            return KafkaUnavailableError(f"{where} could not be reached within {self.conn.timeout_s:g}s while "
                                         f"{what}: check PUENTE_BOOTSTRAP and that Kafka is running ({text})")
        if code in _AUTH:
            return KafkaAuthError(f"{where} refused {self.conn.principal} while {what}: check the credentials and "
                                  f"TLS files in {self.conn.source} ({text})")
        if code in _ACCESS:
            return KafkaAccessError(f"{where}: {self.conn.principal} is not allowed to {what} ({text})")
        failure = KafkaOperationError(f"{where}: {what} failed: {text}")
        failure.retriable = bool(err is not None and err.retriable())
        return failure
