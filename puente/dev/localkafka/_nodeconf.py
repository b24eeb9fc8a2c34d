"""The secured configuration of one Kafka node, shared by the local runner and the compose deployment.

Both run the same security: a ``CLIENT`` listener taking only SASL_SSL (TLS, SCRAM-SHA-512 logins),
and an ``INTERNAL`` listener (replication between the nodes, and the nodes' own health checks) and a
``CONTROLLER`` listener taking only TLS with client certificates (CN ``kafka-node``, of the organisation
the project's CA names: ``puente.dev.pki``); the ``StandardAuthorizer`` refusing whatever no ACL names,
and two super users: the operator's ``admin`` and the nodes themselves. The nodes are ``kafka-node`` by
their certificate alone: that name has no SCRAM login, so no password, wherever it is kept, makes a
super user of whoever reaches the client port. Only addresses, paths and sizes differ between the two;
they are the arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.kafka.acls import SCRAM_ITERATIONS
from broker.kafka.connection import unsafe_value
from puente.dev.pki import ORGANIZATION
from puente.errors import KafkaSetupError

NODE_PRINCIPAL = "kafka-node"
ADMIN_PRINCIPAL = "admin"
FIRST_LOGINS = (ADMIN_PRINCIPAL,)  # created when the storage is formatted; the nodes log in by certificate

# How fast a dead node is noticed. The active controller fences a broker that has sent no heartbeat
# for broker.session.timeout.ms (Kafka's default 9000); only then are the partitions it led given new
# leaders, so this bounds the stall a killed node causes (about 10-11 s measured with the default).
# 4 s with a heartbeat every second still leaves four heartbeats per session, enough to ride out a
# GC pause or a busy moment on a 2-core machine (G1 with 20 ms pause targets; heartbeats go from
# their own thread), while a killed node stalls its partitions about 4-5 s instead of 10. The
# heartbeat interval is a broker setting and the session timeout a controller one: every node here
# is both, so they are set together, and the heartbeat is well under the session as Kafka expects.
RECOVERY = {
    "broker.session.timeout.ms": "4000",
    "broker.heartbeat.interval.ms": "1000",
}

# How long Kafka keeps an empty consumer group's committed offsets (its default: 7 days). Puente's
# groups' offsets are witnesses: the broker group's of where each decision chain must end, each
# partner's subscriber group's of where its receipts must reach (`audit verify`), and a partner's
# subscriber idle for a week would otherwise start again from the feed's beginning. Ten years, as
# long as the audit itself is kept by default (PUENTE_AUDIT_RETENTION_DAYS 3650).
OFFSETS_RETENTION_MINUTES = str(3650 * 24 * 60)

# How long one login lasts on a connection (KIP-368). Kafka's default, 0, keeps a connection logged in for as
# long as it stays open: a password rotated, or a login disabled or deleted (`puente users apply --rotate`, `users
# apply` for a party no longer named, `--prune`) after a leak left whoever was connected with it every right of its
# party. An hour bounds that. librdkafka logs in again on the connection; aiokafka cannot, so the node closes its
# connection at the first request past the hour, and aiokafka connects and logs in anew and sends the request again
# (measured: a transaction's produce and EndTxn retried about 0.3 s later, the transaction committed, exactly once).
REAUTH_MS = str(3600 * 1000)

# Only AEAD suites with forward secrecy, in Java's names: TLS 1.3's three, and for TLS 1.2 ECDHE with the node's
# ECDSA key (``puente.dev.pki`` makes P-256 keys) and AES-GCM or ChaCha20-Poly1305. Java's default list also
# accepts TLS 1.2's CBC suites with SHA-1 MACs (ECDHE-ECDSA-AES128-SHA handshook). TLS 1.2 stays enabled for
# clients whose TLS library lacks 1.3; every one Puente and Kafka use offers these suites.
CIPHER_SUITES = ",".join((
    "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
))
TLS_PROTOCOLS = "TLSv1.3,TLSv1.2"


@dataclass(frozen=True)
class NodeConf:
    """Where one node listens and keeps its files."""

    node_id: int
    listeners: str  # e.g. CLIENT://:9092,INTERNAL://:9094,CONTROLLER://:9093
    advertised: str  # e.g. CLIENT://kafka-1:9092,INTERNAL://kafka-1:9094
    voters: str  # id@host:port,...
    keystore: str  # PEM: the node's key, its certificate and the CA's
    truststore: str  # PEM: the CA certificate
    log_dirs: str
    replication: int
    min_insync: int


# The CLIENT listener's SCRAM needs a login module named, though the node logs in with none there: it only checks
# the parties' logins against the credentials in the metadata log.
SCRAM_SERVER_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


def secured_properties(node: NodeConf) -> dict[str, str]:
    """The node's server.properties, as names and values: security first, then storage and recovery."""
    return {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": node.voters,
        "listeners": node.listeners,
        "advertised.listeners": node.advertised,
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "INTERNAL",
        "listener.security.protocol.map": "CLIENT:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.client.scram-sha-512.sasl.jaas.config": SCRAM_SERVER_JAAS,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": node.keystore,
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": node.truststore,
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.enabled.protocols": TLS_PROTOCOLS,
        "ssl.cipher.suites": CIPHER_SUITES,
        "listener.name.internal.ssl.client.auth": "required",
        "listener.name.controller.ssl.client.auth": "required",
        # Only a node's name maps to a short principal, and only as a whole: CN=kafka-node, then the O the
        # project's CA puts in every certificate it makes. A greedy ".*CN=(...)" took the last CN of any name the
        # CA signed (CN=alice,CN=kafka-node,O=...: a super user), and any CN=admin; any O took a CN=kafka-node
        # certificate of another organisation the same CA was made to sign. Every other certificate is its whole
        # name, which no ACL names.
        "ssl.principal.mapping.rules": (f"RULE:^CN=({regex_literal(NODE_PRINCIPAL)}),"
                                        f"O={regex_literal(ORGANIZATION)}$/$1/,DEFAULT"),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{ADMIN_PRINCIPAL};User:{NODE_PRINCIPAL}",
        "log.dirs": node.log_dirs,
        "default.replication.factor": str(node.replication),
        "min.insync.replicas": str(node.min_insync),
        "offsets.topic.replication.factor": str(node.replication),
        "offsets.retention.minutes": OFFSETS_RETENTION_MINUTES,
        "transaction.state.log.replication.factor": str(node.replication),
        "transaction.state.log.min.isr": str(node.min_insync),
        "auto.create.topics.enable": "false",
        "unclean.leader.election.enable": "false",
        "connections.max.reauth.ms": REAUTH_MS,
        **RECOVERY,
    }


# What a one-character class cannot hold as itself without a backslash (which a properties file reads as an
# escape), what ends a rule's pattern in ``ssl.principal.mapping.rules`` ("/"), and what RFC 2253 escapes in a
# name, so that Kafka's form of it would not be the text.
_NOT_LITERAL = frozenset('[]^\\/,+"<>;#')


def regex_literal(text: str) -> str:
    """``text`` as a Java regular expression that matches only itself, written without a backslash: a letter, a
    digit, a space, "-" or "_" as it is, any other character as a one-character class (``(`` as ``[(]``).
    KafkaSetupError for a character it cannot so write (``_NOT_LITERAL``, a control or non-ASCII character)."""
    out = []
    for char in text:
        if char.isascii() and (char.isalnum() or char in " -_"):
            out.append(char)
        elif char.isascii() and char.isprintable() and char not in _NOT_LITERAL:
            out.append(f"[{char}]")
        else:
            raise KafkaSetupError(f"{text!r} cannot be matched by a principal mapping rule: it holds {char!r}")
    return "".join(out)


def render(properties: dict[str, str], what: str = "server.properties") -> str:
    """A properties file's text. KafkaSetupError (naming the setting, never its value) when a name or value
    would not read back as written under Java's ``Properties`` reader (``unsafe_value``: a backslash escape, a
    line break, ISO-8859-1), or a name holds what ends one (``=``, ``:``, white space): refused, never escaped,
    so no file Puente writes feeds Kafka something other than what was meant (``abc"x`` written as ``abc\\"x``
    inside a JAAS value reaches Kafka as ``abc"x``, and the JAAS parser logs the tail)."""
    for name, value in properties.items():
        problem = unsafe_value(name) or ("it holds '=', ':' or white space" if any(
            c in "=:" or c.isspace() for c in name) or not name else None) or unsafe_value(value)
        if problem is not None:
            raise KafkaSetupError(f"cannot write {what}: {name if unsafe_value(name) is None else 'a setting'} "
                                  f"cannot be written as a Java property ({problem}); change it")
    return "".join(f"{k}={v}\n" for k, v in properties.items())


# Characters a password may not hold to be written into the storage tool's argument file as it is:
# the tool's argument parser (argparse4j, "@" as its file prefix) takes each line of the file as one
# argument, with no quoting, so a line break would split it; and Kafka's "[name=...,password=...]"
# syntax gives "," "[" "]" "=" and quotes meanings. Passwords made here (``secrets.token_urlsafe``)
# hold none of them; one set by hand that does is refused, never mangled.
_ARGFILE_UNSAFE = frozenset(',[]="\'')


def password_problem(password: str) -> str | None:
    """Why ``password`` cannot be a first login's password, in words fit for an error; None when it can. Never
    quotes it. It must reach Kafka unchanged through the storage tool's argument file (``_ARGFILE_UNSAFE``, no
    white space), through server.properties' and the client files' JAAS (``unsafe_value``: no backslash, nothing
    outside printable ASCII) and so through every file that holds it."""
    if not password:
        return "is empty"
    if any(c in _ARGFILE_UNSAFE or c.isspace() or not c.isprintable() for c in password):
        return "holds white space, a control character or one of ,[]=\"'"
    if unsafe_value(password) is not None:
        return "holds a backslash or a character outside printable ASCII"
    return None


def format_logins_argfile(passwords: dict[str, str]) -> str:
    """The ``--add-scram`` arguments of ``kafka-storage format`` for the first logins, as the text of an
    argument file: one argument per line, passed as ``@path`` (the storage tool reads it itself).

    The first logins cannot be added through the API, which needs an authenticated client, and the
    storage tool takes them only as arguments. Given on the command line, the passwords would be
    readable by any user of the host (``ps``, ``/proc/<pid>/cmdline``) while the tool runs; in a
    0600 file they are not. KafkaSetupError (naming the login, never the password) when a password
    fails ``password_problem``.
    """
    lines: list[str] = []
    for name in FIRST_LOGINS:
        password = passwords[name]
        problem = password_problem(password)
        if problem is not None:
            raise KafkaSetupError(f"the {name!r} password in secrets.json {problem}; set another or delete "
                                  "secrets.json to have one made")
        # The parties' count (``broker.kafka.acls``), not the storage tool's 4096: the super users' stored
        # keys must cost a guesser at least what any party's do.
        lines += ["--add-scram", f"SCRAM-SHA-512=[name={name},password={password},iterations={SCRAM_ITERATIONS}]"]
    return "".join(f"{line}\n" for line in lines)


def node_client_properties(bootstrap: str, keystore: str, truststore: str) -> str:
    """A Kafka client configuration logging in as the nodes, by their certificate (``keystore``, PEM: key and
    chain) on the ``INTERNAL`` listener at ``bootstrap``: what a node's health check runs Kafka's tools with. It
    holds no password; the certificate's key is the secret, so the file is kept as the key is."""
    return render({
        "bootstrap.servers": bootstrap,
        "security.protocol": "SSL",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": keystore,
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": truststore,
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.enabled.protocols": TLS_PROTOCOLS,
        "ssl.cipher.suites": CIPHER_SUITES,
    }, "node-client.properties")
