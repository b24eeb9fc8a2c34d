r"""Access denials at the Kafka layer, as Kafka's authorizer logs them, made audit entries. Pure.

Kafka's ``StandardAuthorizer`` logs every denial on the logger ``kafka.authorizer.logger`` at INFO::

    [2026-12-01T11:50:06.031Z] INFO Principal = User:partner-COL is Denied operation = READ from host =
    127.0.0.1 on resource = Topic:LITERAL:puente.feed.USA for request = Fetch with resourceRefCount = 1
    based on rule DefaultDeny

(the local runner writes that logger, and only it, to each node's ``logs/authorizer.log``, with the
time in UTC). ``denial`` turns one such line into a DENIAL entry for the audit: who, what, on what,
when, from where, through which request. The collector (``broker.auditor.collect_denials``) writes
them as broker-signed blocks into the deployment's denials topic, where auditors read them beside
decisions and receipts. Strings are cut short: a denial names resources, never payloads.

The message holds names a client chose: Kafka allows any character in a group or transactional id,
newlines included, and up to 32,767 of them; ``%m`` writes them as they are. So one refused request
could write a second "line" that reads as another principal's denial, or a name built to look like
the end of a message. Hence these rules, which hold together:

* the local Kafka's authorizer appender escapes CR and LF in the message (``%enc{%m}{CRLF}`` writes
  them as the two characters ``\r`` and ``\n``), so every line of the file ends where Kafka ended one
  message; the parser takes the escaped text as it is (a resource name then shows ``\n``);
* ``log_lines`` splits the file at ``\n`` only (``str.splitlines`` would also split at ``\x1c``,
  ``\x85``, ``\u2028`` and others, which no escaping covers);
* a line is read by the fixed parts Kafka writes around the names, never by what a name may hold: its
  verdict is the first `` is Allowed operation = `` or `` is Denied operation = `` (in any case) after the
  time, and only a line whose first verdict is Denied is a denial. With the logger at DEBUG Kafka logs
  allowed requests too, whose resource names the client chose: a name holding `` is Denied operation = ``
  and a forged rest of a line is then part of an allowed request, never a refusal. The principal (the
  cluster's, not the client's) ends at that first verdict; the
  resource name is everything between `` on resource = Type:PATTERN:`` and the tail Kafka writes after
  it (`` for request = R with resourceRefCount = N based on rule ...``), found from the end of the line,
  where no name of the client's can follow it. A name holding a forged message, any character at all or
  a fake tail is then that name, recorded as the request of the principal who sent it. The parse makes a
  bounded number of passes over the line (the tail is tried at most ``_TAIL_TRIES`` places from the end,
  past text of a matching ACL, the operator's): no name makes it slow;
* nothing that says a request was denied is passed over. A name or principal too long for an entry is
  cut short, with its whole length and SHA-256 beside it (``name_length``, ``name_sha256``,
  ``principal_length``, ``principal_sha256``); a line that says ``is Denied operation`` but is not whole
  (cut short, edited, of another Kafka's format, its time without an offset) is still a DENIAL entry,
  marked ``unparsed`` and with ``?`` for what could not be read, carrying the line's length and hash and
  the time, principal and operation when they can be read: never its text, which may hold anything.

The time must carry its offset (the appender writes ``Z``): a time without one is no time (the
entry's ``at`` is then None, and the denial sorts after every timed one).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from broker.access import Acl, overlaps, puentes

# The fixed parts of Kafka's message (``[%d] %p %enc{%m}{CRLF}``), in the order they come.
_HEAD = re.compile(r"\[(?P<at>[^\]]{1,40})\] \w{1,10} Principal = ")
_DENIED = " is Denied operation = "
# A line's verdict: the first of these after the time (any case: Kafka 3 writes ``Operation``). Allowed requests
# are logged at DEBUG, and their resource names, which the client chose, may hold the other verdict's words.
_VERDICT = re.compile(r" is (?P<verdict>Allowed|Denied) operation = ", re.IGNORECASE)
_MIDDLE = re.compile(r"(?P<operation>\w{1,40}) from host = (?P<host>\S{1,100}) on resource = "
                     r"(?P<type>\w{1,40}):(?P<pattern>\w{1,20}):")
_TAIL_STARTS = " for request = "
_TAIL = re.compile(r" for request = (?P<request>\w{1,60}) with resourceRefCount = \d{1,10}"
                   r" based on rule (?:DefaultDeny|MatchingAcl\(acl=StandardAcl\(.*\)\))", re.DOTALL)
_TAIL_TRIES = 16  # places the tail may start, from the end: each is one pass over what follows
_OPERATION = re.compile(r" is Denied operation = (?P<operation>\w{1,40})", re.IGNORECASE)

NAME_CHARS = 400
"""The longest resource name an entry holds whole: Puente's own are far shorter; a longer one is cut."""
PRINCIPAL_CHARS = 200
"""The longest principal an entry holds whole."""


@dataclass(frozen=True)
class CutLine:
    """A log line too long to hold whole: its first characters (``head``), and the length in bytes and the
    SHA-256 of the whole line as the file holds it."""

    head: str
    length: int
    sha256: str


def log_lines(text: str) -> Iterator[str]:
    r"""The lines of an authorizer log: split at ``\n`` only (a ``\r`` before it is dropped), as the
    appender ends them; never at the other characters ``str.splitlines`` takes for line ends."""
    for line in text.split("\n"):
        yield line.removesuffix("\r")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _held(field: str, value: str, limit: int) -> dict[str, Any]:
    """``value`` as an entry holds it under ``field``: whole, or cut to ``limit`` characters with the whole one's
    length and hash beside it (``<field>_length``, ``<field>_sha256``)."""
    if len(value) <= limit:
        return {field: value}
    return {field: value[:limit], f"{field}_length": len(value), f"{field}_sha256": _sha256(value)}


def _time(text: str) -> str | None:
    """``text`` as an entry's time (ISO 8601, UTC, ``Z``), or None when it is none with an offset."""
    try:
        at = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        return None
    if at.tzinfo is None:
        return None
    try:
        return at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    except OverflowError:
        return None


def _parsed(line: str) -> dict[str, Any] | None:
    """The entry of a whole denial line, or None when ``line`` is not one (module docstring)."""
    head = _HEAD.match(line)
    if head is None:
        return None
    verdict = _VERDICT.search(line, head.end())
    if verdict is None or verdict.group() != _DENIED or verdict.start() == head.end():  # not denied, or no principal
        return None
    denied = verdict.start()
    middle = _MIDDLE.match(line, denied + len(_DENIED))
    if middle is None:
        return None
    found, tail, end = None, -1, len(line)
    for _ in range(_TAIL_TRIES):  # from the end: the text of a matching ACL (the operator's) may hold the words too
        tail = line.rfind(_TAIL_STARTS, middle.end(), end)
        if tail < 0 or (found := _TAIL.fullmatch(line, tail)) is not None:
            break
        end = tail + len(_TAIL_STARTS) - 1
    at = _time(head["at"])
    if found is None or at is None:
        return None
    name = line[middle.end():tail]
    resource = _held("name", name, NAME_CHARS)
    return {
        "kind": "DENIAL",
        "at": at,
        **_held("principal", line[head.end():denied], PRINCIPAL_CHARS),
        "operation": middle["operation"],
        "resource": f"{middle['type']}:{resource.pop('name')}",
        **resource,
        "pattern": middle["pattern"],
        "host": middle["host"],
        "request": found["request"],
    }


def _unparsed(head: str) -> dict[str, Any] | None:
    """The entry of a line (of which ``head`` is the start, or the whole) that says a request was denied but is no
    whole denial message: what can be read of it, ``?`` for the rest; None when it says no such thing, or when its
    first verdict (after the time, when there is one) is Allowed."""
    start = _HEAD.match(head)
    said = _VERDICT.search(head, start.end() if start is not None else 0)
    if said is None or said["verdict"].lower() != "denied":
        return None
    operation = _OPERATION.match(head, said.start())
    principal = head[start.end():said.start()] if start is not None and said.start() > start.end() else "?"
    return {
        "kind": "DENIAL",
        "at": _time(start["at"]) if start is not None else None,
        **_held("principal", principal, PRINCIPAL_CHARS),
        "operation": operation["operation"] if operation is not None else "?",
        "resource": "?",
        "pattern": "?",
        "host": "?",
        "request": "?",
        "unparsed": True,
    }


def denial(line: str | CutLine) -> dict[str, Any] | None:
    """The DENIAL entry of one authorizer log line (as ``log_lines`` gives it, or a ``CutLine`` for one too long to
    hold), or None when the line does not say a request was denied. A line that says so but is no whole denial
    message gives an entry marked ``unparsed`` (module docstring): never None."""
    if isinstance(line, CutLine):
        entry = _unparsed(line.head)
        length, digest = line.length, line.sha256
    else:
        entry = _parsed(line) or _unparsed(line)
        length, digest = len(line.encode("utf-8", "surrogatepass")), _sha256(line)
    if entry is None:
        return None
    if entry.get("unparsed"):
        entry["line_length"] = length  # UTF-8 bytes: the line can be found in the log by it and its hash
    # Identifies the line, so that collecting the same log twice adds nothing.
    entry["line_sha256"] = digest
    return entry


# Kafka's log names a resource type as its authorizer prints it (``TransactionalId``), the plan as its enum
# (``TRANSACTIONAL_ID``): a lower case letter or digit before a capital is where the underscore goes.
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")


def concerns(entry: dict[str, Any], prefix: str, principals: frozenset[str], *, planned: Iterable[Acl] = ()) -> bool:
    """Whether a denial is this deployment's to report: one of its parties was refused, or someone was refused one
    of its resources.

    A party is one ``principals`` names or any login Puente's by its form (``agency-*``, ``partner-*``: a party the
    policy or settings no longer name), the rule ``broker.access.puentes`` applies to ACLs. Its resources are what
    the ACL plan ``planned`` (``broker.access.plan``) grants, matched as ``overlaps`` matches two rules: among them
    the broker's consumer group and its ``<group>-slot-N`` transactional ids, named by ``PUENTE_GROUP_ID`` and not
    by the prefix; and any name under the deployment's ``prefix`` (its topics, a subscriber's transactional id
    ``puente-subscriber:<prefix>.receipts...``), planned or not. Without ``planned`` only the prefix names its
    resources. Kept rather than dropped when in doubt: a denial left out is one no auditor sees; so is every
    ``unparsed`` one, whose principal and resource are not known for sure. A resource name cut short (``denial``)
    is judged by the start it keeps, which holds any name of Puente's whole."""
    if entry.get("unparsed"):
        return True
    principal = str(entry.get("principal", "")).removeprefix("User:")
    kind, _, name = str(entry.get("resource", "")).partition(":")
    if puentes(principal, principals) or name.startswith(prefix) or f":{prefix}." in name:
        return True
    refused = Acl(principal, _CAMEL.sub(r"\1_\2", kind).upper(), name, "LITERAL", str(entry.get("operation", "")))
    return any(overlaps(refused, rule) for rule in planned)

