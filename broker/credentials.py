"""Each party's Kafka login, and the client configuration file it keeps beside its keys.

Every party (an agency's adapter, the broker, a partner's subscriber, the auditor) logs in as its
own SCRAM user (``broker.access`` names them) and keeps its client configuration in its own folder
of the keystore, where it keeps its keys: ``<keys>/agencies/<A>``, ``<keys>/broker``,
``<keys>/partners/<P>``, ``<keys>/auditor``, ``<keys>/console``. The file is ``client.properties`` in the Java client's
names, so Kafka's own console tools take it as they are (``--consumer.config``, ``--command-config``),
and Puente reads it through ``PUENTE_CLIENT_CONFIG`` or ``--command-config``. It holds the password:
it is written 0600, whole or not at all and never through a link, in a 0700 folder; a party's folder
that exists already but others may write is refused before anything changes, on the cluster or on disk.
Every value is written so that Kafka's Java tools and Puente read it back alike, or refused
(``client_properties``): a CA path from a folder whose name holds a newline would otherwise add a
setting of its own, such as one turning hostname checking off.

``apply_users`` sets every party's SCRAM credential on the cluster and writes its file. A party
whose file exists and whose login the cluster holds keeps its password (the credential is set again
to it), so running it twice changes nothing; ``rotate`` gives every party a new one. A password is
kept only from a file that passed every check of a secret file (``broker.private_files``: this
user's, 0600, not a link, in a folder only its owner writes): one others could read or have planted
is never adopted, and the party gets a new password. A party the
cluster holds no login for gets a new password even when an old file is there: a partner removed
and added again under its id never gets back the password it had. The login of a party that is
no more (an ``agency-`` or ``partner-`` user the policy and settings no longer name) is deleted
with ``prune`` (``puente users apply --prune``; without it the command only lists it), from the
cluster, every SCRAM mechanism of it, and its file removed: its ACLs go with ``acls apply``, but a
login left behind would still authenticate.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from broker.access import AUDITOR, BROKER, CONSOLE, puentes
from broker.kafka import Admin, KafkaConnection, connection_from_properties
from broker.kafka.acls import SCRAM_MECHANISM, delete_users, new_password, scram_users, upsert_users
from broker.kafka.connection import unsafe_value
from broker.keystore import CLIENT_CONFIG as CLIENT_CONFIG  # re-exported: where callers have found it
from broker.keystore import Holder, holder_path
from broker.private_files import check_folder, private_folder, write_atomic
from puente.errors import ConfigError, KafkaAuthError, KeyMaterialError


def party_folder(keys: Path, principal: str) -> Path:
    """Where a party keeps its keys and its client configuration."""
    if principal == BROKER:
        return keys / "broker"
    if principal == AUDITOR:
        return keys / "auditor"
    if principal == CONSOLE:
        return keys / "console"
    kind, _, name = principal.partition("-")
    holder = {"agency": Holder.AGENCY, "partner": Holder.PARTNER}.get(kind)
    if holder is None or not name:
        raise ConfigError(f"{principal[:60]!r} is not one of Puente's parties")
    try:  # the id becomes a folder name: one the keystore would refuse ("..", a slash) never names a folder
        return holder_path(keys, holder, name)
    except KeyMaterialError as exc:
        raise ConfigError(f"{principal[:60]!r} is not one of Puente's parties: {exc}") from None


def scram_jaas(username: str, password: str) -> str:
    """A SCRAM login in JAAS syntax, as ``sasl.jaas.config`` takes it."""
    escaped = password.replace("\\", "\\\\").replace('"', '\\"')
    return ("org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{username}" password="{escaped}";')


def client_properties(bootstrap: str, ca_file: Path | None, username: str, password: str) -> str:
    """A client configuration in the Java client's property names: SASL_SSL with SCRAM-SHA-512.

    ConfigError (naming the setting, never its value) when a value would not read back as written, by
    Kafka's Java tools and by Puente alike (``broker.kafka.connection.unsafe_value``): a newline in the CA's
    path, say, would start a setting of its own. Refused rather than escaped, since a value Java unescapes
    is one Puente's reader would read otherwise."""
    jaas = scram_jaas(username, password)
    for setting, value in (("bootstrap.servers (the admin's, or PUENTE_BOOTSTRAP)", bootstrap),
                           ("the username", username),
                           ("the password in sasl.jaas.config", password),
                           ("sasl.jaas.config", jaas),
                           ("ssl.truststore.location (the CA file's path)", "" if ca_file is None else str(ca_file))):
        problem = unsafe_value(value)
        if problem is not None:
            whose = f" of {username}" if unsafe_value(username) is None else ""
            raise ConfigError(f"cannot write the client configuration{whose}: {setting} cannot be written as a Java "
                              f"property ({problem}); change it")
    lines = [
        f"# Kafka client configuration of {username}: hand it to Puente (--command-config) or to Kafka's tools.",
        f"bootstrap.servers={bootstrap}",
        "security.protocol=SASL_SSL",
        "sasl.mechanism=SCRAM-SHA-512",
        f"sasl.jaas.config={jaas}",
    ]
    if ca_file is not None:
        lines += ["ssl.truststore.type=PEM", f"ssl.truststore.location={ca_file}"]
    return "\n".join(lines) + "\n"


def _write_private(path: Path, text: str) -> None:
    private_folder(path.parent)
    write_atomic(path, text.encode("utf-8"), 0o600)


@dataclass(frozen=True)
class PartyLogin:
    """One party's login as ``apply_users`` left it."""

    principal: str
    config: Path
    action: str  # "created", "kept", "rotated" or "removed"


async def apply_users(admin: Admin, keys: Path, principals: list[str], *, rotate: bool = False,
                      prune: bool = True, dry_run: bool = False) -> list[PartyLogin]:
    """Set every party's SCRAM credential and write its client configuration into its folder; with
    ``prune``, delete the login of every party no longer named (module docstring). With ``dry_run``,
    only say what it would do (``puente users plan``): nothing on the cluster or on disk changes.

    The files name the same bootstrap servers and CA as the admin's own connection. ``prune=False``
    is for a cluster several Puente deployments share (the tests' one Kafka): each names only its
    own parties, and must not take the others' logins away.
    """
    on_cluster = await scram_users(admin)
    passwords: dict[str, str] = {}
    out = []
    for principal in principals:
        path = party_folder(keys, principal) / CLIENT_CONFIG
        check_folder(path.parent)  # before anything changes: an open folder is refused, never written into
        existing = None
        if os.path.lexists(path) and not rotate and SCRAM_MECHANISM in on_cluster.get(principal, ()):
            try:  # every check of a secret file: a password others may know is never kept
                kept = connection_from_properties(path)
            except ConfigError:  # unreadable or exposed: the party gets a new password, and former parties still go
                kept = None
            if kept is not None and kept.username == principal and kept.password:
                existing = kept.password.get_secret_value()
        passwords[principal] = existing or new_password()
        action = "kept" if existing else ("rotated" if principal in on_cluster else "created")
        out.append(PartyLogin(principal, path, action))
    gone = {user: mechanisms for user, mechanisms in on_cluster.items()
            if user not in passwords and puentes(user, principals)} if prune else {}
    out += [PartyLogin(user, _login_path(keys, user), "removed") for user in sorted(gone)]
    if dry_run:
        return out
    await delete_users(admin, gone)
    await upsert_users(admin, passwords)
    conn: KafkaConnection = admin.conn
    for login in out:
        if login.action != "removed":
            _write_private(login.config, client_properties(conn.bootstrap, conn.ca_file, login.principal,
                                                           passwords[login.principal]))
        elif login.config.parent != keys:  # not the placeholder of a name no folder can have
            login.config.unlink(missing_ok=True)  # its password works no more
    # A new credential reaches the brokers through the metadata log, a moment after the call
    # returns: wait until each changed login works, so that no one tries it before it does.
    changed = [login for login in out if login.action not in ("kept", "removed")]
    await asyncio.gather(*(_wait_usable(login.config, conn.timeout_s) for login in changed))
    return out


def _login_path(keys: Path, principal: str) -> Path:
    """A former party's client configuration file, if its name makes a folder inside ``keys``; else
    ``keys/(none)``: a name no party folder can have has no file to remove."""
    try:
        return party_folder(keys, principal) / CLIENT_CONFIG
    except ConfigError:
        return keys / "(none)"


async def _wait_usable(config: Path, timeout_s: float) -> None:
    conn = connection_from_properties(config, timeout_s=min(5.0, timeout_s))
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            await Admin(conn).call("logging in", lambda c: c.list_topics(timeout=conn.timeout_s))
            return
        except KafkaAuthError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


def party_connection(keys: Path, principal: str, timeout_s: float = 15.0) -> KafkaConnection:
    """The connection a party's own client configuration describes (its folder under ``keys``)."""
    path = party_folder(keys, principal) / CLIENT_CONFIG
    if not path.exists():
        raise ConfigError(f"no client configuration for {principal} at {path}: run `puente users apply`")
    return connection_from_properties(path, timeout_s=timeout_s).model_copy(update={"client_id": principal})
