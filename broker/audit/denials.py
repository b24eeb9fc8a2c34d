"""Access denials at the Kafka layer, as Kafka's authorizer logs them, made audit entries. Pure.

Kafka's ``StandardAuthorizer`` logs every denial on the logger ``kafka.authorizer.logger`` at INFO::

    [2026-12-01T11:50:06.031Z] INFO Principal = User:partner-COL is Denied operation = READ from host =
    127.0.0.1 on resource = Topic:LITERAL:puente.feed.USA for request = Fetch with resourceRefCount = 1
    based on rule DefaultDeny

(the local runner writes that logger, and only it, to each node's ``logs/authorizer.log``, with the
time in UTC). ``denial`` turns one such line into a DENIAL entry for the audit: who, what, on what,
when, from where, through which request. The collector (``broker.auditor.collect_denials``) writes
them as broker-signed blocks into the deployment's denials topic, where auditors read them beside
decisions and receipts. Strings are cut short: a denial names resources, never payloads.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

_LINE = re.compile(
    r"^\[(?P<at>[^\]]{1,40})\] \w+ Principal = (?P<principal>\S{1,200}) is Denied operation = (?P<operation>\w{1,40})"
    r" from host = (?P<host>\S{1,100}) on resource = (?P<type>\w{1,40}):(?P<pattern>\w{1,20}):(?P<name>.{1,400}?)"
    r" for request = (?P<request>\w{1,60})")


def denial(line: str) -> dict[str, Any] | None:
    """The DENIAL entry of one authorizer log line, or None when the line is not a denial."""
    match = _LINE.match(line.strip())
    if match is None:
        return None
    try:
        at = datetime.fromisoformat(match["at"].replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
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
        "line_sha256": hashlib.sha256(line.strip().encode()).hexdigest(),
    }


def concerns(entry: dict[str, Any], prefix: str, principals: frozenset[str]) -> bool:
    """Whether a denial is this deployment's to report: one of its parties was refused, or someone was
    refused one of its resources (its topics, groups and transactional ids start with its prefix)."""
    principal = str(entry.get("principal", "")).removeprefix("User:")
    name = str(entry.get("resource", "")).partition(":")[2]
    return principal in principals or name.startswith(prefix) or f":{prefix}." in name
