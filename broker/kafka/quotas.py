"""Kafka's per-user client quotas: read (DescribeClientQuotas) and set (AlterClientQuotas).

A quota bounds what one login may cost the nodes every party shares: ``producer_byte_rate`` and
``consumer_byte_rate`` (bytes a second) and ``request_percentage`` (percent of one request handler
thread's time over the quota window). Kafka throttles a client past its quota by holding back its
answers: it slows, it is never refused. ``broker.access.quota_plan`` says what each party gets.

Neither confluent-kafka nor aiokafka has an AlterClientQuotas call, so the request is defined here
(API key 49, version 0, Kafka 2.6 and newer; Kafka 4.1 still takes it) in aiokafka's own pattern
(``Request`` builds the ``RequestStruct`` of the version a connection negotiated) and sent through
aiokafka's admin client, made in ``broker.kafka.clients`` (``admin_session``) from the one
``KafkaConnection``. aiokafka defines DescribeClientQuotas (API key 48 v0) already.

Reading asks for every entity (no component, not strict: Kafka's ``ClientQuotaFilter.all()``) and
keeps those of a user: a user by name, the default for every user (``DEFAULT_USER``), and a user's for one
client id or its default client id, keyed ``<user>/client-id=<id>`` (``FOR_CLIENT``): Kafka takes the most
specific quota first (user and client id, then user and default client id, then the user alone), so one of
those set on a party's login would replace the party's own, and the plan must see it to remove it.
Quotas of a client id alone or an IP are not a user's, and not read here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TypeAlias

import aiokafka.errors as aiokafka_errors
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import DescribeClientQuotasRequest
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Boolean, Float64, Int16, Int32, Schema, String

from broker.access import FOR_CLIENT
from broker.kafka.clients import admin_session, translate
from broker.kafka.connection import KafkaConnection
from puente.errors import KafkaAccessError, KafkaError, KafkaOperationError

DEFAULT_USER = "<default>"
"""The key ``user_quotas`` gives the default entity (every user without a quota of its own): Kafka's own name for
it (``kafka-configs --entity-default``, and the name it was stored under in ZooKeeper)."""

USER = "user"
CLIENT_ID = "client-id"
ALTER_CLIENT_QUOTAS, DESCRIBE_CLIENT_QUOTAS = 49, 48


# aiokafka's protocol classes are Any to mypy (ignore_missing_imports): hence the ignores on the classes built on them.
class AlterClientQuotasResponse_v0(Response):  # type: ignore[misc]
    API_KEY = ALTER_CLIENT_QUOTAS
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("entries", Array(
            ("error_code", Int16),
            ("error_message", String("utf-8")),  # nullable: aiokafka's String reads a length of -1 as None
            ("entity", Array(("entity_type", String("utf-8")), ("entity_name", String("utf-8")))))),
    )


class AlterClientQuotasRequest_v0(RequestStruct):  # type: ignore[misc]
    API_KEY = ALTER_CLIENT_QUOTAS
    API_VERSION = 0
    RESPONSE_TYPE = AlterClientQuotasResponse_v0
    SCHEMA = Schema(
        ("entries", Array(
            ("entity", Array(("entity_type", String("utf-8")), ("entity_name", String("utf-8")))),
            ("ops", Array(("key", String("utf-8")), ("value", Float64), ("remove", Boolean))))),
        ("validate_only", Boolean),
    )


AlterClientQuotasRequestStruct: TypeAlias = AlterClientQuotasRequest_v0
Entity = list[tuple[str, str | None]]
"""An entity's components: (entity type, name); a name of None is the type's default."""
Op = tuple[str, float, bool]
"""One change of an entity's quotas: (key, value, remove); a removal's value is not read."""


class AlterClientQuotasRequest(Request[AlterClientQuotasRequestStruct]):  # type: ignore[misc]
    """Set or remove quotas of entities: ``entries`` pairs each entity with its changes."""

    API_KEY = ALTER_CLIENT_QUOTAS

    def __init__(self, entries: list[tuple[Entity, list[Op]]], validate_only: bool = False) -> None:
        self._entries = entries
        self._validate_only = validate_only

    def build(self, request_struct_class: type[AlterClientQuotasRequestStruct]) -> AlterClientQuotasRequestStruct:
        return request_struct_class(self._entries, self._validate_only)


def user_entity(user: str) -> Entity:
    """The entity of one key ``users_described`` gives: a user's own quotas (``DEFAULT_USER``: the default for every
    user), or a user's for one client id (``<user>/client-id=<id>``, ``<default>`` for its default client id)."""
    name, sep, client = user.rpartition(FOR_CLIENT) if FOR_CLIENT in user else (user, "", "")
    entity: Entity = [(USER, None if name == DEFAULT_USER else name)]
    if sep:
        entity.append((CLIENT_ID, None if client == DEFAULT_USER else client))
    return entity


def entity_key(entity: Entity) -> str | None:
    """The key ``users_described`` gives ``entity``: a user's, alone or with a client id; None for any other."""
    kinds = dict(entity)
    if USER not in kinds or len(entity) != len(kinds) or not set(kinds) <= {USER, CLIENT_ID}:
        return None
    user = DEFAULT_USER if kinds[USER] is None else kinds[USER]
    if CLIENT_ID not in kinds:
        return user
    return f"{user}{FOR_CLIENT}{DEFAULT_USER if kinds[CLIENT_ID] is None else kinds[CLIENT_ID]}"


def alter_request(changes: Mapping[str, Mapping[str, float | None]]) -> AlterClientQuotasRequest:
    """The request making ``changes``: for each user, each key to a value, or removed (None)."""
    return AlterClientQuotasRequest([
        (user_entity(user), [(key, 0.0 if value is None else float(value), value is None)
                             for key, value in sorted(ops.items())])
        for user, ops in sorted(changes.items()) if ops])


def describe_request() -> DescribeClientQuotasRequest:
    """A request for every entity's quotas (Kafka's ``ClientQuotaFilter.all()``)."""
    return DescribeClientQuotasRequest([], False)


def users_described(response: Response, conn: KafkaConnection, what: str) -> dict[str, dict[str, float]]:
    """The quotas of each user in a DescribeClientQuotas answer, alone or for a client id (``entity_key``); the
    answer's error raised as Puente's (``answer_error``)."""
    if response.error_code:
        raise answer_error(response.error_code, response.error_message, conn, what)
    out: dict[str, dict[str, float]] = {}
    for entity, values in response.entries:
        key = entity_key([(kind, name) for kind, name in entity])
        if key is None:
            continue  # a client id's alone, or an IP's: no user's (module docstring)
        out.setdefault(key, {}).update({name: float(value) for name, value in values})
    return out


def alter_failures(response: Response, conn: KafkaConnection, what: str) -> dict[str, str]:
    """Each user whose change an AlterClientQuotas answer refused, with Kafka's reason (one line, short). An
    authorization refusal is the login's, not a user's: KafkaAccessError is raised (``answer_error``)."""
    failed: dict[str, str] = {}
    for code, message, entity in response.entries:
        if not code:
            continue
        error = answer_error(code, message, conn, what)
        if isinstance(error, KafkaAccessError):
            raise error
        user = entity_key([(kind, name) for kind, name in entity]) or repr(entity)[:80]
        failed[user] = _reason(code, message)
    return failed


def _reason(code: int, message: str | None) -> str:
    """Kafka's name for an error code, and the first line of its message, short."""
    name = str(aiokafka_errors.for_code(code).message)
    return name + (f": {message.strip().splitlines()[0][:200]}" if message and message.strip() else "")


def answer_error(code: int, message: str | None, conn: KafkaConnection, what: str) -> KafkaError:
    """The Puente error for an error code in an answer while doing ``what``: an authorization refusal is
    KafkaAccessError naming the principal and what to check, never a secret; another, KafkaOperationError."""
    if aiokafka_errors.for_code(code) is aiokafka_errors.ClusterAuthorizationFailedError:
        return KafkaAccessError(f"Kafka at {conn.bootstrap} refused {conn.principal} while {what} "
                                "(CLUSTER_AUTHORIZATION_FAILED): reading client quotas needs DESCRIBE_CONFIGS on the "
                                "cluster and setting them ALTER_CONFIGS, which only the admin has; run it with the "
                                "admin's client configuration (PUENTE_CLIENT_CONFIG)")
    error = KafkaOperationError(f"Kafka at {conn.bootstrap}: {what} failed: {_reason(code, message)}")
    error.retriable = bool(aiokafka_errors.for_code(code).retriable)
    return error


async def _send(client: AIOKafkaAdminClient, conn: KafkaConnection, request: Request, what: str) -> Response:
    """``request`` sent to any node within ``conn.timeout_s`` (a node hands a quota change to the controller), or
    KafkaUnavailableError; KafkaOperationError in one line when the node offers no version of it defined here."""
    try:
        async with asyncio.timeout(conn.timeout_s):
            return await client._send_request(request)
    except TimeoutError as exc:
        raise translate(exc, conn, what) from exc
    except (aiokafka_errors.IncompatibleBrokerVersion, NotImplementedError):
        # aiokafka's Request.prepare: the API unknown to the node, or none of its versions is one defined here.
        raise KafkaOperationError(
            f"Kafka at {conn.bootstrap} does not take {type(request).__name__.removesuffix('Request')} version 0 "
            f"(API key {request.API_KEY}), which Kafka 2.6 and newer do: {what} needs a newer Kafka") from None


async def user_quotas(conn: KafkaConnection) -> dict[str, dict[str, float]]:
    """Every user's own quotas on the cluster (``{user: {key: value}}``), the default's as ``DEFAULT_USER``; a
    user with none is not named."""
    what = "reading client quotas"
    async with admin_session(conn, what) as client:
        return users_described(await _send(client, conn, describe_request(), what), conn, what)


async def set_user_quotas(conn: KafkaConnection, changes: Mapping[str, Mapping[str, float | None]]) -> dict[str, str]:
    """Make ``changes`` (for each user, each key set to a value or removed: None); the users whose change Kafka
    refused, each with its reason (the others' changes were made). A change reaches every node through the
    metadata log a moment after the call returns: this waits, within ``conn.timeout_s``, until the cluster
    reads back each change made, so that a plan run next sees it. KafkaAccessError when the login may not set
    quotas."""
    what = "setting client quotas"
    if not any(changes.values()):
        return {}
    request = alter_request(changes)
    async with admin_session(conn, what) as client:
        failed = alter_failures(await _send(client, conn, request, what), conn, what)
        await _settled(client, conn, {user: ops for user, ops in changes.items() if ops and user not in failed})
    return failed


def _holds(found: Mapping[str, Mapping[str, float]], changes: Mapping[str, Mapping[str, float | None]]) -> bool:
    return all(found.get(user, {}).get(key) == value for user, ops in changes.items() for key, value in ops.items())


async def _settled(client: AIOKafkaAdminClient, conn: KafkaConnection,
                   changes: Mapping[str, Mapping[str, float | None]]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + conn.timeout_s
    what = "reading client quotas back"
    while True:
        if _holds(users_described(await _send(client, conn, describe_request(), what), conn, what), changes):
            return
        if loop.time() >= deadline:
            raise KafkaOperationError(f"Kafka at {conn.bootstrap} did not list the quota changes within "
                                      f"{conn.timeout_s:g}s; run `puente acls plan` to see where they stand")
        await asyncio.sleep(0.1)
