"""The files compose.yaml's secured deployment mounts: certificates, node configurations, the admin's login.

``puente kafka compose-files`` writes them under one folder (``deploy/`` beside compose.yaml by
default), the same security the local runner uses (``localkafka._nodeconf``) with container
addresses and paths::

    deploy/tls/ca.pem, ca-key.pem       the trial CA (its key stays here; nothing mounts it)
    deploy/kafka-<n>/config/            mounted read-only at /etc/puente-kafka in node n only:
        server.properties               the node's configuration
        node.pem, ca.pem                its key and certificate (SAN kafka-<n>), and the CA
        start.sh                        formats the storage once with the first logins, then runs Kafka
        node-client.properties          the nodes' certificate login (no password), for the health check
        log4j2.properties               the local runner's logging: denials in logs/authorizer.log, UTC
    deploy/kafka-<n>/data/, logs/       the node's storage and its logs (authorizer.log: denials)
    deploy/admin/admin.properties       the operator's login, mounted only by the one-shot ``setup``

Every file holding a password or key is 0600 in a 0700 folder, written whole under a new name and
renamed into place (a link planted at its name is replaced, never followed); containers run as the
invoking user (``PUENTE_UID``/``PUENTE_GID``) so they can read them. Running it again keeps the CA,
the certificates and the passwords, and rewrites the rest. The passwords are made only while no node's
storage is formatted: once one is, a missing or unreadable ``secrets.json`` is refused (restore it), since
new passwords would not be the ones the nodes hold. What it keeps must pass the checks of a
secret file (``broker.private_files``: this user's or root's, 0600, a link only through folders no one
else may change), and a folder of the deployment that exists but others may write is refused (chmod 700),
never used: a ``secrets.json`` someone else put there would otherwise become the admin's password. A
ministry's deployment uses its own CA and its own secret store; this is a trial deployment on one host.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from broker.credentials import client_properties
from broker.private_files import (
    check_folder,
    private_folder,
    read_regular,
    read_secret,
    write_atomic,
)
from puente.dev import pki
from puente.dev.localkafka._cluster import kept_cluster_id, kept_passwords
from puente.dev.localkafka._nodeconf import (
    ADMIN_PRINCIPAL,
    NODE_PRINCIPAL,
    NodeConf,
    format_logins_argfile,
    node_client_properties,
    render,
    secured_properties,
)
from puente.errors import ConfigError

NODES = 3
FORMAT_LOGINS = "format-logins.args"  # the storage tool's argument file with the first SCRAM logins
CLIENT_PORT = 9092
CONTROLLER_PORT = 9093
INTERNAL_PORT = 9094  # replication between the nodes and their health checks: certificates only
NODE_CONFIG = "/etc/puente-kafka"  # where each node's config folder is mounted
NODE_DATA = "/var/lib/kafka/data"
NODE_LOGS = "/var/log/kafka"
PUENTE_CA = "/run/puente/tls/ca.pem"  # where Puente's services find the CA
ADMIN_CONFIG = "/run/puente/admin/admin.properties"


@dataclass(frozen=True)
class ComposeFiles:
    """What ``write`` made: the folder, the number of nodes, and what the operator must do by hand (one line each)."""

    folder: Path
    nodes: int
    notes: tuple[str, ...] = ()

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{host(n)}:{CLIENT_PORT}" for n in range(1, self.nodes + 1))


def host(node_id: int) -> str:
    """The compose service name, and host name, of node ``node_id``."""
    return f"kafka-{node_id}"


_MAX_SECRET_FILE = 64 * 1024  # the node's key, at most
_MAX_PUBLIC_FILE = 4 * 1024 * 1024  # a certificate chain or CA bundle, at most (a ministry's may be long)


def _private(path: Path, text: str, mode: int = 0o600) -> None:
    write_atomic(path, text.encode("utf-8"), mode)


def _copy(source: Path, dest: Path, mode: int) -> None:
    """Copy ``source`` (a secret file when ``mode`` is 0600: checked as one) to ``dest``, never through a link."""
    if mode & 0o077:  # a certificate or a CA bundle: public, but cut short it would be another file
        data, _ = read_regular(source, _MAX_PUBLIC_FILE, ConfigError)
        if len(data) > _MAX_PUBLIC_FILE:
            raise ConfigError(f"{source} is larger than {_MAX_PUBLIC_FILE // 2**20} MiB: not a certificate file")
    else:
        data = read_secret(source, _MAX_SECRET_FILE, ConfigError, "the node's key")
    write_atomic(dest, data, mode)


def node_conf(node_id: int, nodes: int = NODES) -> NodeConf:
    """Node ``node_id``'s addresses and paths inside its container."""
    voters = ",".join(f"{n}@{host(n)}:{CONTROLLER_PORT}" for n in range(1, nodes + 1))
    return NodeConf(node_id=node_id,
                    listeners=f"CLIENT://:{CLIENT_PORT},INTERNAL://:{INTERNAL_PORT},CONTROLLER://:{CONTROLLER_PORT}",
                    advertised=f"CLIENT://{host(node_id)}:{CLIENT_PORT},INTERNAL://{host(node_id)}:{INTERNAL_PORT}",
                    voters=voters,
                    keystore=f"{NODE_CONFIG}/node.pem", truststore=f"{NODE_CONFIG}/ca.pem", log_dirs=NODE_DATA,
                    replication=min(3, nodes), min_insync=2 if nodes >= 3 else 1)


# What every container of compose.yaml runs first: it stops, before doing anything, unless the container runs as
# a user and group other than root's (PUENTE_UID or PUENTE_GID 0 would let a process that breaks out of Kafka's or
# Puente's code change every file of the deployment, or read what root's group may). A number compared with
# ``-gt``: an ``id`` that is missing or says nothing fails the test too. compose.yaml's Puente services run the same
# line (with ``$$`` for compose's ``$``).
ROOT_GUARD = ("{ [ \"$(id -u)\" -gt 0 ] && [ \"$(id -g)\" -gt 0 ]; } 2>/dev/null || { echo 'puente: refusing to run "
              "as root (user or group 0): set PUENTE_UID and PUENTE_GID to the user and group that own ./deploy, "
              "./keys and ./logins' >&2; exit 78; }")


def _start_script(cluster_id: str) -> str:
    config = f"{NODE_CONFIG}/server.properties"
    fmt = ["/opt/kafka/bin/kafka-storage.sh", "format", "--ignore-formatted", f"--cluster-id={cluster_id}",
           "--config", config, f"@{NODE_CONFIG}/{FORMAT_LOGINS}"]
    return ("#!/bin/sh\n"
            "# Written by `puente kafka compose-files`. Formats the storage on first start with the first\n"
            "# SCRAM login (the admin's), then runs the node. The passwords reach Kafka's storage\n"
            f"# tool through the 0600 argument file {FORMAT_LOGINS} (\"@file\": the tool reads it itself),\n"
            "# never on a command line, which other users of the host could read; run compose-files again\n"
            "# after the first start and it removes that file.\n"
            "set -eu\n"
            f"{ROOT_GUARD}\n"
            f"if [ ! -f {NODE_DATA}/meta.properties ]; then\n"
            f"  {shlex.join(fmt)} >/dev/null\n"
            "fi\n"
            f"exec /opt/kafka/bin/kafka-server-start.sh {config}\n")


def _drop_node_password(path: Path, passwords: dict[str, str], nodes: int) -> tuple[str, ...]:
    """Remove the nodes' password from ``passwords`` and from ``path`` (rewritten whole, 0600), when a deployment
    formatted before the nodes logged in by certificate kept one; then a note of what the operator must do.

    The nodes need no password now, but such a storage still holds ``kafka-node``'s SCRAM login: a super user's,
    on the client port every party reaches. Only a client of that deployment can delete it, and only once every node
    runs the new configuration (an old one reaches the others with that login), so the note says how: every node
    restarted together, since a node of the new configuration cannot reach an old one's internal address, then
    Kafka's own tool, run in a node's container with the nodes' certificate login on the internal port."""
    if passwords.pop(NODE_PRINCIPAL, None) is None:
        return ()
    write_atomic(path, json.dumps(passwords).encode("utf-8"), 0o600)
    services = " ".join(host(n) for n in range(1, nodes + 1))
    delete = (f"docker compose exec {host(1)} /opt/kafka/bin/kafka-configs.sh --bootstrap-server "
              f"{host(1)}:{INTERNAL_PORT} --command-config {NODE_CONFIG}/node-client.properties --alter "
              f"--entity-type users --entity-name {NODE_PRINCIPAL} --delete-config SCRAM-SHA-512")
    return (f"this deployment was formatted with a {NODE_PRINCIPAL} password login (its password is now removed from "
            f"{path}); the nodes log in by certificate: restart every node together, not one at a time (a node of "
            f"the new configuration cannot reach an old one's internal address): `docker compose stop {services}` "
            f"then `docker compose up -d`; then delete that login once: `{delete}`",)


def write(folder: Path, nodes: int = NODES) -> ComposeFiles:
    """Write (or refresh) every file compose.yaml mounts under ``folder``. ConfigError, before anything is
    written there, when ``folder`` or one of its own folders exists but others may write it."""
    private_folder(folder)
    tls = folder / "tls"
    for sub in (tls, folder / "admin", *(folder / host(n) / part for n in range(1, nodes + 1)
                                         for part in ("", "config", "data", "logs"))):
        check_folder(sub)  # an open one is refused before any password is made (a missing one is made 0700)
    passwords = kept_passwords(folder / "secrets.json", "the deployment's passwords",
                               [folder / host(n) / "data" / "meta.properties" for n in range(1, nodes + 1)],
                               "restore it from a backup (new passwords would not be the ones the nodes hold), "
                               f"or start the deployment over: stop it and delete {folder}/kafka-*/data "
                               "(its data is lost)")
    notes = _drop_node_password(folder / "secrets.json", passwords, nodes)
    cluster_id = kept_cluster_id(folder / "cluster.id")
    made = ComposeFiles(folder, nodes, notes)
    for node_id in range(1, nodes + 1):
        name = host(node_id)
        if pki.needs_issue(tls, name):  # missing, or ending within pki.RENEW_DAYS: a node's starts with it
            pki.issue(tls, name, [name], common=NODE_PRINCIPAL)
        base = folder / name
        config = base / "config"
        for sub in (base, config, base / "data", base / "logs"):
            private_folder(sub)
        _copy(tls / f"{name}.pem", config / "node.pem", 0o600)
        _copy(tls / "ca.pem", config / "ca.pem", 0o644)
        _private(config / "server.properties", render(secured_properties(node_conf(node_id, nodes))))
        log4j = resources.files("puente.dev.localkafka").joinpath("log4j2.properties").read_text()
        _private(config / "log4j2.properties", log4j, 0o644)
        # The argument file holds the admin's password: the read-only mount keeps the node from removing
        # it, so it is written only while the node's storage is unformatted, and removed once it is.
        if (base / "data" / "meta.properties").exists():
            (config / FORMAT_LOGINS).unlink(missing_ok=True)
        else:
            _private(config / FORMAT_LOGINS, format_logins_argfile(passwords))
        _private(config / "start.sh", _start_script(cluster_id), 0o700)
        _private(config / "node-client.properties",
                 node_client_properties(f"{name}:{INTERNAL_PORT}", f"{NODE_CONFIG}/node.pem", f"{NODE_CONFIG}/ca.pem"))
    private_folder(folder / "admin")
    _private(folder / "admin" / "admin.properties",
             client_properties(made.bootstrap, Path(PUENTE_CA), ADMIN_PRINCIPAL, passwords[ADMIN_PRINCIPAL]))
    return made
