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
newlines included, and ``%m`` writes them as they are, so one refused request could write a second
"line" that reads as another principal's denial. Hence three rules, which hold together:

* the local Kafka's authorizer appender escapes CR and LF in the message (``%enc{%m}{CRLF}`` writes
  them as the two characters ``\r`` and ``\n``), so every line of the file ends where Kafka ended one
  message; the parser takes the escaped text as it is (a resource name then shows ``\n``);
* ``log_lines`` splits the file at ``\n`` only (``str.splitlines`` would also split at ``\x1c``,
  ``\x85``, ``\u2028`` and others, which no escaping covers);
* a line counts only when it is one whole denial message from its start to its end, the tail Kafka
  writes after the resource included (`` for request = R with resourceRefCount = N based on rule
  ...``), and holds no character that is not printable (control, format or separator characters).
  (A client that puts such a character in a name of its own loses only the record of that refusal:
  no resource of Puente's has such a name, so no such request could have reached one.)

The time must carry its offset (the appender writes ``Z``): a time without one is no time, and its
line no denial.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from broker.access import Acl, overlaps, puentes

# One whole line, as the appender writes it (``[%d] %p %enc{%m}{CRLF}``): Kafka's message, tail and all.
_LINE = re.compile(
    r"\[(?P<at>[^\]]{1,40})\] \w+ Principal = (?P<principal>\S{1,200}) is Denied operation = (?P<operation>\w{1,40})"
    r" from host = (?P<host>\S{1,100}) on resource = (?P<type>\w{1,40}):(?P<pattern>\w{1,20}):(?P<name>.{1,400}?)"
    r" for request = (?P<request>\w{1,60}) with resourceRefCount = \d{1,10}"
    r" based on rule (?:DefaultDeny|MatchingAcl\(acl=StandardAcl\(.{1,1000}\)\))")


def log_lines(text: str) -> Iterator[str]:
    r"""The lines of an authorizer log: split at ``\n`` only (a ``\r`` before it is dropped), as the
    appender ends them; never at the other characters ``str.splitlines`` takes for line ends."""
    for line in text.split("\n"):
        yield line.removesuffix("\r")


def denial(line: str) -> dict[str, Any] | None:
    """The DENIAL entry of one authorizer log line (as ``log_lines`` gives it), or None when the line is
    not one whole denial message, or holds a character that is not printable (module docstring)."""
    if len(line) > 4_000 or not line.isprintable():
        return None
    match = _LINE.fullmatch(line)
    if match is None:
        return None
    try:
        at = datetime.fromisoformat(match["at"])
        if at.tzinfo is None:
            return None
        at = at.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return {
        "kind": "DENIAL",
        "at": at.isoformat().replace("+00:00", "Z"),
        "principal": match["principal"],
        "operation": match["operation"],
        "resource": f"{match['type']}:{match['name']}",
        "pattern": match["pattern"],
        "host": match["host"],
        "request": match["request"],
        # Identifies the line, so that collecting the same log twice adds nothing.
        "line_sha256": hashlib.sha256(line.encode()).hexdigest(),
    }


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
    resources. Kept rather than dropped when in doubt: a denial left out is one no auditor sees."""
    principal = str(entry.get("principal", "")).removeprefix("User:")
    kind, _, name = str(entry.get("resource", "")).partition(":")
    if puentes(principal, principals) or name.startswith(prefix) or f":{prefix}." in name:
        return True
    refused = Acl(principal, _CAMEL.sub(r"\1_\2", kind).upper(), name, "LITERAL", str(entry.get("operation", "")))
    return any(overlaps(refused, rule) for rule in planned)

