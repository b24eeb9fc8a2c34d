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
is never adopted, and the party gets a new password. A file whose other settings no longer read (the
CA renewed under another name, moved) still gives its password when it is such a file holding only the
settings Puente writes, the login among them (``_sound_secret``): a stale CA says nothing of who knows the
password, and the file is rewritten with the admin's. A party the cluster holds no login for gets a new
password even when an old file is there. Each rotation says why (``PartyLogin.reason``). A sound secret file
whose text does not read at all (``read_properties`` refuses a line: a key misspelt, a backslash) is neither
kept nor replaced: the run is refused, naming the file and line, since that says nothing of who knows the
password, and a new one would cut off whoever holds a copy of the file.

The login of a party that is no more (an ``agency-`` or ``partner-`` user the policy and settings no
longer name) is dealt with as ``former`` says: its ACLs go with ``acls apply``, but a login left as
it was would still authenticate, and a party named again would find its file and keep its password.
``"delete"`` (``puente users apply --prune``) deletes it from the cluster, every SCRAM mechanism of
it, and removes its files. ``"disable"`` (``puente users apply``) keeps the login, and its quota
(``broker.access.quota_plan``), but gives it a new random password no file holds, deletes its
credentials of any other mechanism, moves its file aside (``.client.properties.former``, a name no
password is ever taken from) and removes a pending one: it no longer authenticates, and it is done
again at every run, for a password set by hand since. Either way a partner removed and added again
under its id never gets back the password it had: it gets a new one (``created``), handed over outside
Puente. So a policy folder or agency list named by mistake (``PUENTE_POLICY_DIR`` or
``PUENTE_AGENCIES`` unset in the shell) would cut off every party it lacks at once: unless
``allow_many``, a run that would disable or delete the logins of more than half of the agencies in
use, or of more than half of the partners, is refused before anything changes (``mass_cut_off``); a
party ended on purpose is one or a few. ``"leave"`` touches no such login: it is for a cluster
several deployments share (the tests' one Kafka), where a login one of them does not name may be
another's.
No password changes on the cluster unless its file can be written: each is written first under a
hidden name and put in place once Kafka took the password, and a run stopped in between is completed
by the next (``apply_users``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from broker.access import AUDITOR, BROKER, CONSOLE, puentes
from broker.kafka import Admin, KafkaConnection, connection_from_properties
from broker.kafka.acls import (
    SCRAM_MECHANISM,
    ScramChangeFailed,
    delete_users,
    new_password,
    scram_users,
    upsert_users,
)
from broker.kafka.connection import read_properties, unsafe_value
from broker.keystore import CLIENT_CONFIG as CLIENT_CONFIG  # re-exported: where callers have found it
from broker.keystore import FORMER_CLIENT_CONFIG, PENDING_CLIENT_CONFIG, Holder, holder_path
from broker.private_files import check_folder, private_folder, read_regular, secret_problem, write_atomic
from puente.errors import (
    ConfigError,
    KafkaAccessError,
    KafkaAuthError,
    KafkaUnavailableError,
    KeyMaterialError,
    PuenteError,
)

_MAX_CONFIG = 64 * 1024  # as ``connection_from_properties`` reads a client configuration


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


def _pending(path: Path) -> Path:
    """Where ``apply_users`` writes a party's new client configuration before Kafka takes its password, beside
    the file it replaces (a hidden name no one hands over), and where a later run finds it (``apply_users``)."""
    return path.with_name(PENDING_CLIENT_CONFIG)


def _moved_aside(path: Path) -> Path:
    """Where ``apply_users`` moves a former party's client configuration when it disables its login: beside it, under
    a hidden name ``_password`` is never asked to read, so a party named again never gets that password back."""
    return path.with_name(FORMER_CLIENT_CONFIG)


def _kept(path: Path, principal: str) -> tuple[str | None, str | None]:
    """``principal``'s password in the client configuration ``path``, and what is wrong with the file, if anything
    (None: it reads, or is missing). The password is kept when the file reads as that user's login, or, when it no
    longer reads, when it is still a sound secret file of that login (``_sound_secret``): its other settings are
    stale (a CA renewed under another name, moved), and are rewritten. Else None: a password others may know is
    never kept, and the party gets a new one. ConfigError (naming the file and line) when the file is such a
    secret file but its text does not read: neither keeping nor replacing its password would be sound."""
    if not os.path.lexists(path):
        return None, None
    try:
        kept = connection_from_properties(path)
    except ConfigError as exc:
        return _sound_secret(path, principal), str(exc)
    if kept.username == principal and kept.password:
        return kept.password.get_secret_value(), None
    return None, f"{path} holds another login, or no password"


# sasl.jaas.config as ``scram_jaas`` writes it: the only form a password is taken from when the file no longer reads.
_OWN_JAAS = re.compile(r'org\.apache\.kafka\.common\.security\.scram\.ScramLoginModule required '
                       r'username="(?P<user>[^"\\]*)" password="(?P<password>(?:[^"\\]|\\.)*)";')


# The settings ``client_properties`` writes, and the values of those it always writes alike.
_WRITTEN = frozenset({"bootstrap.servers", "security.protocol", "sasl.mechanism", "sasl.jaas.config",
                      "ssl.truststore.type", "ssl.truststore.location"})
_AS_WRITTEN = {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512"}


def _sound_secret(path: Path, principal: str) -> str | None:
    """``principal``'s password in ``path``, a client configuration whose settings no longer read, when it is still a
    sound secret file of that login: a regular file of this user's, not a link, 0600 in a folder only its owner
    writes (``secret_problem``), holding only the settings Puente writes (SASL_SSL, SCRAM-SHA-512, no host check
    turned off), whose sasl.jaas.config is that login as Puente writes it. Its CA going stale says nothing of who
    may know the password; its being exposed, or sent some other way, does (else None). Its text not reading (a
    line ``read_properties`` refuses, wherever it is) says neither, and hides which password the file holds:
    ConfigError then, naming the file and line, so that the run stops rather than rotate for a typo."""
    try:
        raw, info = read_regular(path, _MAX_CONFIG, ConfigError)
        if (len(raw) > _MAX_CONFIG or os.path.islink(path) or info.st_uid != os.geteuid()
                or secret_problem(path, info) is not None):
            return None
    except (OSError, ConfigError):
        return None
    # A sound secret file whose text does not read (a key misspelt, a backslash or a character Kafka's client
    # would read otherwise, on whatever line): that says nothing of who may know the password, and which password
    # it holds cannot be told. Neither kept nor replaced: the run is refused, naming the file and line.
    try:
        props = read_properties(raw.decode("utf-8"), str(path))
    except (ConfigError, UnicodeDecodeError) as exc:
        problem = str(exc) if isinstance(exc, ConfigError) else f"{path} is not UTF-8 text"
        remedy = ("remove it: the password in client.properties is set again" if path.name == PENDING_CLIENT_CONFIG
                  else "remove the file to give it a new password")
        raise ConfigError(f"cannot tell whether {principal} keeps its password: {problem}; fix that, or {remedy}. "
                          "Nothing was changed") from None
    # Only the settings Puente writes, and as it writes them: one sending the password some other way (PLAIN, no
    # TLS, no host check) says it may have gone to whoever answered.
    if not set(props) <= _WRITTEN or any(props[key].value != value for key, value in _AS_WRITTEN.items()):
        return None
    entry = props.get("sasl.jaas.config")
    match = None if entry is None else _OWN_JAAS.fullmatch(entry.value)
    if entry is None or match is None or match["user"] != principal:
        return None
    password = match["password"].replace('\\"', '"').replace("\\\\", "\\")
    return password if password and scram_jaas(principal, password) == entry.value else None


@dataclass(frozen=True)
class PartyLogin:
    """One party's login as ``apply_users`` left it."""

    principal: str
    config: Path
    # A named party's: "created", "kept" or "rotated". A former party's (``Former``): "removed" (deleted);
    # "disabled" (a password no one holds set, its client configuration moved aside); "former" (the same, for
    # one whose folder held no client configuration any more: disabled by a run before, or never ours).
    action: str
    # Why, in words for the operator: a rotation's cause, a kept file's settings rewritten; "" when it goes
    # without saying (a party new to the cluster, a file kept as it was).
    reason: str = ""
    # A rotation no one asked for: the party's file, kept by the cluster's login, is missing or cannot be used
    # (``mass_cut_off`` counts these).
    lost: bool = False


# What ``apply_users`` does with the login of a party no longer named (module docstring).
Former = Literal["delete", "disable", "leave"]


async def apply_users(admin: Admin, keys: Path, principals: list[str], *, rotate: bool = False,
                      former: Former = "delete", dry_run: bool = False, allow_many: bool = False) -> list[PartyLogin]:
    """Set every party's SCRAM credential and write its client configuration into its folder; delete or disable
    the login of every party no longer named, as ``former`` says (module docstring). With ``dry_run``, only say
    what it would do (``puente users plan``): nothing on the cluster or on disk changes.

    ConfigError, with or without ``dry_run``, when it would cut off many parties at once (``mass_cut_off``) and
    not ``allow_many``: nothing has changed then, on the cluster or on disk (the party folders it made are gone).

    The files name the same bootstrap servers and CA as the admin's own connection (the CA's path made absolute:
    each party reads a relative one from its own folder), and each must read back as its party's login before any
    password changes (``_reads_back``). ``former="leave"``
    is for a cluster several Puente deployments share (the tests' one Kafka): each names only its
    own parties, and must not take the others' logins away.

    No password changes on the cluster before its file can be written. Every party's folder is checked and
    made (``private_folder``: 0700, one others may write refused) before the first Kafka call (the first checks
    that the login is the admin's: ``Admin.require_admin``), and each new file
    is written whole under a hidden name beside the old (``.client.properties.pending``) before the first change;
    only once Kafka took the passwords is each renamed into place. A failure before that (a folder or file that
    cannot be written, Kafka refusing the admin's login or rights, or refusing one user's change) removes the
    new files of the passwords Kafka did not take, and their parties keep working with their old files; those it
    took go into place.

    Kafka's change and the renames cannot be one step. When the run stops between them, or Kafka gives no answer
    (a timeout, Ctrl-C, the process killed), Kafka may hold passwords only the hidden files have, and those
    parties' old files no longer log in: the hidden files are kept, and the error (a killed run prints none, nor
    its summary) says to run ``users apply`` again; ``users plan`` shows each such party as one to rotate.
    The next run takes up a hidden file (one passing every check of a secret file, for a
    party the cluster holds a login for) ahead of the party's old file, sets its password again and puts it into
    place: whatever Kafka was left holding, it ends holding the password the party's file has, so no party stays
    locked out once a run has ended without an error. A hidden file is never removed while Kafka may hold its
    password, as it may be the only copy; so a rotation stopped there is completed, not undone (``rotate`` gives
    every party a new password all the same).
    """
    paths = {principal: party_folder(keys, principal) / CLIENT_CONFIG for principal in principals}
    for path in paths.values():
        check_folder(path.parent)  # before anything changes: an open folder is refused, never written into
    made = [] if dry_run else _missing(path.parent for path in paths.values())
    if not dry_run:
        for path in paths.values():
            try:  # made now, so that a folder that cannot be made stops the run before any Kafka call
                private_folder(path.parent)
            except OSError as exc:
                raise ConfigError(f"cannot make {path.parent} for the client configuration: {exc.strerror}; "
                                  "nothing was changed on Kafka") from None
    # Another party's login is refused here, in one line, before any SCRAM call: a refused
    # DescribeUserScramCredentials aborts the process inside librdkafka.
    await admin.require_admin("planning the parties' logins" if dry_run else "setting the parties' logins")
    on_cluster = await scram_users(admin)
    passwords: dict[str, str] = {}
    adopted: set[str] = set()  # parties whose password is a hidden file's: Kafka may hold it already
    out = []
    # A party's credential of another mechanism (SCRAM-SHA-256, which Kafka's own tools add beside the other) is
    # none Puente made: it would outlive every rotation, and a stolen password with it. It is deleted, and the
    # party's password made anew, since whoever set it may know the one it sat beside.
    stray = {principal: mechanisms - {SCRAM_MECHANISM} for principal in paths
             if (mechanisms := on_cluster.get(principal, frozenset())) - {SCRAM_MECHANISM}}
    for principal, path in paths.items():
        held = not rotate and principal not in stray and SCRAM_MECHANISM in on_cluster.get(principal, ())
        try:
            existing, problem = _kept(path, principal) if held else (None, None)
            pending = _kept(_pending(path), principal)[0] if held else None
        except ConfigError:  # a file that does not read (``_sound_secret``): nothing changes, no folder is left made
            _remove_folders(made)
            raise
        if pending is not None:
            adopted.add(principal)
        passwords[principal] = pending or existing or new_password()
        # A login disabled when the party was no longer named is one no one holds a password to: a new one.
        action = ("kept" if passwords[principal] == existing else
                  "rotated" if principal in on_cluster and not _disabled_here(path) else "created")
        lost = action == "rotated" and held and pending is None
        out.append(PartyLogin(principal, path, action, _reason(action, problem, rotate=rotate, lost=lost,
                                                               stray=stray.get(principal, frozenset())), lost))
    gone = {user: mechanisms for user, mechanisms in on_cluster.items()
            if user not in passwords and puentes(user, principals)} if former != "leave" else {}
    formers = _former_logins(keys, gone, former)
    out += formers
    refusal = None if allow_many else mass_cut_off(out, former, rotate)
    if refusal is not None:
        _remove_folders(made)  # a party folder a mistaken agency list named is not left behind
        raise ConfigError(refusal)
    if dry_run:
        return out
    deleted, disabled = _former_changes(gone, former)
    conn: KafkaConnection = admin.conn
    # The admin's CA path may be relative to the folder it was run from (a relative PUENTE_CLIENT_CONFIG naming
    # ca.pem); each party reads a relative path from its own file's folder, so it is written whole. Not resolved:
    # a link the operator renews the CA behind is followed at each reading, as the admin's is.
    ca_file = None if conn.ca_file is None else Path(os.path.abspath(conn.ca_file))
    written: dict[str, Path] = {}  # party -> its new file, under the hidden name
    try:
        for principal, path in paths.items():
            text = client_properties(conn.bootstrap, ca_file, principal, passwords[principal])
            try:
                write_atomic(_pending(path), text.encode("utf-8"), 0o600)
            except OSError as exc:
                raise ConfigError(f"cannot write the client configuration of {principal} beside {path}: "
                                  f"{exc.strerror}; nothing was changed on Kafka") from None
            written[principal] = _pending(path)
            _reads_back(written[principal], principal, passwords[principal])
        if former == "disable":  # first: whatever fails after, a party named again finds no password of its own
            for login in formers:
                _move_aside(login)
        await delete_users(admin, {**deleted, **stray})
        await _disable(admin, disabled)
    except BaseException:
        _discard(written, set(written) - adopted)  # Kafka holds no password of theirs
        raise
    try:
        await upsert_users(admin, passwords)
    except ScramChangeFailed as exc:  # every other user's password was set
        _discard(written, exc.refused - adopted)
        _put_in_place(written, set(written) - exc.refused - exc.unanswered)
        _say_to_run_again(exc, sorted(exc.unanswered | (exc.refused & adopted)))
        raise
    except (KafkaAuthError, KafkaAccessError):  # the admin's login or rights refused: nothing was set
        _discard(written, set(written) - adopted)
        raise
    except BaseException as exc:  # no answer, Ctrl-C: Kafka may hold any of them, and only the new files have them
        if isinstance(exc, PuenteError):
            _say_to_run_again(exc, sorted(written))
        raise
    _put_in_place(written, set(written))
    for path in paths.values():  # a party named again: the file of the login it had is of no use any more
        with contextlib.suppress(OSError):
            _moved_aside(path).unlink(missing_ok=True)
    for login in out:
        if login.action == "removed" and login.config.parent != keys:  # not the placeholder of a name no folder has
            for path in (login.config, _pending(login.config), _moved_aside(login.config)):
                path.unlink(missing_ok=True)  # its password works no more
    # A new credential reaches the brokers through the metadata log, a moment after the call
    # returns: wait until each changed login works, so that no one tries it before it does.
    changed = [login for login in out if login.principal in paths and login.action != "kept"]
    await asyncio.gather(*(_wait_usable(login.config, conn.timeout_s) for login in changed))
    return out


_UNUSABLE = "its client.properties cannot be used: "


def _reason(action: str, problem: str | None, *, rotate: bool, lost: bool, stray: frozenset[str]) -> str:
    """Why a named party's login gets ``action`` (``PartyLogin.reason``); ``problem``, what is wrong with its file."""
    if action == "kept":
        return "" if problem is None else f"its other settings are rewritten: {problem}"
    if action != "rotated":
        return ""
    if rotate:
        return "a new password asked for (--rotate)"
    if stray:
        return (f"a credential of {', '.join(sorted(stray))} beside Puente's, which whoever set it may know, is "
                "deleted")
    if not lost:
        return "completing a run stopped after Kafka took its new password"
    return "its client.properties is missing" if problem is None else \
        f"{_UNUSABLE}{problem}"


def mass_cut_off(logins: Iterable[PartyLogin], former: Former, rotate: bool = False) -> str | None:
    """Why a run of ``apply_users`` whose answer (or plan) is ``logins`` cuts off too many parties at once to go on
    without ``allow_many``, in one line; None when it cuts off none, or a few.

    Too many: of the agencies' logins in use, or of the partners', it would disable or delete (``former``) more
    than half. Each kind apart, since each comes from its own list (``PUENTE_AGENCIES``, the policy's
    partners.yaml) and a mistake in one cuts off that kind: a partners file naming one partner of four is a
    mistake to stop however many agencies there are. In use: a login the cluster holds for a party named, or for
    a former one whose client configuration is still in place (the ones it would cut off). A former party's
    login disabled by a run before is cut off already: counting it would let the logins a folder named by mistake
    leaves out hide among those of parties long gone. (A former party whose file was handed over and removed here
    looks disabled already: nothing on this side tells the two apart.)

    And too many rotated: of the named parties' logins the cluster holds, of all together or of the agencies' or
    the partners' apart (as above), more than half (two at least) would get a new password because their client
    configuration is missing or cannot be used (``PartyLogin.lost``), not asked for (``rotate``): the logins folder
    (``PUENTE_LOGINS``, else the keystore's) is likely the wrong one, or the files were removed once handed over;
    every copy handed over would stop, and the former parties' files would be missing from it too, so that none
    would count as cut off above."""
    logins = list(logins)
    cut = sorted(login.principal for login in logins
                 if login.action in ("disabled", "removed") and _held(login.config))
    in_use = [*cut, *(login.principal for login in logins if login.action in ("kept", "rotated"))]
    refusal = None if rotate else _many_lost(logins)
    if refusal is not None:
        return refusal
    shares = []
    for kind, kinds in (("agency-", "agencies"), ("partner-", "partners")):
        gone, held = (sum(1 for p in names if p.startswith(kind)) for names in (cut, in_use))
        if 2 * gone > held:
            shares.append(f"{gone} of the {held} {kinds}")
    if not shares:
        return None
    shown = _first_of(cut, 10)
    return (f"refusing to {'delete' if former == 'delete' else 'disable'} the logins of {len(cut)} "
            f"part{'y' if len(cut) == 1 else 'ies'} the policy and settings no longer name ({shown}): "
            f"{' and '.join(shares)} in use, more than half; is the policy folder or the agency list the wrong one? "
            "Check PUENTE_POLICY_DIR (its partners.yaml) and PUENTE_AGENCIES; if these parties are to go, run "
            f"`puente users apply{' --prune' if former == 'delete' else ''} --allow-many`. Nothing was changed")


def _many_lost(logins: list[PartyLogin]) -> str | None:
    """``mass_cut_off``'s refusal of too many rotations no one asked for, of all the named parties or of one kind."""
    gone_files = [login for login in logins if login.action == "rotated" and (login.lost or not _held(login.config))]
    named = [login.principal for login in logins if login.action in ("kept", "rotated")]
    for kind, kinds in (("", "parties"), ("agency-", "agencies"), ("partner-", "partners")):
        lost = sorted(login.principal for login in gone_files if login.principal.startswith(kind))
        of = sum(1 for principal in named if principal.startswith(kind))
        if len(lost) >= 2 and 2 * len(lost) > of:
            unusable = [login for login in gone_files if _held(login.config) and login.principal in lost]
            what = "is missing" if not unusable else \
                f"is missing or cannot be used ({unusable[0].reason.removeprefix(_UNUSABLE)})"
            return (f"refusing to give {len(lost)} of the {of} {kinds} whose logins Kafka holds a new password "
                    f"({_first_of(lost, 10)}): their client.properties {what}; is the logins folder the wrong one? "
                    "Check PUENTE_LOGINS (else PUENTE_KEYS), and keep each file there once handed over; if they are "
                    "to get new passwords, run `puente users apply --rotate`, or with --allow-many. Nothing was "
                    "changed")
    return None


def _remove_folders(made: list[Path]) -> None:
    """Remove the folders ``apply_users`` made (``_missing``, deepest first) when it stops before changing anything."""
    for folder in made:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _missing(folders: Iterable[Path]) -> list[Path]:
    """Of ``folders`` and the folders above them, those that do not exist, deepest first: what making them makes."""
    missing: set[Path] = set()
    for folder in folders:
        while not os.path.lexists(folder):
            missing.add(folder)
            folder = folder.parent
    return sorted(missing, key=lambda folder: len(folder.parts), reverse=True)


def _former_logins(keys: Path, gone: dict[str, frozenset[str]], former: Former) -> list[PartyLogin]:
    """What ``apply_users`` does with each former party's login in ``gone`` (``PartyLogin.action``)."""
    def action(config: Path) -> str:
        if former == "delete":
            return "removed"
        return "disabled" if _held(config) else "former"
    return [PartyLogin(user, config, action(config)) for user in sorted(gone) for config in [_login_path(keys, user)]]


def _former_changes(gone: dict[str, frozenset[str]],
                    former: Former) -> tuple[dict[str, frozenset[str]], list[str]]:
    """The SCRAM credentials to delete of the former parties' logins in ``gone``, and the logins to disable
    (``_disable``). Deleted, every credential; disabled, every one of another mechanism than Puente's, so that the
    random password set for Puente's is the only one left."""
    if former == "delete":
        return gone, []
    return ({user: rest for user, mechanisms in gone.items() if (rest := mechanisms - {SCRAM_MECHANISM})},
            [user for user, mechanisms in gone.items() if SCRAM_MECHANISM in mechanisms])


def _disabled_here(path: Path) -> bool:
    """Whether the party whose client configuration is ``path`` had its login disabled by ``apply_users`` as a
    former party, and holds no other: its file moved aside, none in its place nor pending."""
    return os.path.lexists(_moved_aside(path)) and not _held(path)


def _held(config: Path) -> bool:
    """Whether a party's folder holds its client configuration ``config``, or a pending one (``_pending``); never
    for the placeholder of a name no folder has (``_login_path``)."""
    return config.name == CLIENT_CONFIG and any(map(os.path.lexists, (config, _pending(config))))


def _move_aside(login: PartyLogin) -> None:
    """Move a former party's client configuration aside (``_moved_aside``) and remove a pending one, whose password
    was never handed over: once its login is disabled neither password works, and one left in place would be taken
    up, and set again, were the party named again. ConfigError when it cannot be."""
    config = login.config
    if not _held(config):
        return
    try:
        if os.path.lexists(config):
            os.replace(config, _moved_aside(config))
        _pending(config).unlink(missing_ok=True)
        _sync_folder(config.parent)
    except OSError as exc:
        raise ConfigError(f"cannot move {config} of former party {login.principal} aside: {exc.strerror}; its "
                          "login was not disabled, and nothing was changed on Kafka") from None


async def _disable(admin: Admin, users: list[str]) -> None:
    """Give each of ``users``, former parties, a new random password that no file holds: it no longer logs in."""
    if not users:
        return
    try:
        await upsert_users(admin, {user: new_password() for user in users})
    except ScramChangeFailed as exc:
        # Its message only: the error keeps its class, so the command ends with the status it gives.
        exc.args = (f"disabling the logins of former parties: {exc}; each of those may still log in: run `puente "
                    "users apply` again, or `puente users apply --prune` to delete them", *exc.args[1:])
        raise


def _reads_back(path: Path, principal: str, password: str) -> None:
    """Refuse, before Kafka takes any new password, a client configuration just written that its party could not
    use: one that does not read back (``connection_from_properties``: a CA it cannot reach, say), or reads back
    another login. Passed on, its party would be locked out, and every later run would find its file unreadable."""
    try:
        back = connection_from_properties(path)
    except ConfigError as exc:
        raise ConfigError(f"the client configuration written for {principal} would not work ({exc}); nothing was "
                          "changed on Kafka") from None
    if back.username != principal or back.password is None or back.password.get_secret_value() != password:
        raise ConfigError(f"the client configuration written for {principal} at {path} reads back another login; "
                          "nothing was changed on Kafka")


def _discard(written: dict[str, Path], parties: Iterable[str]) -> None:
    """Remove the new files of ``parties``, whose password Kafka does not hold: their old files still log in."""
    for principal in parties:
        with contextlib.suppress(OSError):
            written[principal].unlink()


def _put_in_place(written: dict[str, Path], parties: Iterable[str]) -> None:
    """Rename the new file of each of ``parties``, whose password Kafka took, over its client configuration;
    ConfigError naming those that could not be (their hidden file stays, for the next run to take up)."""
    failed = []
    for principal in sorted(parties):
        pending = written[principal]
        try:
            os.replace(pending, pending.with_name(CLIENT_CONFIG))
            _sync_folder(pending.parent)
        except OSError as exc:
            failed.append(f"{pending.with_name(CLIENT_CONFIG)} ({exc.strerror})")
    if failed:
        raise ConfigError(f"Kafka took the new passwords, but cannot put {', '.join(failed)} in place; each waits "
                          "beside it as .client.properties.pending: run `puente users apply` again")


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _first_of(names: list[str], most: int) -> str:
    """``names`` for a one-line message: the first ``most``, then how many more."""
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def _say_to_run_again(exc: BaseException, parties: list[str]) -> None:
    """Add to ``exc``'s message that Kafka may hold the new passwords of ``parties``, which only their hidden new
    files have, and that the next run takes those up (``apply_users``)."""
    if parties:
        shown = _first_of(parties, 5)
        # Its message only: the error keeps its class, so the command ends with the status it gives.
        exc.args = (f"{exc}; Kafka may hold new passwords of {shown}, which only their new client configurations "
                    "have (.client.properties.pending beside each): run `puente users apply` again, which puts them "
                    "in place", *exc.args[1:])


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
        except (KafkaAuthError, KafkaUnavailableError):
            # A login Kafka has not taken yet, or an answer slower than one try's bound (a loaded node): both
            # are asked again until the whole time is up, never failed on the first slow answer.
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


def party_connection(keys: Path, principal: str, timeout_s: float = 15.0) -> KafkaConnection:
    """The connection a party's own client configuration describes (its folder under ``keys``)."""
    path = party_folder(keys, principal) / CLIENT_CONFIG
    if not path.exists():
        raise ConfigError(f"no client configuration for {principal} at {path}: run `puente users apply`")
    return connection_from_properties(path, timeout_s=timeout_s).model_copy(update={"client_id": principal})


def require_party(conn: KafkaConnection, command: str, *parties: str) -> None:
    """Refuse, in one line naming both, a login that is another of Puente's parties than ``parties`` (the one a
    command runs as: ``broker`` for ``broker run``), before anything is read, printed or written.

    Kafka's answer to the wrong party's login misleads: metadata leaves out every topic it may not describe, so
    ``broker run`` said its topics did not exist and to run ``topics apply``, and ``audit verify`` as the broker
    reported chain ends it could not check as problems. The check is by name, without Kafka: a SASL username
    that is none of the parties' (the admin, a certificate, a deployment's own names) is left to Kafka's ACLs."""
    user = conn.username if conn.uses_sasl else None
    if user is None or user in parties or not puentes(user, (BROKER, AUDITOR, CONSOLE)):
        return
    wanted = " or ".join(f"User:{party}" for party in parties)
    raise ConfigError(f"`{command}` runs as {wanted}, but the login in {conn.source} is User:{user}, another "
                      f"party's: name {parties[0]}'s client.properties in PUENTE_CLIENT_CONFIG or --command-config")
