"""Settings for the services, read once at the application edge from ``PUENTE_*`` variables."""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
import unicodedata
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from policies import RESERVED_OWNERS
from puente.errors import ConfigError
from puente.strict import DuplicateKey, one_line, unique_keys

AGENCIES = ("SENAFRONT", "SENAN", "PN", "SNM", "COMBIFRON")
AGENCY_COUNTRIES = {"COMBIFRON": "COL"}  # Colombia's alerts, relayed by the binational commission
# The Colombian services whose alerts the commission relays, as the shipped adapters/agencies.yaml names them.
AGENCY_UNITS = {"COMBIFRON": ("PONAL", "DIJIN", "ARC", "EJC", "FAC", "MIGRACION")}

# The PUENTE_* variables that are not settings, each read where it is used: any other PUENTE_* variable
# that is no setting is refused (``_misnamed``), since a misspelt one would be ignored and its
# default (the shipped demo policy, say) silently used.
OTHER_VARIABLES = frozenset({
    "PUENTE_AUDIT_INDEX",  # the auditors' index file (broker.audit_index)
    "PUENTE_NATIVE_AVRO",  # 0: the pure-Python Avro codec (schemas)
    "PUENTE_DEBUG",  # tracebacks on errors (puente.cli)
    "PUENTE_HOME", "PUENTE_KAFKA_PORT", "PUENTE_KAFKA_CLUSTER_PORT", "PUENTE_CACHE",  # puente kafka (local Kafka)
    "PUENTE_UID", "PUENTE_GID",  # compose.yaml's service user
    "PUENTE_CHAOS", "PUENTE_CHROMIUM", "PUENTE_SCREENSHOT", "PUENTE_TEST_LOGINS",  # the tests
    "PUENTE_TEST_WORKERS", "PUENTE_TEST_KAFKAS",  # make test's parallel workers (scripts/test.sh)
})


_NAME = r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$"
_HOST = r"^(\*\.)?[A-Za-z0-9][A-Za-z0-9.-]{0,252}(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?$"

_MAX_RETENTION_DAYS = (2**63 - 1) // 86_400_000  # the most days whose milliseconds fit a Java long


def _by_agency(given: dict[str, Any], default: Mapping[str, Any], agencies: Collection[str],
               wrong: str) -> dict[str, Any]:
    """A setting keyed by agency, each key among ``agencies``: the shipped ``default`` keeps only those (a deployment
    without one of its agencies needs no override); any other value naming another is refused, ``wrong`` saying
    why."""
    if given == default:
        return {a: v for a, v in given.items() if a in agencies}
    strangers = sorted(set(given) - set(agencies))
    if strangers:
        raise ValueError(f"names {', '.join(a[:40] for a in strangers)}, {wrong}")
    return given


class PuenteSettings(BaseSettings):
    """Where Kafka is, how topics are shaped, where keys and policies live. Frozen once read."""

    model_config = SettingsConfigDict(env_prefix="PUENTE_", frozen=True, extra="ignore")

    @classmethod
    def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        """What is given, then the environment read exactly (``_ExactEnvironment``); no .env or secrets folder."""
        return init_settings, _ExactEnvironment(settings_cls)

    bootstrap: str | None = Field(None, description="Kafka bootstrap servers (host:port,...); or bootstrap.servers "
                                                   "in the client configuration file")
    client_config: Path | None = Field(None, description=(
        "a Kafka client properties file (the Java client's names, or librdkafka's): security.protocol, "
        "sasl.*, ssl.*; what --command-config gives"))
    # At least a second: reaching Kafka is a TCP connection, a TLS handshake and a SCRAM exchange (several round
    # trips) before the request itself, so a shorter bound reports a healthy Kafka unavailable under ordinary load;
    # and below 10 ms librdkafka refuses its socket.timeout.ms as it starts, which read as a TLS or SASL problem.
    kafka_timeout_s: float = Field(15.0, ge=1, le=600, allow_inf_nan=False, description=(
        "how long reaching Kafka may take before a command reports it unavailable, 1 to 600 seconds"))
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="long-running processes")
    log_format: Literal["console", "json"] = Field("console", description="json: one JSON object per line")
    keys: Path = Field(Path(".puente/keys"), description="the keystore folder")
    logins: Path | None = Field(None, description=(
        "where each party's Kafka login (client.properties) lives, in the keystore's folder layout; "
        "default: the keystore folder, beside each party's keys. `users apply` writes there, so a "
        "deployment that keeps it apart lets the admin write logins without reaching anyone's keys"))
    policy_dir: Path | None = Field(None, description="policy data folder; default: the shipped policies")
    # Kafka's replication factor is a 16-bit number in the protocol: a larger one could not even be sent.
    replication: int = Field(1, ge=1, le=32767, description="replication factor of Puente's topics")
    min_insync: int | None = Field(None, ge=1, description="min.insync.replicas; default: 2 when replication >= 3")
    ingress_partitions: int = Field(3, ge=1, le=64)
    feed_partitions: int = Field(3, ge=1, le=64)
    # Names every topic, and the ACLs on them: Kafka's topic characters only, and a letter or digit first
    # ("." and ".." are no topic names; "_" begins Kafka's own).
    topic_prefix: str = Field("puente", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    # Named in ACLs (the broker's READ on it, its transactional ids <group_id>-slot-N): the same rule as
    # the other identifiers, so no "*" (Kafka's wildcard: every group) and no newline reaches a rule.
    group_id: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$", description=(
        "the broker consumer group; default: <topic_prefix>-broker. Not under <topic_prefix>.: that is "
        "where the partners' subscriber groups live (<topic_prefix>.feed.<P>.subscriber)"))
    # Each agency names a folder of the keystore, a login and a topic: the keystore's own id rule.
    agencies: tuple[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")], ...] = Field(
        AGENCIES, min_length=1, description="the agencies whose ingress topics the broker reads, in slot order (JSON)")
    agency_countries: Annotated[dict[str, Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]], NoDecode] = Field(
        default_factory=lambda: dict(AGENCY_COUNTRIES), description=(
        "the originator country each agency's alerts must name, as JSON ({\"COMBIFRON\": \"COL\"}); an agency "
        "not named here is of the policy's home country and must name itself as originator; one of another "
        "country relays that country's services, named <COUNTRY>-<unit>. The broker dead-letters any other "
        "originator (reason originator): the policy applies the originator country's restrictions. It "
        "replaces the default: name every agency of another country"), validate_default=True)
    # An allow-list: a unit is a code (no hyphen: an alert id <agency>:<COUNTRY>-<unit>-... is in one unit's series),
    # and the broker takes no unit it does not name. A code of any shape would let an agency system put its own
    # text, a source's name, into the audit's originator column and every partner's envelope.
    agency_units: Annotated[dict[str, tuple[Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9_]{0,63}$")],
                                            ...]], NoDecode] = Field(
        default_factory=lambda: dict(AGENCY_UNITS), description=(
        "the units each agency of another country relays, as JSON ({\"COMBIFRON\": [\"PONAL\", \"DIJIN\"]}): "
        "codes of capitals, digits and _; its alerts may name <COUNTRY>-<unit> for these units only, or the agency "
        "itself. The broker dead-letters any other unit (reason originator). It replaces the default: name every "
        "unit"), validate_default=True)
    # retention.ms is a Java long: days * 86,400,000 must fit in one, or Kafka refuses the topic's configuration.
    ingress_retention_days: int = Field(7, ge=1, le=_MAX_RETENTION_DAYS)
    audit_retention_days: int = Field(3650, ge=1, le=_MAX_RETENTION_DAYS)
    deadletter_retention_days: int = Field(30, ge=1, le=_MAX_RETENTION_DAYS)
    replay_window_days: int = Field(7, ge=1, le=366, description=(
        "how long the broker remembers alert ids to refuse replays; a record reaching Kafka longer than "
        "this after its signed publication time is refused as stale"))
    # Bounded: a slot pauses its partition only once its queue holds a batch, and one transaction takes it all; a
    # batch of millions would hold a backlog in memory and outlast the transaction's timeout, aborted and redone.
    max_batch: int = Field(500, ge=1, le=5000, description="ingress records per transaction")
    # Latency against throughput. Each slot's batch is one transaction of four coordinator round
    # trips. Fewer open at once: each commits sooner and the slots waiting gather larger batches, but
    # the round trips of the others no longer overlap. Measured on the 2-core machine at 1,000
    # alerts/s (bench/RESULTS.md, session 6), 12 open at once gave p50/p99 68-97/116-177 ms against
    # 94-169/157-343 ms with 4: the worker is short of CPU, and overlap helps it more than batching,
    # so the default caps nothing at the default topology; lower it where the coordinator is the limit.
    max_concurrent_txns: int = Field(16, ge=1, le=256, description=(
        "slot transactions one worker keeps open at once; lower batches more per transaction (fewer "
        "coordinator round trips), higher overlaps more of them"))
    producer_retry_backoff_ms: int = Field(10, ge=1, le=1000, description=(
        "how long a slot producer waits before retrying a refused request (e.g. NOT_ENOUGH_REPLICAS while "
        "the transaction coordinator moves); aiokafka's default of 100 ms was the latency tail; shorter "
        "means more retries, each a request, while Kafka fails over"))
    feed_carry_wait_ms: int = Field(20, ge=0, le=1000, description=(
        "how long a slot whose queue ran dry waits for a next batch to carry its last transaction's feed "
        "records before writing them in a transaction of their own: 0 sends them at once (lowest latency, "
        "up to twice the transactions at a steady rate); longer saves transactions at low rates, each "
        "delivery waiting it out"))
    # A slot's work comes from the worker's one consumer. Kafka answers a fetch as soon as it holds
    # fetch.min.bytes, or when fetch.max.wait.ms has passed: with one byte (Kafka's default) a worker at
    # a steady 1,000 alerts/s fetched a record or two at a time, several hundred fetches a second, each
    # a TLS request and a response parsed in Python, and its slot transactions waited behind them on
    # the event loop. A backlog fills 16 KiB at once, so throughput does not wait; at a low rate each
    # fetch waits the whole fetch.max.wait.ms, until the worker is quiet (``broker.worker.QUIET_AFTER_S``).
    # bench/RESULTS.md (session 27) has the runs that chose 15 ms: 10 ms did about as well, 5 ms no
    # better than 50, and 20 ms or more saved CPU at some latency; the differences between 10 and 20 ms
    # are within this machine's noise.
    fetch_max_wait_ms: int = Field(15, ge=1, le=500, description=(
        "Kafka's fetch.max.wait.ms for the worker's consumer: the longest a fetch waits for "
        "fetch.min.bytes; it is the most a slow stream adds to an alert's latency (a worker quiet for a "
        "second long-polls instead, answered at the first byte; at least 1: with 0, a worker with nothing "
        "to read would fetch without pause)"))
    fetch_min_bytes: int = Field(16384, ge=1, le=1024 * 1024, description=(
        "Kafka's fetch.min.bytes for the worker's consumer: what a fetch waits to hold before Kafka "
        "answers it (or fetch.max.wait.ms has passed); 1 answers every fetch at once, which at a steady "
        "rate spends the worker's CPU on fetches of one or two records"))
    session_timeout_ms: int = Field(6000, ge=1000, le=300_000, description=(
        "how long the group waits for a silent worker before giving its slots to the others: the stall "
        "after a worker dies; Kafka refuses less than its group.min.session.timeout.ms (6000 by default), "
        "and too short a value lets a busy or paused worker be dropped"))
    heartbeat_interval_ms: int = Field(2000, ge=100, le=100_000, description=(
        "how often a worker tells the group it lives, and learns of a rebalance; at most a third of "
        "the session timeout"))
    group_instance_id: str | None = Field(None, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,199}$", description=(
        "Kafka's group.instance.id (static membership): a worker restarted under this name within the "
        "session timeout gets its own slots back and the group does not rebalance, so no other worker "
        "drops or reloads a slot. A static member never leaves the group: a stopped worker's slots, and "
        "any rebalance meanwhile, wait out the session timeout. Each worker needs its own name: two live "
        "workers with one name take the slots from each other without end (exactly once still holds, "
        "progress does not). A restart that changes what the worker reads (PUENTE_AGENCIES) needs a new "
        "name or a stop longer than the session timeout. With --workers N the workers are <name>-0 .. "
        "<name>-N-1. Default: none (dynamic membership)"))
    stall_warning_s: float = Field(10.0, ge=1, le=3600, allow_inf_nan=False, description=(
        "a worker with work that makes no progress for this long logs what it waits for, and again "
        "every such interval until it moves"))
    metrics_port: int | None = Field(None, ge=1, le=65535, description="port of the /metrics endpoint")
    # Compared whole with the Host header a browser sends: a name or an address and a port, never a URL.
    console_hosts: tuple[Annotated[str, StringConstraints(pattern=_HOST)], ...] = Field((), description=(
        "Host header values the auditors' console answers under besides those it takes from where it listens "
        "(loopback names on a loopback address, the certificate's DNS and IP names over TLS, each with the port), "
        "as JSON ([\"console.example\"]): a name or address as the browser sends it, with the port unless it is "
        "the scheme's own (a reverse proxy's 443, say); *.name stands for one label. Any other is refused (400). "
        "Naming any is taken to mean a proxy terminating TLS: every request is then taken as https (its Host may "
        "be the proxy's upstream address), the console's cookies are Secure and __Host- named, and HSTS is sent"))
    # Each request a signed-in auditor makes is one QUERY record, kept for the audit's retention and written one at a
    # time: a person clicking, or opening a search's alerts in tabs, stays well within 60 at once and one a second.
    console_page_rate: int = Field(60, ge=1, le=6000, description=(
        "requests a minute one console account may make, sustained (pages, exports, refusals); past it and "
        "PUENTE_CONSOLE_PAGE_BURST the console answers 429, records none of them, and writes one record a minute "
        "of how many it refused"))
    console_page_burst: int = Field(60, ge=1, le=6000, description=(
        "requests one console account may make at once before PUENTE_CONSOLE_PAGE_RATE holds it"))
    # A SCRAM user name, or a certificate's principal as Kafka names it (CN=lag-exporter,OU=ops); no "*" (every user).
    acl_observers: tuple[Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f-\x9f*]{1,255}$")], ...] = (
        Field((), description=(
            "logins of monitoring tools (a lag exporter, Burrow) that may describe this deployment's topics, groups "
            "and transactional ids, as JSON ([\"lag-exporter\"], or a certificate's principal as Kafka names it, "
            "[\"CN=lag-exporter,OU=ops\"], without User:): a rule to describe them of any other login no "
            "policy names makes `puente acls plan` report drift, since offsets and group members tell who gets "
            "what, and when")))
    metrics_address: str = Field("127.0.0.1", description=(
        "IP address the /metrics endpoint binds to (0.0.0.0: every IPv4 address, :: every address)"))
    metrics_hosts: tuple[Annotated[str, StringConstraints(pattern=_NAME)], ...] = Field((), description=(
        "names the /metrics endpoint answers under besides IP addresses and localhost, as JSON ([\"broker-1\"]): "
        "the name Prometheus scrapes it by; a request under any other Host is refused (400)"))
    metrics_token_file: Path | None = Field(None, description=(
        "a file (mode 0600) holding the bearer token /metrics then asks for, one line of at least 32 characters "
        "(openssl rand -hex 32); Prometheus sends it from the same file (authorization: credentials_file). Needed "
        "when PUENTE_METRICS_ADDRESS is not a loopback address: the per-partner decision counts are the audit's to "
        "show. /healthz and /readyz stay open"))

    @field_validator("agencies")
    @classmethod
    def _agencies_distinct(cls, agencies: tuple[str, ...]) -> tuple[str, ...]:
        """Each agency once: two slots would read one ingress topic, each with its own audit chain. Once ignoring
        case and ``.`` against ``_`` too: Kafka refuses a second topic whose name differs from another's only in
        ``.`` and ``_`` (its metrics cannot tell them apart), and a keystore folder or login file named only by
        case is one file where names are not case-sensitive."""
        reserved = sorted(a for a in agencies if a.casefold() in {o.casefold() for o in RESERVED_OWNERS})
        if reserved:  # its key-agreement key would be the broker's own (``<owner>-kex-<g>``): one file, in any case
            raise ValueError(f"names {', '.join(reserved)}, the owner of the broker's own keys in the keystore: give "
                             "the agency another id")
        twice = sorted({a for a in agencies if agencies.count(a) > 1})
        if twice:
            raise ValueError(f"names {', '.join(twice)} more than once")
        seen: dict[str, str] = {}
        for agency in agencies:
            other = seen.setdefault(agency.casefold().replace(".", "_"), agency)
            if other != agency:
                raise ValueError(f"names {other} and {agency}, which differ only in case or in . against _: "
                                 "their topics, folders or logins would be one")
        return agencies

    @field_validator("metrics_address")
    @classmethod
    def _an_ip_address(cls, address: str) -> str:
        """An IP address, written out: a name would be resolved by the server at start, and every address is
        only ever asked for as such (0.0.0.0 or ::), never by a value left empty."""
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ValueError("is not an IP address (127.0.0.1 by default; 0.0.0.0 for every IPv4 address)") from None
        return address

    @field_validator("agency_countries", "agency_units", mode="before")
    @classmethod
    def _agency_map_json(cls, value: Any, info: ValidationInfo) -> Any:
        """PUENTE_AGENCY_COUNTRIES and PUENTE_AGENCY_UNITS read as JSON naming each agency once: with a name given
        twice, plain JSON keeps the last, silently, and what an agency's alerts are held to is not a thing to guess."""
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value, object_pairs_hook=unique_keys)
        except DuplicateKey as exc:
            raise ValueError(f"names agency {one_line(exc.key)[:40]} twice: name each agency once") from None
        except ValueError:
            shape = '{"AGENCY": "COUNTRY", ...}' if info.field_name == "agency_countries" else \
                '{"AGENCY": ["UNIT", ...], ...}'
            raise ValueError(f"is not JSON: give {shape}") from None

    @field_validator("agency_countries")
    @classmethod
    def _agency_countries_name_agencies(cls, countries: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        """Each agency named is among ``agencies``: a misspelt one would leave the real one of the home country,
        and its alerts dead-lettered. The shipped default keeps only the agencies configured, so a deployment
        without COMBIFRON needs no PUENTE_AGENCY_COUNTRIES."""
        agencies = info.data.get("agencies")
        if agencies is None:  # agencies itself was refused; its error is the one to read
            return countries
        return _by_agency(countries, AGENCY_COUNTRIES, agencies,
                          f"not among PUENTE_AGENCIES ({', '.join(agencies)}): check the spelling")

    @field_validator("agency_units")
    @classmethod
    def _agency_units_name_relays(cls, units: dict[str, tuple[str, ...]],
                                  info: ValidationInfo) -> dict[str, tuple[str, ...]]:
        """Each agency named is one PUENTE_AGENCY_COUNTRIES names (an agency of the home country relays no units),
        each unit once. The shipped default keeps only those agencies, so a deployment without COMBIFRON needs no
        PUENTE_AGENCY_UNITS; one naming a relaying agency of its own names its units too, or the agency's alerts
        may name only the agency itself."""
        countries = info.data.get("agency_countries")
        if countries is None:  # agency_countries itself was refused; its error is the one to read
            return units
        units = _by_agency(units, AGENCY_UNITS, countries, f"not named in PUENTE_AGENCY_COUNTRIES "
                           f"({', '.join(countries) or 'none'}): only an agency of another country relays units")
        for agency, codes in units.items():
            twice = sorted({c for c in codes if codes.count(c) > 1})
            if twice:
                raise ValueError(f"names unit {twice[0]} of {agency[:40]} twice: name each unit once")
        return units

    @model_validator(mode="after")
    def _group_of_its_own(self) -> PuenteSettings:
        """The broker group outside every other party's names: under <topic_prefix>. are the partners'
        subscriber groups and the auditors' DESCRIBE prefix, so a group there would give the broker READ on
        a partner's group (joining it takes the partner's partitions) or share one with it."""
        group = self.group_id
        if group is not None and group.startswith(f"{self.topic_prefix}."):
            raise ValueError(f"PUENTE_GROUP_ID {group[:80]} lies in another party's names ({self.topic_prefix}.* "
                             f"are the partners' subscriber groups): unset it, or choose one outside them, "
                             f"e.g. {self.topic_prefix}-broker")
        return self

    @model_validator(mode="after")
    def _min_insync_within_replication(self) -> PuenteSettings:
        # More in-sync replicas required than there are replicas: every write to every topic would be refused.
        if self.min_insync is not None and self.min_insync > self.replication:
            raise ValueError(f"PUENTE_MIN_INSYNC ({self.min_insync}) must be at most PUENTE_REPLICATION "
                             f"({self.replication}): Kafka would refuse every write with fewer replicas than that")
        return self

    @model_validator(mode="after")
    def _heartbeat_within_session(self) -> PuenteSettings:
        if self.heartbeat_interval_ms * 3 > self.session_timeout_ms:
            raise ValueError("PUENTE_HEARTBEAT_INTERVAL_MS must be at most a third of PUENTE_SESSION_TIMEOUT_MS")
        return self

    @property
    def login_root(self) -> Path:
        """The folder whose party folders hold the Kafka logins (``PUENTE_LOGINS``, else the keystore)."""
        return self.logins or self.keys

    @property
    def broker_group(self) -> str:
        return self.group_id or f"{self.topic_prefix}-broker"

    @property
    def effective_min_insync(self) -> int:
        if self.min_insync is not None:
            return self.min_insync
        return 2 if self.replication >= 3 else 1


def known_variables() -> frozenset[str]:
    """Every ``PUENTE_*`` name Puente reads, written as it reads it: each setting's, and ``OTHER_VARIABLES``."""
    return frozenset(f"PUENTE_{name.upper()}" for name in PuenteSettings.model_fields) | OTHER_VARIABLES


class _ExactEnvironment(EnvSettingsSource):
    """The environment as the settings read it: a variable named exactly as a setting (``PUENTE_KEYS``), never
    another spelling of it (``puente_keys``, or ``PUENTE_KEY\\u017f``, a long s). The library matches names whatever
    their case, while every other ``PUENTE_*`` variable is read where it is used, by its exact name
    (``os.environ.get("PUENTE_HOME")``): read both ways, ``puente_home=/x`` moved the settings' keys but not
    ``puente kafka``'s data, whose wipe then deleted the default folder."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        known = known_variables()
        # Lower-cased as the library's own reading does, to meet its lower-cased field names.
        return {name.lower(): value for name, value in os.environ.items() if name in known}


# Characters that show as nothing, or only on the letter before them: format characters (a zero-width space, a
# zero-width joiner, a byte order mark, a soft hyphen) and combining marks a composed letter does not take in.
_INVISIBLE = frozenset({"Cf", "Mn", "Me"})


def _folded(name: str) -> str:
    """``name`` as names are compared for likeness: compatibility forms and case folded away (NFKC, case-folded,
    NFKC again: Unicode's NFKC_Casefold, near enough), so that ``puente_home``, ``PUENTE_KEY\\u017f`` (a long s,
    whose upper case is S) and ``PUENTE_\\u212aAFKA_PORT`` (a Kelvin sign, whose lower case is k) meet the name
    they look like; then what shows as nothing dropped (``_INVISIBLE``: ``\\u200bPUENTE_HOME``, a BOM before it)."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    return "".join(c for c in folded if unicodedata.category(c) not in _INVISIBLE)


def _imitates(folded: str, known: str) -> bool:
    """Whether ``folded`` (``_folded``) is ``known`` (folded too: ASCII, as every ``PUENTE_*`` name is) but for
    characters beyond ASCII, position by position: ``PUENT\\u0415_HOME`` (a Cyrillic E), ``\\u03a1UENTE_HOME`` (a
    Greek Rho). No confusables table is needed: a name Puente reads is ASCII, so any other character standing where
    one of its characters stands can only be there to look like it."""
    return len(folded) == len(known) and folded != known and all(
        c == k or not c.isascii() for c, k in zip(folded, known, strict=True))


def _shown(name: str) -> str:
    """A variable's name as an error shows it: its first 60 characters, any beyond ASCII escaped (``\\u212a``), so
    that a name written with a look-alike letter never reads as the name it imitates."""
    return name[:60].encode("ascii", "backslashreplace").decode("ascii")


def _misnamed(environ: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    """Each name in ``environ`` that looks like a ``PUENTE_*`` variable (``_folded``, ``_imitates``) but is not
    written exactly as one Puente reads, as the name it concerns (upper case: the known name it imitates, if any)
    and why. A known name written otherwise (``puente_home``, ``PUENT\\u0415_HOME``, a zero-width space before it)
    is refused, never taken: the settings (``_ExactEnvironment``) and every other reader take exact names only, so
    it would be ignored and the default used."""
    known = known_variables()
    by_fold = {_folded(name): name for name in known}
    for name in sorted(environ):
        if name in known:
            continue
        folded = _folded(name)
        meant = by_fold.get(folded) or next((k for f, k in sorted(by_fold.items()) if _imitates(folded, f)), None)
        if meant is not None:
            yield meant, (f"{_shown(name)} is {meant} written otherwise: write it as {meant} (names are read "
                          "exactly as written: this one would be ignored, and the default used)")
        elif folded.startswith("puente_") or _imitates(folded[:7], "puente_"):
            said = "PUENTE_" + folded[7:].upper()  # a prefix imitated is named as the one it imitates
            close = difflib.get_close_matches(said, sorted(known), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            yield said, (f"{_shown(name)} is not a Puente setting{hint}: check its spelling, or unset it; a misspelt "
                         "setting would leave its default in force")
        elif "puente_" in folded:
            # Whatever stands before it (a Hangul filler, U+3164, shows as nothing but is a letter, Lo): no
            # list of invisible characters is complete, so any name holding the prefix must be a known one.
            meant = max((k for f, k in by_fold.items() if f in folded), key=len, default=None)
            said = meant or "PUENTE_" + folded[folded.index("puente_") + 7:].upper()
            yield said, (f"{_shown(name)} holds PUENTE_ but is no name Puente reads: write it as {said} or unset it "
                         "(names are read exactly as written: this one would be ignored, and the default used)")


# The PUENTE_* variables that are a switch: 0 or 1, nothing else (``PUENTE_DEBUG=yes`` would be ignored unseen).
SWITCHES = frozenset({"PUENTE_DEBUG", "PUENTE_NATIVE_AVRO"})


# Characters no setting's value holds: controls (a tab, a line break, an escape) and Unicode's line and paragraph
# separators. A JSON value is written on one line.
_UNSEEN = frozenset({"Cc", "Zl", "Zp"})


def variable_problem(environ: Mapping[str, str]) -> str | None:
    """Why the ``PUENTE_*`` variables in ``environ`` cannot be read as they are, or None: one set to nothing (an
    empty PUENTE_KEYS would be the current folder, an empty address every address: a value left out is never a
    setting), one with a blank at its start or end (``PUENTE_KEYS=" /k"`` is the folder " /k" under the current
    one, never /k) or a control character or line separator within, or a switch (``SWITCHES``) other than 0 or 1.
    Names only, never a value."""
    return next((why for _, why in _unreadable(environ)), None)


def _unreadable(environ: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    for name in sorted(known_variables() & set(environ)):
        value = environ[name]
        if not value.strip():
            yield name, f"{name} is set to nothing: give it a value, or unset it for its default"
        elif value.endswith("\r"):  # what a file of settings saved with CRLF line ends leaves on every value
            yield name, (f"{name} ends with a carriage return (Windows line ends: an --env-file or .env file saved "
                         "with CRLF): save it with Unix line ends (LF); read as it is, a path or a name would be "
                         "another one")
        elif value != value.strip():
            yield name, (f"{name} begins or ends with a blank (a space, a tab or a line break): remove it; read as it "
                         "is, a path or a name would be another one")
        elif any(unicodedata.category(c) in _UNSEEN for c in value):
            yield name, (f"{name} holds a control character or a line break: write its value on one line, of "
                         "printable characters")
        elif name in SWITCHES and value not in ("0", "1"):
            yield name, f"{name} is a switch: 0 or 1"


def misnamed_variables(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """The names in ``environ`` that look like a ``PUENTE_*`` variable but are none written exactly (``_misnamed``):
    the name concerned and why, first to last, values unread."""
    return list(_misnamed(environ))


def variable_problems(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """Every ``PUENTE_*`` variable in ``environ`` that ``check_variables`` refuses, first to last, as the name
    it concerns (upper case) and one line saying why: a name that is no setting, or a known name written otherwise
    (``_misnamed``), then one that cannot be read as it is (``variable_problem``)."""
    return list(_misnamed(environ)) + list(_unreadable(environ))


def check_variables(environ: Mapping[str, str]) -> None:
    """ConfigError, one line naming it, for a ``PUENTE_*`` variable in ``environ`` that is no setting, a known name
    written otherwise (``_misnamed``), or cannot be read as it is (``variable_problem``): what every command checks
    first, those that read no other setting (``puente kafka``) too."""
    problems = variable_problems(environ)
    if problems:
        raise ConfigError(problems[0][1])


def load_settings(**overrides: object) -> PuenteSettings:
    """The settings from ``PUENTE_*`` variables (and ``overrides``); one clear line when one is invalid, when a
    ``PUENTE_*`` variable is no setting or is misnamed (``_misnamed``), or cannot be read as it is
    (``variable_problem``)."""
    check_variables(os.environ)
    try:
        return PuenteSettings(**overrides)  # type: ignore[arg-type]
    except SettingsError as exc:  # a value that does not parse at all (JSON for a list): never quoted
        found = re.search(r'field "(\w+)"', str(exc))
        name = f"PUENTE_{found[1].upper()}" if found else "a PUENTE_* setting"
        raise ConfigError(f"invalid setting {name}: its value does not parse (a list is JSON, e.g. "
                          '[\"SENAN\", \"PN\"])') from None
    except ValidationError as exc:
        first = exc.errors()[0]
        if not first["loc"]:  # a check across settings names them in its message
            raise ConfigError(f"invalid settings: {first['msg'].removeprefix('Value error, ')}") from None
        # The variable, then where in its value: a list's entry, a map's key (PUENTE_AGENCY_COUNTRIES's agency).
        name = f"PUENTE_{str(first['loc'][0]).upper()}"
        name += "".join(f" (entry {p + 1})" if isinstance(p, int) else f" (key {one_line(str(p))[:40]})"
                        for p in first["loc"][1:])
        raise ConfigError(f"invalid setting {name}: {first['msg'].removeprefix('Value error, ')}") from None
