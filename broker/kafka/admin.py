"""Kafka administration through confluent-kafka's AdminClient: topics now, ACLs and users beside them.

aiokafka's admin client has no incremental configuration, ACL or SCRAM calls, and returns raw
protocol answers whose per-resource errors every caller would have to dig out. confluent-kafka's
AdminClient (librdkafka) has all of them and gives one future per resource, so each result is
checked. Its calls block: each runs in a daemon thread of its own (``_off_loop``), bounded by the
connection's timeout, so that Ctrl-C or a stop signal ends a command at once even while librdkafka waits.
librdkafka's own critical log lines go to the standard ``logging`` logger ``confluent_kafka``, which
Puente's logging routes like every other (``puente.logs``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any, TypeVar

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException
from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka.admin import AdminClient

from broker.kafka.connection import KafkaConnection
from puente.errors import (
    ConfigError,
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
_UNREACHED = {RdKafkaError._TRANSPORT, RdKafkaError._TIMED_OUT, RdKafkaError._ALL_BROKERS_DOWN, RdKafkaError._RESOLVE}
_AUTH = {RdKafkaError._AUTHENTICATION, RdKafkaError.SASL_AUTHENTICATION_FAILED, RdKafkaError._SSL}
_ACCESS = {RdKafkaError.TOPIC_AUTHORIZATION_FAILED, RdKafkaError.CLUSTER_AUTHORIZATION_FAILED,
           RdKafkaError.GROUP_AUTHORIZATION_FAILED, RdKafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
           RdKafkaError.SECURITY_DISABLED}

# What the cluster's admin may do on the CLUSTER resource and no party may: ALTER is changing its ACLs and logins
# (whoever may grants itself the rest), DESCRIBE reading them (``Admin.require_admin``).
ADMINISTER = frozenset({"ALTER", "DESCRIBE"})


class Admin:
    """An admin connection for one task; ``call`` runs one AdminClient operation within the timeout."""

    def __init__(self, conn: KafkaConnection) -> None:
        self.conn = conn
        # librdkafka answers a refused login or certificate with "transport failure" and tells the real
        # reason only to the error callback: kept here, so that the error says what to check.
        self._refused: RdKafkaError | None = None
        self._administers = False  # ``require_admin`` found that this login may administer the cluster
        # Its log lines at "error" repeat what the error callback gets, once per retry: only critical
        # ones are logged (log_level is syslog's scale); the failure itself reaches the caller once.
        config: dict[str, Any] = {**conn.librdkafka(), "logger": _LOG, "client.id": conn.client_id or "puente-admin",
                                  "socket.timeout.ms": int(conn.timeout_s * 1000), "error_cb": self._note,
                                  "log_level": 2, "log.connection.close": False}
        conn.ssl_context()  # the TLS files checked as every client checks them: a refusal names the setting
        try:
            self.client = AdminClient(config)
        except KafkaException as exc:  # a setting librdkafka refuses as it starts
            # Its code only: librdkafka's text may quote a setting's value, and a value may be a password.
            code = exc.args[0].name() if exc.args and isinstance(exc.args[0], RdKafkaError) else "refused"
            raise ConfigError(f"{conn.source}: the admin client cannot start with this configuration ({code}); "
                              "check its TLS files, ssl.key.password and SASL settings") from None

    def _note(self, error: RdKafkaError) -> None:
        if error.code() in _AUTH:
            self._refused = error

    async def call(self, what: str, operation: Callable[[AdminClient], T]) -> T:
        """``operation(client)`` in a thread, with its Kafka errors made Puente's."""
        try:
            async with asyncio.timeout(self.conn.timeout_s + 5):
                return await _off_loop(operation, self.client)
        except TimeoutError:
            raise KafkaUnavailableError(f"Kafka at {self.conn.bootstrap} did not answer within "
                                        f"{self.conn.timeout_s:g}s while {what}: check {self.conn.servers_from} and "
                                        "that Kafka is running") from None
        except KafkaException as exc:
            self.client.poll(0)  # serves the error callback, which holds the reason a login was refused
            raise self.error(exc, what) from None

    async def results(self, what: str, futures: Mapping[Any, Future[Any]]) -> dict[Any, Any]:
        """Each future's result, or the Puente error it failed with (one per resource: all are checked).

        When every one failed because Kafka could not be reached or refused the login, that is no
        resource's failure but the call's: it is raised (the first), so a command reports an
        unavailable Kafka or a refused login as such, with its own exit status."""
        out: dict[Any, Any] = {}
        unreached: list[KafkaError] = []  # failures of the call itself: no answer, or the login refused
        for key, future in futures.items():
            try:
                async with asyncio.timeout(self.conn.timeout_s + 5):
                    out[key] = await asyncio.wrap_future(future)
            except TimeoutError:
                out[key] = KafkaUnavailableError(f"no answer within {self.conn.timeout_s:g}s while {what}")
                unreached.append(out[key])
            except KafkaException as exc:
                out[key] = self.error(exc, what)
                err = exc.args[0] if exc.args and isinstance(exc.args[0], RdKafkaError) else None
                if isinstance(out[key], KafkaAuthError) or (err is not None and err.code() in _UNREACHED):
                    unreached.append(out[key])
        # A resource's own answer (a leader not yet elected, a request timed out on the broker) stays
        # that resource's failure, even when every resource has it.
        if out and len(unreached) == len(out):
            raise unreached[0]
        return out

    async def require_admin(self, doing: str) -> None:
        """Refuse, in one line naming the login and what to use instead, unless this login may administer the
        cluster: ALTER and DESCRIBE on the CLUSTER resource (``ADMINISTER``), as the admin, a super user, has and
        no party has. ``doing`` says what needed it ("planning the parties' logins"). Asked once per ``Admin``.

        Every administration service asks it before its first call, as what another login gets is worse than a
        refusal: a refused DescribeUserScramCredentials aborts the process inside librdkafka (confluent-kafka
        2.16.1: ``munmap_chunk(): invalid pointer``), a refused DescribeAcls comes back as an empty list (a plan
        that can never remove a rule), and metadata leaves out the topics a login may not describe (a plan to
        create every topic). DescribeCluster itself is answered to every login that authenticates: one that may
        not describe the cluster gets no operations (None), never an error."""
        if self._administers:
            return
        what = "checking that this login may administer the cluster"
        found = await self.call(what, lambda c: c.describe_cluster(include_authorized_operations=True,
                                                                     request_timeout=self.conn.timeout_s))
        cluster = (await self.results(what, {"cluster": found}))["cluster"]
        if isinstance(cluster, BaseException):
            raise cluster
        may = {op.name for op in cluster.authorized_operations or ()}
        if not may >= ADMINISTER:
            held = ", ".join(sorted(may)) or "none"
            raise KafkaAccessError(f"{self.conn.principal} (the login in {self.conn.source}) may not administer "
                                   f"the Kafka cluster at {self.conn.bootstrap} (its operations on the cluster: "
                                   f"{held}), and {doing} needs the admin's login: name the admin's client.properties "
                                   "in PUENTE_CLIENT_CONFIG or --command-config")
        self._administers = True

    def error(self, exc: KafkaException, what: str) -> KafkaError:
        """The Puente error for a librdkafka failure while doing ``what``."""
        err = exc.args[0] if exc.args and isinstance(exc.args[0], RdKafkaError) else None
        if self._refused is None and (err is None or err.code() in _UNAVAILABLE):
            self.client.poll(1.0)  # the reason a connection failed arrives only through the error callback
        if self._refused is not None and (err is None or err.code() in _UNAVAILABLE):
            err = self._refused
        code = err.code() if err is not None else None
        text = (err.str() if err is not None else str(exc))[:300]
        where = f"Kafka at {self.conn.bootstrap}"
        if code in _UNAVAILABLE:
            return KafkaUnavailableError(f"{where} could not be reached within {self.conn.timeout_s:g}s while "
                                         f"{what}: check {self.conn.servers_from} and that Kafka is "
                                         f"running ({text})")
        if code == RdKafkaError._SSL:
            reason = _certificate_refusal(self.conn) if "verif" in text else None
            if reason is not None:
                text = f"the broker's certificate was refused: {reason}"
            return KafkaAuthError(f"{where}: the TLS handshake failed while {what} ({text}): check that the "
                                  f"broker's certificate is signed by the CA in {self.conn.ca_file or 'the system'} "
                                  f"(ssl.truststore.location in {self.conn.source}) and has not expired")
        if code in _AUTH:
            return KafkaAuthError(f"{where} refused {self.conn.principal} while {what}: check the credentials and "
                                  f"TLS files in {self.conn.source} ({text})")
        if code in _ACCESS:
            return KafkaAccessError(f"{where} refused {self.conn.principal} access while {what} ({text}): no ACL "
                                    "allows it; ask the operator to check the ACLs (`puente acls plan`)")
        failure = KafkaOperationError(f"{where}: {what} failed: {text}")
        failure.retriable = bool(err is not None and err.retriable())
        return failure


async def _off_loop(operation: Callable[[AdminClient], T], client: AdminClient) -> T:
    """``operation(client)`` run in a daemon thread of its own, its result or error handed back to the loop.

    Not asyncio's default executor (``asyncio.to_thread``): ``asyncio.run`` waits for its threads as it
    ends, and the interpreter waits for them as it exits, so a call blocked in librdkafka (metadata from
    a Kafka that does not answer: up to the timeout, 600 s at most) held Ctrl-C's exit status back until
    it returned. A cancelled caller stops waiting at once; the thread, left to finish on its own, holds
    nothing the process waits for, and what it returns then is dropped."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if done.cancelled():  # the caller stopped waiting
            return
        if ok:
            done.set_result(value)
        else:
            done.set_exception(value)

    def work() -> None:
        try:
            outcome: tuple[bool, Any] = (True, operation(client))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, which raises it
            outcome = (False, exc)
        with contextlib.suppress(RuntimeError):  # the loop has closed: no one waits for the answer any more
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=work, name="puente-kafka-admin", daemon=True).start()
    return await done


def _certificate_refusal(conn: KafkaConnection) -> str | None:
    """Why the first bootstrap server's certificate does not verify against the connection's CA, in
    OpenSSL's words ("certificate has expired", "self-signed certificate in certificate chain"...):
    librdkafka only says it "could not be verified". None when it verifies or cannot be reached."""
    host, _, port = conn.bootstrap.split(",")[0].strip().rpartition(":")
    try:
        context = ssl.create_default_context(cafile=str(conn.ca_file) if conn.ca_file else None)
        with socket.create_connection((host.strip("[]"), int(port)), timeout=min(5.0, conn.timeout_s)) as raw, \
                context.wrap_socket(raw, server_hostname=host.strip("[]")):
            return None
    except ssl.SSLCertVerificationError as exc:
        return str(exc.verify_message or "it does not verify")[:200]
    except (OSError, ValueError):
        return None


async def instance_holder(conn: KafkaConnection, group_id: str, instance_id: str) -> tuple[str, str] | None:
    """The member of ``group_id`` that has ``group.instance.id`` ``instance_id`` now: its member id
    and "client id on host"; None when no member has that name."""
    admin = Admin(conn)
    futures = await admin.call("describing the broker group",
                                lambda c: c.describe_consumer_groups([group_id], request_timeout=conn.timeout_s))
    found = (await admin.results("describing the broker group", futures))[group_id]
    if isinstance(found, BaseException):
        raise found
    for member in found.members:
        if member.group_instance_id == instance_id:
            return str(member.member_id), f"{member.client_id} on {str(member.host).lstrip('/')}"
    return None


async def group_offsets(conn: KafkaConnection, group_id: str) -> dict[tuple[str, int], int]:
    """``group_id``'s committed offset of every partition this login may describe, each as Kafka settled it.

    An offset committed in a transaction still open is not answered yet: Kafka gives that partition
    UNSTABLE_OFFSET_COMMIT (asked with ``require_stable``), which librdkafka's admin call does not
    retry. Such partitions are asked again, every answer kept as it settles (a committed offset only
    grows, so an earlier settled answer stays true), until ``conn.timeout_s`` has passed. A partition
    with no committed offset, still unsettled then, or answered with another error, is left out."""
    admin = Admin(conn)
    what = f"reading the committed offsets of group {group_id}"
    settled: dict[tuple[str, int], int] = {}
    deadline = time.monotonic() + conn.timeout_s
    while True:
        futures = await admin.call(what, lambda c: c.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group_id)], require_stable=True, request_timeout=conn.timeout_s))
        found = (await admin.results(what, futures))[group_id]
        if isinstance(found, BaseException):
            raise found
        unstable = False
        for tp in found.topic_partitions or ():
            if tp.error is None and tp.offset >= 0:
                settled.setdefault((tp.topic, tp.partition), tp.offset)
            elif tp.error is not None and tp.error.code() == RdKafkaError.UNSTABLE_OFFSET_COMMIT:
                unstable = unstable or (tp.topic, tp.partition) not in settled
        if not unstable or time.monotonic() >= deadline:
            return settled
        await asyncio.sleep(0.1)
