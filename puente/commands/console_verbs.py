"""``puente audit serve``'s options and ``puente audit users ...``: the console's verbs of ``puente audit``.

``users`` manages the console's accounts (``broker.console_accounts``); no Kafka. ``serve`` runs the auditors'
console (``puente.commands.console``), logged in to Kafka as the console's own party. Its handler is named here
by module (``_Handler``) and imported only when ``serve`` runs: every other ``audit`` verb, the most run of
commands, starts without loading the web framework, its server and its templates.
"""

from __future__ import annotations

import argparse
import getpass
import importlib
import os
import stat
import sys
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path

from broker.audit_index import DEFAULT_INDEX
from broker.console_accounts import ConsoleAccounts, default_accounts_path
from broker.private_files import secret_problem
from policies import PolicySet, load_policy_set
from puente.commands._common import given_folder, kafka_options, say, seconds, settings
from puente.errors import ConfigError
from puente.settings import PuenteSettings
from puente.strict import one_line, open_regular


@dataclass(frozen=True)
class _Handler:
    """A verb's handler named by its module and function, imported when the verb runs, as ``puente.cli`` imports
    only the module of the command typed: registering the verb costs nothing of what running it needs."""

    module: str
    function: str

    def __call__(self, args: argparse.Namespace) -> int:
        handler = getattr(importlib.import_module(self.module), self.function)
        return int(handler(args))


def register_audit_verbs(audit: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``serve`` and ``users`` to ``puente audit``."""
    text = ("serve the auditors' console: search, timelines, why, integrity, dead letters, receipts and indicators "
            "over the audit index, read-only; every query is written to the audit before it is answered. Runs as "
            "the console party's own Kafka login, the only one that may write the auditors' query log; refuses a "
            "non-loopback address without TLS. Answers only under its own names: loopback ones on a loopback "
            "address, its certificate's over TLS, with the port; PUENTE_CONSOLE_HOSTS adds others (a reverse proxy's, "
            "reached over https: with any named, every request is taken as https, its cookies Secure and HSTS sent)")
    srv = audit.add_parser("serve", help="serve the auditors' web console", description=text,
                           parents=[kafka_options()])
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    srv.add_argument("--port", type=_port, default=8443, help="port (default 8443)")
    srv.add_argument("--index", type=Path, metavar="FILE", help=f"the audit index (default: PUENTE_AUDIT_INDEX or "
                                                                  f"{DEFAULT_INDEX})")
    srv.add_argument("--accounts", type=Path, metavar="FILE",
                     help="the console accounts (default: PUENTE_KEYS/auditor/console-accounts.sqlite)")
    srv.add_argument("--tls-cert", type=Path, metavar="PEM", help="serve HTTPS with this certificate (chain)")
    srv.add_argument("--tls-key", type=Path, metavar="PEM", help="and this private key")
    srv.add_argument("--refresh", type=seconds(0, 86400), default=60.0, metavar="SECONDS",
                     help="catch the index up from Kafka every SECONDS (default 60; 0: only at start)")
    srv.add_argument("--new-chain", action="store_true",
                     help="begin a new query log chain when every record of the old one is gone (its log starting past "
                          "offset 0): retention's work once no query was written for PUENTE_AUDIT_RETENTION_DAYS; "
                          "refused without this, since a deletion by hand looks the same")
    srv.set_defaults(func=_Handler("puente.commands.console", "serve_console"))

    users = audit.add_parser("users", help="manage the console's auditor accounts",
                             description="add, list, remove auditor accounts and set passwords (no Kafka needed)")
    acts = users.add_subparsers(dest="action", metavar="ACTION", required=True)

    def accounts_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--accounts", type=Path, metavar="FILE",
                            help="the accounts file (default: PUENTE_KEYS/auditor/console-accounts.sqlite)")

    add = acts.add_parser("add", help="add an auditor account")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--scope", required=True, metavar="national|PARTNER",
                     help="national (sees everything) or a partner id (joint oversight: only what concerns it)")
    add.add_argument("--password-file", type=Path, metavar="FILE",
                     help="read the password from FILE, which holds only it, on one line (a final line break is not "
                          "part of it; from a `pass` entry, which has more lines: --password-file <(pass show x | "
                          "head -n1)); default: ask twice, without echo. " + _RULE)
    accounts_option(add)
    add.set_defaults(func=_add)
    listing = acts.add_parser("list", help="list the accounts and their scopes")
    accounts_option(listing)
    listing.set_defaults(func=_list)
    remove = acts.add_parser("remove", help="remove an account and end its sessions")
    remove.add_argument("name", metavar="NAME")
    accounts_option(remove)
    remove.set_defaults(func=_remove)
    passwd = acts.add_parser("passwd", help="set an account's password (unlocks it, ends its sessions)")
    passwd.add_argument("name", metavar="NAME")
    passwd.add_argument("--password-file", type=Path, metavar="FILE",
                        help="as for `add`: FILE holds only the password, on one line (from a `pass` entry: "
                             "--password-file <(pass show x | head -n1)); default: ask twice, without echo. " + _RULE)
    accounts_option(passwd)
    passwd.set_defaults(func=_passwd)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError("a port is 1 to 65535")
    return value


def open_accounts(args: argparse.Namespace, cfg: PuenteSettings, *, create: bool,
                  policy_set: PolicySet | None = None) -> ConsoleAccounts:
    """The console's accounts: ``--accounts``, else the keystore's file; their scopes checked against the
    policy's partners (``policy_set``, else the one in the policy folder). ``create`` makes a missing one."""
    if create and args.accounts is not None:  # the default's folder is made; a mistyped one is not
        given_folder("--accounts", args.accounts)
    partners = (policy_set or load_policy_set(cfg.policy_dir)).partners
    return ConsoleAccounts.open(args.accounts or default_accounts_path(cfg.keys), partners, create=create)


def _password(args: argparse.Namespace) -> str:
    if args.password_file is not None:
        return _password_from(args.password_file)
    # With no terminal, getpass would read the password from standard input with echo on, after a warning of
    # several lines: refused instead, naming the option that works without one.
    with warnings.catch_warnings():
        warnings.simplefilter("error", getpass.GetPassWarning)
        try:
            first = getpass.getpass(f"password for {args.name}: ")
            again = getpass.getpass("again: ")
        except getpass.GetPassWarning:
            raise ConfigError("no terminal to ask the password on (it would echo): give it with --password-file "
                              "FILE; nothing changed") from None
        except EOFError:
            raise ConfigError("no password given; nothing changed") from None
    if again != first:
        raise ConfigError("the two passwords differ; nothing changed")
    problem = _not_typable(first)
    if problem is not None:
        raise ConfigError(f"the password typed {problem}; nothing changed")
    return first


def _password_from(path: Path) -> str:
    """The password held in the password file ``path``: a pipe (``<(pass show x)``), or a regular file held as
    every other secret file is (``secret_problem``: this user's, no permission for others, in a safe folder).
    It is the file's text exactly, less one final line break (``\\n`` or ``\\r\\n``, as ``echo`` or an editor
    ends it), or refused (``_file_password``)."""
    try:
        with open_regular(path) as fh:
            info = os.fstat(fh.fileno())
            raw = fh.read(4097)
    except OSError as exc:
        raise ConfigError(f"cannot read the password file {path}: {exc.strerror}") from None
    problem = secret_problem(path, info) if stat.S_ISREG(info.st_mode) else None
    if problem is not None:
        raise ConfigError(f"the password file {path}: {problem}; nothing changed")
    if len(raw) > 4096:
        raise ConfigError(f"the password file {path} is larger than 4 KiB: give a file holding "
                          "only the password, on one line; nothing changed")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:  # the error names the byte, which is the password's
        raise ConfigError(f"the password file {path} is not UTF-8 text") from None
    return _file_password(text, f"the password file {path}")


# The one rule for a password given to `audit users add` and `passwd`, typed or in a file (its help says it).
_RULE = ("A password may hold any character but a control character (a tab, an escape...) or a line break: "
         "neither can be typed at the console's sign-in form")
# Every line terminator some reader ends a line at (str.splitlines, Unicode's): a file holding one inside the
# password holds more than one line to some reader, which would cut the password there.
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_BOM = "\ufeff"


def _not_typable(password: str) -> str | None:
    """Why ``password`` cannot be one (``_RULE``), in words fit for an error, never quoting it; None when it can.

    Refused: a line break (every Unicode line terminator) and a C0 or C1 control character, the tab included:
    what the sign-in form cannot take as typed (a tab moves to the next field) and what makes a file's text differ
    from the password a person typed. Anything else a person can type is a password's: a format character (the
    zero-width joiner inside an emoji, a right-to-left mark in Hebrew or Arabic text, a soft hyphen), a
    no-break space."""
    if any(char in _LINE_BREAKS for char in password):
        return "holds a line break, which a password may not"
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in password):
        return "holds a control character (a tab, an escape...), which a password may not"
    return None


def _file_password(text: str, what: str) -> str:
    """The password ``text`` (a file's content, ``what`` naming it) holds: all of it, less one final ``\\n`` or
    ``\\r\\n``, as ``echo`` or an editor ends it. Refused, in one line quoting nothing of the file, rather than
    cut: a byte-order mark at its start (an editor's, never typed), a line break inside it (a second line: a
    ``pass`` entry's ``login:`` and ``url:``, or a break some reader ends a line at), a control character
    (``_not_typable``, the rule the prompt applies too). Cut there, the account would get only a part of it as its
    password, and say nothing."""
    body = text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text
    if body.startswith(_BOM):
        raise ConfigError(f"{what} was saved with a byte-order mark: save it as UTF-8 without BOM; nothing changed")
    if any(char in _LINE_BREAKS for char in body):
        raise ConfigError(f"{what} holds more than one line: give a file holding only the password, on one line "
                          "(from a `pass` entry: --password-file <(pass show x | head -n1)); nothing changed")
    problem = _not_typable(body)
    if problem is not None:
        raise ConfigError(f"{what}: the password {problem}; nothing changed")
    return body


def _add(args: argparse.Namespace) -> int:
    cfg = settings(args)
    with open_accounts(args, cfg, create=True) as accounts:
        accounts.check_scope(args.scope)
        account = accounts.add(args.name, args.scope, _password(args))
    scope = "national" if account.national else f"joint oversight of {account.scope}"
    say(f"added {account.name} ({scope}) to {accounts.path}")
    return 0


def _list(args: argparse.Namespace) -> int:
    cfg = settings(args)
    with open_accounts(args, cfg, create=False) as accounts:
        rows = accounts.list()
        twins = accounts.twins()
    # Names and scopes are read from the accounts database, a file: shown escaped, the column as wide as that.
    names = [one_line(a.name) for a in rows]
    width = max([len(n) for n in names] + [4])
    say(f"{'NAME':<{width}}  {'SCOPE':<10}  {'CREATED (UTC)':<16}  STATE")
    for a, name in zip(rows, names, strict=True):
        state = f"locked until {a.locked_until:%Y-%m-%d %H:%M}" if a.locked_until else "active"
        say(f"{name:<{width}}  {one_line(a.scope):<10}  {a.created_at:%Y-%m-%d %H:%M}  {state}")
    say(f"{len(rows)} account(s) in {accounts.path}", file=sys.stderr)
    for group in twins:  # made before `add` refused such names: each still signs in, as itself
        say(f"{' and '.join(map(one_line, group))} differ only in case or in '.', '_' and '-': a reader of the audit "
            "takes them for one auditor; remove one (`puente audit users remove NAME`) and add it under another "
            "name", file=sys.stderr)
    return 0


def _remove(args: argparse.Namespace) -> int:
    cfg = settings(args)
    with open_accounts(args, cfg, create=False) as accounts:
        accounts.remove(args.name)
    say(f"removed {args.name}; its sessions are ended")
    return 0


def _passwd(args: argparse.Namespace) -> int:
    cfg = settings(args)
    with open_accounts(args, cfg, create=False) as accounts:
        if args.name not in {a.name for a in accounts.list()}:
            raise ConfigError(f"no account {args.name[:64]!r}")
        accounts.set_password(args.name, _password(args))
    say(f"password of {args.name} changed; its sessions are ended")
    return 0
