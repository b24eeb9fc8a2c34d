"""collect-denials over the stand-in for Kafka (conftest.py): every line that says a request was denied reaches the
denials topic, whatever its names hold or however long it is, and each only once."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from broker import auditor
from broker.audit import verify_partition
from broker.topology import TopicNames

NAMES = TopicNames("p")
KEY = b"k" * 32
SINCE = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)


def _sign(payload: bytes) -> bytes:
    # 64 bytes, as an Ed25519 signature: a record's sig must be exactly 128 lowercase hex digits
    return hmac.new(KEY, payload, hashlib.sha512).digest()


def _verify(signer: str, payload: bytes, sig: bytes) -> bool:
    return hmac.compare_digest(_sign(payload), sig)


def _line(principal: str, name: str, at: str = "2026-12-01T11:50:05.000Z") -> str:
    """The line Kafka writes when ``principal`` is refused the group ``name``."""
    return (f"[{at}] INFO Principal = {principal} is Denied operation = DESCRIBE from host = 10.1.1.1 on resource = "
            f"Group:LITERAL:{name} for request = FindCoordinator with resourceRefCount = 1 based on rule DefaultDeny")


class _Producer:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield None

    async def send(self, topic: str, value: bytes, partition: int) -> asyncio.Future[None]:
        self.sent.append(value)
        delivered = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered


def _collect(monkeypatch: pytest.MonkeyPatch, log: Path) -> tuple[int, list[bytes]]:
    out = _Producer()
    monkeypatch.setattr(auditor, "producer", lambda *args, **kwargs: out)
    added = asyncio.run(auditor.collect_denials(None, NAMES, [log], frozenset({"partner-COL"}),  # type: ignore[arg-type]
                                                "broker-sign-2026a", _sign, _verify, SINCE))
    return added, out.sent


def test_long_odd_and_unreadable_denials_are_all_collected_once(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, audit_topics: dict[str, list[bytes]]) -> None:
    """A partner probing with a group id of 5,000 characters, a principal holding a no-break space, a denial whose
    time has no offset (kept though --since is given: its time is unknown), and one too long to hold are each
    collected, the last two marked unparsed; a line that says no denial is none; a run again adds nothing."""
    audit_topics[NAMES.denials] = []
    long = "g" * 5_000
    lines = [_line("User:partner-COL", long), _line("User:partner-COL\u00a0x", "p.group"),
             _line("User:mallory", "billing", at="2026-12-01T11:50:06.000"),
             _line("User:mallory", "h" * 300_000), "[2026-12-01T11:50:07.000Z] WARN not a denial"]
    log = tmp_path / "authorizer.log"
    log.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    added, sent = _collect(monkeypatch, log)
    assert added == 4
    assert verify_partition(NAMES.denials, 0, enumerate(sent), _verify, "denials").ok
    entries: list[dict[str, Any]] = [e for block in sent for e in json.loads(block)["entries"]]
    by_principal = {(e["principal"], bool(e.get("unparsed"))): e for e in entries}
    cut = by_principal[("User:partner-COL", False)]
    assert cut["resource"] == "Group:" + long[:400] and cut["name_length"] == 5_000
    assert by_principal[("User:partner-COL\u00a0x", False)]["resource"] == "Group:p.group"
    unparsed = [e for e in entries if e.get("unparsed")]
    assert {(e["at"], e["line_length"]) for e in unparsed} == {(None, len(lines[2])),
                                                                ("2026-12-01T11:50:05Z", len(lines[3]))}
    assert all(e["principal"] == "User:mallory" and e["resource"] == "?" for e in unparsed)
    audit_topics[NAMES.denials] = list(sent)
    assert _collect(monkeypatch, log) == (0, [])


@pytest.mark.parametrize("size", [400, 300_000])
def test_a_denial_kafka_is_still_writing_is_collected_once_whole(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, audit_topics: dict[str, list[bytes]], size: int) -> None:
    """A run that meets a denial only partly written (a long line reaches the file in parts) leaves it for the next
    run, which records it once, whole: never first as an unparsed piece, then again."""
    audit_topics[NAMES.denials] = []
    line = _line("User:partner-COL", "g" * size)
    log = tmp_path / "authorizer.log"
    log.write_text(line[:len(line) * 2 // 3], encoding="utf-8")
    assert _collect(monkeypatch, log) == (0, [])
    log.write_text(line + "\n", encoding="utf-8")
    added, sent = _collect(monkeypatch, log)
    assert added == 1
    entries = [e for block in sent for e in json.loads(block)["entries"]]
    assert len(entries) == 1 and entries[0]["principal"] == "User:partner-COL"
    assert entries[0].get("unparsed", False) is (size > 256 * 1024)  # a line past what is held whole is given cut
