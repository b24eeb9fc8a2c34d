"""`puente audit log` and `audit verify` output, with the auditor's service standing in for Kafka: the table's reason
column and whole alert ids, rows in time order through the spill, and `audit verify --json`'s document."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import broker.auditor as auditor
import puente.commands.audit as audit
import puente.dev.demo as demo
from broker.audit import Finding, PartitionReport
from broker.audit.recalls import MAX_HOLDERS, ReceiptsCut
from broker.audit.verify import MAX_LISTED, EndCheck, GroupEnds, StartFinding, Vouched
from broker.auditor import AuditTopics, FeedEnds, LogFilter, WalkProgress
from broker.kafka import KafkaConnection
from policies import load_policy_set
from puente.cli import build_parser
from puente.errors import EXIT_CONFIG, EXIT_UNCHECKED, ConfigError, KafkaAccessError, KafkaUnavailableError
from puente.wire import iso_utc
from tests.unit.broker import test_audit_receipts_expired as expired
from tests.unit.broker.test_auditor_denials_signer import rotated_broker_keys

NO_KAFKA = KafkaConnection(bootstrap="kafka:9092")  # commands reach no Kafka here: every call is stubbed

LONG_ID = "SNM:PTY-20261103-00231-" + "x" * 40  # longer than any column a table would cut it to

ROWS: list[dict[str, Any]] = [  # as read_log gives them: in offset order, not time order
    {"kind": "DECISION", "at": "2026-11-03T10:05:00Z", "alert_id": "SNM:PTY-20261103-00232", "version": 1,
     "partner": "COL", "decision": "DELIVER_REDACTED", "agreement": "PTY-COL-2026",
     "redacted": [{"field": "subject.name", "action": "MASK"}, {"field": "location", "action": "GENERALISE"}]},
    {"kind": "DECISION", "at": "2026-11-03T10:00:00Z", "alert_id": LONG_ID, "version": 1, "partner": "USA",
     "decision": "WITHHOLD", "agreement": "PTY-USA-2026",
     "reasons": ["rule no-minors: subject is a minor", "caveat 'NOFORN' forbids USA"]},
    {"kind": "DEAD_LETTER", "at": "2026-11-03T09:00:00Z", "reason": "invalid-date", "detail": "fecha: 31/02/2026"},
    {"kind": "RECEIPT", "at": "2026-11-03T10:05:00Z", "alert_id": "SNM:PTY-20261103-00232", "partner": "COL",
     "status": "RECEIVED"},
]


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """The command's settings, Kafka and auditor service replaced: `read_log` gives ``ROWS``, or ``held["rows"]``
    when set (those the filter accepts), and reports ``held["left_out"]`` records left out (none unless set), the
    chains cut in ``held["deleted"]`` and, before any row, the receipts partitions cut in ``held["receipts_cut"]``;
    `verify_topics` gives ``held["reports"]``. The system's temporary folder is this test's own, so what a spill
    leaves there shows."""
    held: dict[str, Any] = {"reports": [], "fail": None, "tmp": tmp_path / "tmp"}
    held["tmp"].mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(held["tmp"]))

    async def audit_topics(conn: Any, prefix: str) -> AuditTopics:
        return AuditTopics({"p.decisions": "decisions", "p.queries": "queries"}, {}, ["p.feed.COL"])

    async def read_log(conn: Any, topics: Mapping[str, Any], flt: LogFilter, verify: Any,
                       left_out: list[int] | None = None, owners: Any = None,
                       progress: Any = None, retention: Any = None,
                       deleted: Any = None, receipts_cut: Any = None,
                       expired: Any = None, ends: Any = None,
                       end_reports: Any = None) -> AsyncIterator[dict[str, Any]]:
        walked = WalkProgress(progress, partitions=1)
        for cut in held.get("receipts_cut", []) if receipts_cut is not None else ():
            receipts_cut(cut)
        for row in held.get("rows", ROWS):
            walked.records += 1
            if flt.accepts(row):
                yield row
            if held["fail"] is not None:
                raise held["fail"]
        if left_out is not None:
            left_out.append(held.get("left_out", 0))
        if deleted is not None:
            deleted.extend(held.get("deleted", []))
        if expired is not None:
            expired.append(held.get("expired", 0))
        held["log_ends_given"] = ends
        if end_reports is not None:
            end_reports.extend(held.get("end_reports", []))
        walked.partition_done()

    async def verify_topics(conn: Any, topics: Any, verify: Any, owners: Any = None,
                            ends: Any = None, feed_ends: Any = None, progress: Any = None,
                            retention: Any = None) -> list[PartitionReport]:
        held["ends_given"], held["feed_ends_given"] = ends, feed_ends
        walked = WalkProgress(progress, partitions=len(held["reports"]))
        for report in held["reports"]:
            walked.records += report.records
            walked.partition_done()
        return list(held["reports"])

    async def subscriber_ends(conn: Any, prefix: str, feeds: Any, readers: Any) -> FeedEnds:
        held["readers"] = dict(readers)
        held["feeds"] = list(feeds)
        if held.get("refuse_feeds"):
            raise KafkaAccessError("Kafka at k:9093 refused auditor access while reading the committed offsets of "
                                   "group p.feed.COL.subscriber (Broker: Group authorization failed): no ACL allows it")
        return FeedEnds({("p.feed.COL", 0): 3}, frozenset(feeds), "p.feed.", dict(readers))

    async def broker_ends(conn: Any, group: str, prefix: str) -> dict[tuple[str, int], int]:
        held["group"] = group
        if held.get("refuse"):
            raise KafkaAccessError("Kafka at k:9093 refused auditor access while reading the committed offsets of "
                                   "group p-broker (Broker: Group authorization failed): no ACL allows it")
        return {("p.ingress.SNM", 0): 4}

    monkeypatch.setattr(audit, "settings", lambda args: SimpleNamespace(keys=tmp_path / "keys", topic_prefix="p",
                                                                        broker_group="p-broker", policy_dir=None,
                                                                        audit_retention_days=3650))
    monkeypatch.setattr(auditor, "broker_ends", broker_ends)  # what `group_ends` reads, as the command calls it
    monkeypatch.setattr(auditor, "subscriber_ends", subscriber_ends)
    monkeypatch.setattr(audit, "kafka", lambda cfg, name: NO_KAFKA)
    monkeypatch.setattr(audit, "signature_checks", lambda keys, files: lambda *a: True)
    monkeypatch.setattr(audit, "audit_topics", audit_topics)
    monkeypatch.setattr(audit, "read_log", read_log)
    monkeypatch.setattr(audit, "verify_topics", verify_topics)
    return held


def _puente(*argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return int(args.func(args))


def test_the_log_table_shows_reasons_and_whole_alert_ids_in_time_order(
        service: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """The table has a `why` column with a withholding's reasons and a redaction's changed fields, alert ids whole
    however long, rows oldest first (ties in the order read), and the count and left-out note on stderr."""
    service["left_out"] = 1
    assert _puente("audit", "log") == EXIT_UNCHECKED
    out, err = capsys.readouterr()
    header, *lines = out.splitlines()
    assert header.split()[-1] == "why" and header.index("alert") < header.index("partner")
    assert [line.split()[1] for line in lines] == ["DEAD_LETTER", "DECISION", "DECISION", "RECEIPT"]
    dead, withheld, redacted, receipt = lines
    assert LONG_ID in withheld and "WITHHOLD" in withheld
    assert withheld.endswith("rule no-minors: subject is a minor; caveat 'NOFORN' forbids USA")
    assert redacted.endswith("subject.name:MASK, location:GENERALISE")
    assert "invalid-date" in dead and dead.endswith("fecha: 31/02/2026")
    assert "RECEIVED" in receipt
    # The columns line up: every row's partner starts where the header's does, after the widest alert id.
    assert withheld.index(" USA ") == redacted.index(" COL ") == header.index(" partner")
    assert err.strip() == "4 record(s); 1 audit record(s) left out as unsound: run `puente audit verify`"
    assert list(service["tmp"].iterdir()) == []


def test_the_log_table_without_rows_is_its_header(service: dict[str, Any],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A filter nothing passes gives the header alone, in its narrowest form, and `0 record(s)`."""
    assert _puente("audit", "log", "--partner", "CRI") == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [out.splitlines()[0]] and "alert " in out
    assert err.startswith("0 record(s)")


def test_the_log_as_json_lines_is_every_row_whole_in_time_order(
        service: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """`--json` prints one parseable object per row, equal to the row read, oldest first; `--kind` filters."""
    assert _puente("audit", "log", "--json") == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert docs == sorted(ROWS, key=lambda d: d["at"])
    assert _puente("audit", "log", "--json", "--kind", "receipt") == 0
    assert [json.loads(line)["kind"] for line in capsys.readouterr().out.splitlines()] == ["RECEIPT"]


@pytest.mark.parametrize("output", [[], ["--json"]], ids=["table", "json"])
def test_the_log_never_exits_0_when_records_were_left_out_or_deleted(
        service: dict[str, Any], capsys: pytest.CaptureFixture[str], output: list[str]) -> None:
    """Records left out as unsound, or lost to a deletion before their retention, are not in the log: exit 5, as
    `audit recalls` does, so that a scheduled export is not taken as whole. Neither: exit 0."""
    assert _puente("audit", "log", *output) == 0
    assert "left out" not in capsys.readouterr().err
    service["left_out"] = 2
    assert _puente("audit", "log", *output) == EXIT_UNCHECKED
    assert "2 audit record(s) left out as unsound" in capsys.readouterr().err
    service["left_out"] = 0
    service["deleted"] = [StartFinding("p.decisions", 0, 5, "the records before it were deleted, not expired")]
    assert _puente("audit", "log", *output) == EXIT_UNCHECKED
    assert "1 audit chain(s) lost records to a deletion" in capsys.readouterr().err


@pytest.mark.parametrize(("retention", "status"), [(expired.EXPIRED, 0), (expired.WITHIN, EXIT_UNCHECKED)],
                         ids=["expired", "deleted"])
def test_the_log_of_receipts_whose_deliveries_expired_with_their_decisions_exits_0(
        service: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        retention: Any, status: int) -> None:
    """Past the audit's retention, receipts are held whose delivering blocks expired (Kafka deletes each topic's
    segments on its own schedule): `audit log` lists them, says so, and exits 0; the same blocks deleted within the
    retention leave their receipts out, and it exits 5."""
    async def audit_topics(conn: Any, prefix: str) -> AuditTopics:
        return AuditTopics(dict(expired.ROLES), dict(expired.OWNERS), [])

    async def settle(conn: Any, tps: Any, timeout_s: float) -> set[Any]:
        return set()

    expired._kafka(monkeypatch, {expired.DECISIONS: expired._decisions(), expired.RECEIPTS: expired._receipts()},
                   {expired.DECISIONS: expired.CUT})
    async def group_ends(conn: Any, prefix: str, group: str, feeds: Any, policy_dir: Any, **needed: bool) -> GroupEnds:
        # The groups committed after every record the chains hold: each end checked, and whole.
        return GroupEnds({("p.ingress.SNM", 0): 5}, FeedEnds({("p.feed.COL", 0): 5}, frozenset({"p.feed.COL"}),
                                                             "p.feed.", {"p.feed.COL": "COL"}))

    monkeypatch.setattr(auditor, "settle", settle)  # the receipts partitions' transactions, before the ends' check
    monkeypatch.setattr(audit, "group_ends", group_ends)
    monkeypatch.setattr(audit, "read_log", auditor.read_log)
    monkeypatch.setattr(audit, "audit_topics", audit_topics)
    monkeypatch.setattr(audit, "_horizon", lambda cfg: retention)
    assert _puente("audit", "log", "--json") == status
    out, err = capsys.readouterr()
    if status == 0:
        assert [row["alert_id"] for row in map(json.loads, out.splitlines()) if row["kind"] == "RECEIPT"] == [
            "A0", "A1", "A2", "A3", "A4"]
        assert err == ("7 record(s); 3 receipt(s) whose delivery expired with its decision (retention deleted the "
                       "decision's block, not yet the receipt): sound, acknowledging no delivery\n")
    else:
        assert "3 audit record(s) left out as unsound" in err and "lost records to a deletion" in err


def test_a_failure_while_reading_leaves_no_spill(service: dict[str, Any]) -> None:
    """Kafka failing mid-read ends `audit log` with that error, and the rows already spilled are removed."""
    service["fail"] = KafkaUnavailableError("Kafka could not be reached")
    with pytest.raises(KafkaUnavailableError):
        _puente("audit", "log")
    assert list(service["tmp"].iterdir()) == []


def test_verify_json_is_one_document_of_chains_and_findings(
        service: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """`audit verify --json` prints one JSON document: totals, each chain (topic, partition, records, signed,
    unsigned tail, ok) and each finding (topic, partition, offset, problem); exit 1 with problems."""
    problem = Finding("p.receipts.COL", 0, 7, "receipt for alert 'SNM:9', which the audited decisions never "
                                              "delivered to COL")
    service["reports"] = [PartitionReport("p.decisions", 0, records=5, checkpoints=2),
                          PartitionReport("p.receipts.COL", 0, records=9, checkpoints=1, unsigned_tail=1,
                                          findings=[problem])]
    assert _puente("audit", "verify", "--json") == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc == {
        "records": 14, "problems": 1, "receipts_delivery_expired": 0,
        "chains": [{"topic": "p.decisions", "partition": 0, "records": 5, "signed": 2, "unsigned_tail": 0,
                    "ok": True, "problems": 0, "problems_not_listed": 0, "signed_up_to": [], "end": None,
                    "not_checked": None},
                   {"topic": "p.receipts.COL", "partition": 0, "records": 9, "signed": 1, "unsigned_tail": 1,
                    "ok": False, "problems": 1, "problems_not_listed": 0, "signed_up_to": [], "end": None,
                    "not_checked": None}],
        "findings": [{"topic": "p.receipts.COL", "partition": 0, "offset": 7, "problem": problem.problem}],
        "ends_not_checked": None}


def test_verify_json_of_a_sound_audit_exits_0(service: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """A sound audit is a document with no problems and no findings, and exit 0; the table form says the same."""
    service["reports"] = [PartitionReport("p.decisions", 0, records=3, chains=1, checkpoints=1)]
    assert _puente("audit", "verify", "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["records"], doc["problems"], doc["findings"], [c["ok"] for c in doc["chains"]]) == (3, 0, [], [True])
    assert _puente("audit", "verify") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "audit verify: 3 records in 1 chains, no problems"


def test_verify_counts_receipts_whose_deliveries_expired_and_exits_0(
        service: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """Receipts of deliveries whose blocks retention deleted are no problem: counted, said, exit 0."""
    service["reports"] = [PartitionReport("p.receipts.COL", 0, records=4, chains=1, checkpoints=1, expired=3)]
    assert _puente("audit", "verify", "--json") == 0
    assert json.loads(capsys.readouterr().out)["receipts_delivery_expired"] == 3
    assert _puente("audit", "verify") == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "audit verify: 4 records in 1 chains, no problems; 3 receipt(s) whose delivery expired with its decision "
        "(retention deleted the decision's block, not yet the receipt): sound, acknowledging no delivery")


def test_verify_counts_chains_not_partitions(service: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """The summary's chain count is the chains walked: three subscriber instances in one receipts partition are
    three chains, beside the decisions partition's one."""
    service["reports"] = [PartitionReport("p.decisions", 0, records=1, chains=1, checkpoints=1),
                          PartitionReport("p.receipts.COL", 0, records=6, chains=3, checkpoints=3)]
    assert _puente("audit", "verify") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "audit verify: 7 records in 4 chains, no problems"


def test_verify_says_from_which_seq_a_chain_cut_by_retention_is_vouched(
        service: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """A chain whose first records expired is sound, and its VOUCHED line and JSON say the seq it is vouched from."""
    service["reports"] = [PartitionReport("p.decisions", 0, records=3, chains=1, checkpoints=3,
                                          vouched=[Vouched(None, 4, "2026-03-05T12:00:00Z", 4, since=2)])]
    assert _puente("audit", "verify") == 0
    assert "from seq 2 on, where the partition's log now starts" in capsys.readouterr().out
    assert _puente("audit", "verify", "--json") == 0
    assert json.loads(capsys.readouterr().out)["chains"][0]["signed_up_to"] == [
        {"chain": None, "seq": 4, "at": "2026-03-05T12:00:00Z", "offset": 4, "from_seq": 2}]


def test_verify_checks_each_decision_chains_end_against_the_broker_groups_offsets(
        service: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """`audit verify` fetches the broker group's committed offsets (of the group the settings name) and hands them
    to the walk; each decision chain's end is a line, and an end it could not check is counted in the summary with
    what to check, never passed over silently."""
    reached = EndCheck("p.ingress.SNM:0", 3, 4)
    unseen = EndCheck("p.ingress.PN:1", 8, None)
    service["reports"] = [PartitionReport("p.decisions", 0, records=3, chains=1, checkpoints=1, end=reached),
                          PartitionReport("p.decisions", 1, records=2, chains=1, checkpoints=1, end=unseen)]
    assert _puente("audit", "verify") == EXIT_UNCHECKED
    out = capsys.readouterr().out.splitlines()
    assert service["group"] == "p-broker" and service["ends_given"] == {("p.ingress.SNM", 0): 4}
    assert ("END     p.decisions[0]: ends at ingress p.ingress.SNM:0 offset 3, as the broker group's committed "
            "offset 4 says") in out
    assert "END     p.decisions[1]: ends at ingress p.ingress.PN:1 offset 8; no settled committed offset" in out[-2]
    assert out[-1].startswith("audit verify: 5 records in 2 chains, no problems; 1 chain end(s) or "
                              "partition(s) not checked") and "p-broker" in out[-1]
    assert _puente("audit", "verify", "--json") == EXIT_UNCHECKED
    chains = json.loads(capsys.readouterr().out)["chains"]
    assert [c["end"] for c in chains] == [
        {"ingress": "p.ingress.SNM:0", "last_offset": 3, "committed": 4, "checked": True},
        {"ingress": "p.ingress.PN:1", "last_offset": 8, "committed": None, "checked": False}]


def test_verify_refused_the_broker_groups_offsets_walks_every_chain_and_says_why_ends_were_not_checked(
        service: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """A login the group's offsets are refused to (an ACL missing, another PUENTE_GROUP_ID) still has every chain
    verified; the ends are reported as not checked, with Kafka's refusal as the reason, in text and JSON."""
    service["refuse"] = True
    service["reports"] = [PartitionReport("p.decisions", 0, records=3, checkpoints=1,
                                          end=EndCheck("p.ingress.SNM:0", 2, None))]
    assert _puente("audit", "verify") == EXIT_UNCHECKED
    last = capsys.readouterr().out.splitlines()[-1]
    assert service["ends_given"] == {} and "1 chain end(s) or partition(s) not checked: " in last
    assert "Group authorization failed" in last
    assert _puente("audit", "verify", "--json") == EXIT_UNCHECKED
    doc = json.loads(capsys.readouterr().out)
    assert doc["ends_not_checked"]["chains"] == 1 and "refused auditor access" in doc["ends_not_checked"]["why"]


def test_verify_refused_the_offsets_is_never_clean_even_with_no_end_to_check(
        service: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """Decisions partitions that hold no block name no ingress partition, so no end reads "not checked"; with the
    broker group's offsets refused, the chains that may be missing could not be checked either: exit 5 with Kafka's
    refusal, in text and JSON, never "no problems" and exit 0."""
    service["refuse"] = True
    service["reports"] = [PartitionReport("p.decisions", 0), PartitionReport("p.decisions", 1)]
    assert _puente("audit", "verify") == EXIT_UNCHECKED
    last = capsys.readouterr().out.splitlines()[-1]
    assert "end(s) or partition(s) not checked: " in last and "Group authorization failed" in last
    assert _puente("audit", "verify", "--json") == EXIT_UNCHECKED
    doc = json.loads(capsys.readouterr().out)
    assert doc["ends_not_checked"]["chains"] == 0 and "refused auditor access" in doc["ends_not_checked"]["why"]


def test_verify_a_partition_emptied_past_offset_0_is_not_checked_never_clean(
        service: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """A queries partition whose every record was deleted (``PartitionReport.unchecked``): exit 5, named in the
    summary line and on a line of its own, and in JSON on its chain; a problem elsewhere still exits 1."""
    why = "p.queries[0] (it holds the queries) holds no record, but its log starts at offset 40: not checked"
    service["reports"] = [PartitionReport("p.decisions", 0, records=3, chains=1, checkpoints=1),
                          PartitionReport("p.queries", 0, unchecked=why)]
    assert _puente("audit", "verify") == EXIT_UNCHECKED
    out = capsys.readouterr().out.splitlines()
    assert f"UNCHECKED {why}" in out and (
        "1 chain end(s) or partition(s) not checked: 1 partition(s) emptied past offset 0") in out[-1]
    assert _puente("audit", "verify", "--json") == EXIT_UNCHECKED
    assert [c["not_checked"] for c in json.loads(capsys.readouterr().out)["chains"]] == [None, why]
    service["reports"][0].findings.append(Finding("p.decisions", 0, 1, "a gap"))
    assert _puente("audit", "verify") == 1


def _short_end() -> PartitionReport:
    end = EndCheck("p.ingress.SNM:0", 0, 4)
    return PartitionReport("p.decisions", 0, end=end, findings=[Finding("p.decisions", 0, 0, end.problem())])


@pytest.mark.parametrize("verb", ["log", "recalls"])
def test_log_and_recalls_check_the_chains_ends_as_verify_does(
        service: dict[str, Any], capsys: pytest.CaptureFixture[str], verb: str) -> None:
    """`audit log` and `audit recalls` read the groups' offsets before the walk and have ``read_log`` check each
    chain's end: one short (a block lost from the end, a recall notice in it) exits 1, one not checked exits 5,
    each named in the summary; every end checked and whole is 0."""
    service["rows"] = []
    assert _puente("audit", verb) == 0
    assert service["log_ends_given"].ingress == {("p.ingress.SNM", 0): 4}
    capsys.readouterr()
    service["end_reports"] = [_short_end()]
    assert _puente("audit", verb) == 1
    assert "1 problem(s) at the chains' ends" in capsys.readouterr().err
    service["end_reports"] = [PartitionReport("p.decisions", 0, end=EndCheck("p.ingress.SNM:0", 0, None))]
    assert _puente("audit", verb) == EXIT_UNCHECKED
    assert "1 chain end(s) or partition(s) not checked" in capsys.readouterr().err


def test_verify_with_every_end_checked_exits_0_and_a_problem_outranks_an_unchecked_end(
        service: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 0 needs every decision chain's end checked; exit 1 (problems) wins over 5 (an end not checked)."""
    service["reports"] = [PartitionReport("p.decisions", 0, records=3, checkpoints=1,
                                          end=EndCheck("p.ingress.SNM:0", 3, 4))]
    assert _puente("audit", "verify") == 0
    problem = Finding("p.decisions", 1, 2, "record seq 2 does not follow seq 0")
    service["reports"].append(PartitionReport("p.decisions", 1, records=3, checkpoints=1, findings=[problem],
                                              end=EndCheck("p.ingress.SNM:1", 2, None)))
    assert _puente("audit", "verify") == 1
    capsys.readouterr()


def test_verify_checks_each_partners_receipts_against_its_subscriber_groups_offsets(
        service: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """`audit verify` fetches the subscriber groups' committed offsets of the feed topics it sees and hands them to
    the walk; each feed partition's end is a line (and a JSON object naming the feed and the group), and a login
    refused those offsets still has every chain walked, the receipts' ends then not checked, with Kafka's reason."""
    reached = EndCheck("p.feed.COL:0", 2, 3, group="p.feed.COL.subscriber")
    service["reports"] = [PartitionReport("p.receipts.COL", 0, records=4, checkpoints=1),
                          PartitionReport("p.feed.COL", 0, end=reached)]
    assert _puente("audit", "verify") == 0
    out = capsys.readouterr().out.splitlines()
    assert service["feeds"] == ["p.feed.COL"]
    assert service["readers"]["p.feed.COL"] == "COL"  # the shipped policy's partners and their feeds
    assert service["feed_ends_given"] == FeedEnds({("p.feed.COL", 0): 3}, frozenset({"p.feed.COL"}), "p.feed.",
                                                  service["readers"])
    assert ("END     p.feed.COL[0]: receipts reach feed p.feed.COL:0 offset 2, as the subscriber group "
            "p.feed.COL.subscriber's committed offset 3 says") in out
    assert _puente("audit", "verify", "--json") == 0
    ends = [c["end"] for c in json.loads(capsys.readouterr().out)["chains"] if c["end"] is not None]
    assert ends == [{"feed": "p.feed.COL:0", "group": "p.feed.COL.subscriber", "last_offset": 2, "committed": 3,
                     "checked": True}]

    service["refuse_feeds"] = True
    service["reports"] = [PartitionReport("p.receipts.COL", 0, records=4, checkpoints=1),
                          PartitionReport("p.feed.COL", 0, end=EndCheck("p.feed.COL:0", 2, None,
                                                                        group="p.feed.COL.subscriber"))]
    assert _puente("audit", "verify") == EXIT_UNCHECKED
    last = capsys.readouterr().out.splitlines()[-1]
    assert service["feed_ends_given"] == FeedEnds({}, frozenset(), "p.feed.", service["readers"])
    assert "1 chain end(s) or partition(s) not checked: " in last and "p.feed.COL.subscriber" in last


def test_verify_without_a_readable_policy_checks_no_receipts_end_and_says_why(
        service: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """Which partner reads which feed is the policy's word: with none readable, every feed end is "not checked"
    (exit 5), the reason naming the policy folder to check, never passed over."""
    monkeypatch.setattr(audit, "settings", lambda args: SimpleNamespace(
        keys=tmp_path / "keys", topic_prefix="p", broker_group="p-broker", policy_dir=tmp_path / "nowhere",
        audit_retention_days=3650))
    service["reports"] = [PartitionReport("p.feed.COL", 0, end=EndCheck(
        "p.feed.COL:0", 2, 3, group="p.feed.COL.subscriber", why="no partner in the policy reads this feed"))]
    assert _puente("audit", "verify") == EXIT_UNCHECKED
    last = capsys.readouterr().out.splitlines()[-1]
    assert service["readers"] == {} and "PUENTE_POLICY_DIR" in last
    assert "1 chain end(s) or partition(s) not checked: the policy in " in last


@pytest.mark.parametrize("verb", ["log", "recalls"])
def test_a_partner_the_policy_does_not_name_is_refused_not_answered_with_nothing(
        service: dict[str, Any], monkeypatch: pytest.MonkeyPatch, verb: str) -> None:
    """`--partner` names a partner exactly: one of the policy's in another case (`usa`) is refused before Kafka is
    reached, naming the right one; one neither the policy nor any record read names is refused after the read; both
    bad input (exit 3) in one line, never "0 overdue" or no row. A partner that left the policy, whose records the
    audit keeps, is taken."""
    reach = audit.kafka
    monkeypatch.setattr(audit, "kafka", lambda cfg, name: pytest.fail("Kafka reached"))
    with pytest.raises(ConfigError) as refused:
        _puente("audit", verb, "--partner", "usa")
    assert refused.value.exit_code == EXIT_CONFIG and "'usa' is no partner of the policy; did you mean USA?" in str(
        refused.value)
    monkeypatch.setattr(audit, "kafka", reach)
    with pytest.raises(ConfigError) as refused:
        _puente("audit", verb, "--partner", "NOPE")
    message = str(refused.value)
    assert refused.value.exit_code == EXIT_CONFIG and "\n" not in message
    assert "'NOPE' is no partner of the policy, and no audit record the filters took names it; the policy's: COL, " \
           "CRI, FEAN, USA" in message
    service["rows"], service["left_out"] = [{**row, "partner": "BRA"} for row in ROWS if "partner" in row], 0
    assert _puente("audit", verb, "--partner", "BRA") == 0


def test_a_log_since_after_until_is_a_usage_error(service: dict[str, Any],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """`--since` after `--until` matches nothing: exit 2 with one line naming both, as an unreadable time is; the
    same time twice is a range of one instant, and is taken."""
    with pytest.raises(SystemExit) as done:
        _puente("audit", "log", "--since", "2026-01-01", "--until", "2025-01-01")
    assert done.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and "--since 2026-01-01T00:00:00Z is after --until 2025-01-01T23:59:59.999999Z" in errors[0]
    assert _puente("audit", "log", "--since", "2026-11-03T10:00:00Z", "--until", "2026-11-03T10:00:00Z") == 0


def test_a_date_alone_as_until_lists_that_whole_day(service: dict[str, Any],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """`--until 2026-11-03` is through the end of the 3rd, as the console reads it: every row of that day is listed,
    not only those at its midnight; the day before lists none of them."""
    assert _puente("audit", "log", "--json", "--since", "2026-11-03", "--until", "2026-11-03") == 0
    assert len(capsys.readouterr().out.splitlines()) == len(ROWS)
    assert _puente("audit", "log", "--json", "--until", "2026-11-02") == 0
    assert capsys.readouterr().out == ""


def test_a_redacted_decision_whose_changes_were_cut_never_reads_as_the_full_alert(
        service: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """A decision whose change list its block cut (``truncated`` not 0, -1 when nothing of it was kept) lists what is
    recorded and says the changes are not all recorded, never "the full alert"; a whole list, or a full delivery
    with none, reads as before."""
    base = {"kind": "DECISION", "alert_id": "SNM:C", "version": 1, "partner": "COL", "agreement": "PTY-COL-2026"}
    service["rows"] = [
        {**base, "at": "2026-11-03T10:00:00Z", "decision": "DELIVER_REDACTED", "redacted": [], "truncated": -1},
        {**base, "at": "2026-11-03T10:01:00Z", "decision": "DELIVER_REDACTED", "truncated": 4,
         "redacted": [{"field": "subject.name", "action": "drop"}] * 20},  # as ``shrink`` leaves a list it cut
        {**base, "at": "2026-11-03T10:02:00Z", "decision": "DELIVER_REDACTED", "redacted": ["{'field': 'subj"]},
        {**base, "at": "2026-11-03T10:03:00Z", "decision": "DELIVER", "redacted": [], "truncated": 0},
        {**base, "at": "2026-11-03T10:04:00Z", "decision": "DELIVER_REDACTED", "redacted": []},
        {**base, "at": "2026-11-03T10:05:00Z", "decision": "DELIVER_REDACTED", "truncated": 30,  # reasons cut only
         "redacted": [{"field": "subject.name", "action": "drop"}, {"action": "drop"}]},
        {**base, "at": "2026-11-03T10:06:00Z", "decision": "DELIVER_REDACTED", "truncated": 30,
         "redacted": [{"field": "subject.name", "action": "drop"}]},
    ]
    assert _puente("audit", "log") == 0
    emptied, listed, unreadable, full, none, fieldless, reasons_cut = capsys.readouterr().out.splitlines()[1:]
    assert emptied.endswith(" changes not all recorded (the audit cut the list)")
    assert audit._why(service["rows"][1]).endswith(" subject.name:drop, changes not all recorded (the audit cut "
                                                  "the list)")  # the table's column cuts it: 20 changes listed
    assert "subject.name:drop, subject.name:drop" in listed
    assert unreadable.endswith(" changes not all recorded (the audit cut the list)")
    assert full.endswith(" the full alert")
    assert none.endswith(" changes not all recorded (the audit cut the list)")  # redacted, yet none listed
    assert fieldless.endswith(" subject.name:drop, changes not all recorded (the audit cut the list)")
    assert "None" not in fieldless
    assert reasons_cut.endswith(" subject.name:drop")  # its change list is whole


def test_values_in_the_why_column_cannot_drive_the_terminal(
        service: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A denial's principal and resource and a decision's reasons are printed escaped: an escape sequence or a
    line break in any of them stays visible text on its row, whichever kind of record."""
    hostile = "\x1b[2J\x1b]0;owned\x07\nforged line"
    rows = [
        {"kind": "DENIAL", "at": "2026-03-01T12:00:00Z", "principal": f"User:{hostile}", "operation": "READ",
         "resource": f"TOPIC:{hostile}", "request": "Fetch"},
        {"kind": "DECISION", "at": "2026-03-01T12:00:02Z", "alert_id": "SNM:1", "partner": "COL",
         "decision": "WITHHOLD", "reasons": [hostile]},
    ]
    monkeypatch.setattr(sys.modules[__name__], "ROWS", rows)
    assert _puente("audit", "log") == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and len(out.splitlines()) == 1 + len(rows)
    assert out.count("\\x1b[2J") == 3  # the principal, the resource, the reason


def test_verify_counts_the_problems_a_partition_lists_no_more_of(
        service: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """A flood of findings in one partition: the first MAX_LISTED are listed, the rest counted, in the total, the
    table, one line naming how many and how far, and the JSON; exit 1."""
    report = PartitionReport("p.receipts.COL", 0, records=MAX_LISTED + 500)
    report.add(Finding("p.receipts.COL", 0, i, "not an audit record") for i in range(MAX_LISTED + 500))
    assert (len(report.findings), report.unlisted, report.problems, report.ok) == (MAX_LISTED, 500, MAX_LISTED + 500,
                                                                                   False)
    service["reports"] = [report]
    assert _puente("audit", "verify") == 1
    out = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("PROBLEM p.receipts.COL[0] offset") for line in out) == MAX_LISTED
    assert f"PROBLEM p.receipts.COL[0]: 500 more problem(s), up to offset {MAX_LISTED + 499}, not listed" in out[-2]
    assert out[-1].endswith(f"{MAX_LISTED + 500} problem(s)")
    assert any(line.split()[-2:] == [str(MAX_LISTED + 500), "problem(s)"] for line in out[:3])  # the table
    assert _puente("audit", "verify", "--json") == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["problems"] == MAX_LISTED + 500 and len(doc["findings"]) == MAX_LISTED
    assert doc["chains"][0]["problems_not_listed"] == 500


def test_a_long_walk_says_how_far_it_is_on_stderr_only(service: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """`audit log`, `audit verify` and `audit recalls` say how far a walk longer than ``PROGRESS_S`` is, on
    stderr: records read and partitions done; stdout (what a script reads) is the same with and without it."""
    assert _puente("audit", "log", "--json") == 0
    quiet = capsys.readouterr()
    assert "records read" not in quiet.err  # a walk shorter than PROGRESS_S says nothing
    monkeypatch.setattr(audit, "PROGRESS_S", 0.0)
    assert _puente("audit", "log", "--json") == 0
    said = capsys.readouterr()
    assert said.out == quiet.out
    assert f"audit log: {len(ROWS)} records read (" in said.err and "/s), partitions 1/1 done" in said.err
    service["reports"] = [PartitionReport("p.decisions", 0, records=3), PartitionReport("p.decisions", 1, records=4)]
    _puente("audit", "verify")
    err = capsys.readouterr().err
    assert "audit verify: 3 records read" in err and "partitions 1/2 done" in err
    assert "audit verify: 7 records read" in err and "partitions 2/2 done" in err


def _ago(hours: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


def test_recalls_shows_a_late_acknowledgement_as_such_and_exits_1(service: dict[str, Any],
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A notice FEAN had 24 h to acknowledge (recorded with it), acknowledged 40 h after it went: "acknowledged
    late", 16 h late, counted apart in the summary, and the command exits 1 as for an overdue one (the shipped
    policy gives COL 72 h: its notice of an hour ago is outstanding, and alone exits 0)."""
    service["left_out"] = 0
    late = [{"kind": "DECISION", "decision": "RECALL", "alert_id": "SNM:A", "partner": "FEAN", "version": 2,
             "notice_version": 2, "ack_hours": 24, "reason": "ERROR", "at": _ago(50)},
            {"kind": "RECEIPT", "status": "RECALLED", "alert_id": "SNM:A", "partner": "FEAN", "version": 2,
             "at": _ago(10)}]
    pending = [{"kind": "DECISION", "decision": "RECALL", "alert_id": "SNM:B", "partner": "COL", "version": 2,
                "notice_version": 2, "ack_hours": 72, "action": "RECLASSIFY", "at": _ago(1)}]
    service["rows"] = late + pending
    assert _puente("audit", "recalls") == 1
    out, err = capsys.readouterr()
    header, first, second = out.splitlines()
    assert header.split()[:2] == ["state", "alert"]
    assert first.startswith("acknowledged late SNM:A") and first.endswith(", 16.0 h late")
    assert second.startswith("outstanding") and second.endswith("not yet")
    assert err.startswith("2 recall(s): 0 acknowledged, 1 acknowledged late, 1 outstanding, 0 overdue, 0 never sent")
    assert _puente("audit", "recalls", "--json") == 1
    assert [json.loads(line)["state"] for line in capsys.readouterr().out.splitlines()] == ["acknowledged late",
                                                                                           "outstanding"]
    service["rows"] = pending
    assert _puente("audit", "recalls") == 0


def test_recalls_with_records_left_out_as_unsound_never_exits_0(service: dict[str, Any],
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Records left out as unsound may hold a recall no row judges: with none overdue the command exits 5 (not
    everything checked), not 0, and one line says how many and to run `audit verify`; an overdue one still exits
    1, with the same line."""
    pending = [{"kind": "DECISION", "decision": "RECALL", "alert_id": "SNM:B", "partner": "COL", "version": 2,
                "notice_version": 2, "ack_hours": 72, "action": "RECLASSIFY", "at": _ago(1)}]
    service["rows"], service["left_out"] = pending, 2
    assert _puente("audit", "recalls") == EXIT_UNCHECKED
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == ("not every recall could be judged: 2 audit record(s) left out as unsound; run "
                       "`puente audit verify`")
    assert _puente("audit", "recalls", "--json") == EXIT_UNCHECKED
    service["rows"] = [{**pending[0], "at": _ago(100)}]  # 72 h to acknowledge, sent 100 h ago
    assert _puente("audit", "recalls") == 1
    assert "2 audit record(s) left out as unsound" in capsys.readouterr().err
    service["rows"], service["left_out"] = pending, 0
    assert _puente("audit", "recalls") == 0
    assert "left out" not in capsys.readouterr().err


def test_recalls_judged_whole_when_only_a_log_holding_no_recall_lost_records(
        service: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """Records deleted from the decisions (where recall notices are) keep `audit recalls` from judging every recall:
    exit 5, saying so. Deleted from the auditors' queries (or the denials), which hold no recall, they do not."""
    pending = [{"kind": "DECISION", "decision": "RECALL", "alert_id": "SNM:B", "partner": "COL", "version": 2,
                "notice_version": 2, "ack_hours": 72, "action": "RECLASSIFY", "at": _ago(1)}]
    service["rows"], service["left_out"] = pending, 0
    for topic, status in (("p.queries", 0), ("p.decisions", EXIT_UNCHECKED)):
        service["deleted"] = [StartFinding(topic, 0, 5, "the records before it were deleted, not expired")]
        assert _puente("audit", "recalls") == status
        assert ("not every recall could be judged" in capsys.readouterr().err) is bool(status)


def test_recalls_shows_a_failed_notice_a_later_delivery_superseded_and_exits_0(
        service: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """A pull-back notice to USA that could not be sent, then v3 sent to USA in place of the v1 it recalled: the row
    says so with v3's time, the summary counts it apart, and it makes the command fail no more."""
    service["left_out"], delivered = 0, _ago(80)
    service["rows"] = [
        {"kind": "DECISION", "decision": "RECALL", "alert_id": "SNM:A", "partner": "USA", "version": 2,
         "notice_version": 2, "recalls": 1, "ack_hours": 24, "sent": False, "at": _ago(90)},
        {"kind": "DECISION", "decision": "DELIVER", "alert_id": "SNM:A", "partner": "USA", "version": 3,
         "supersedes": 1, "at": delivered}]
    assert _puente("audit", "recalls") == 0
    out, err = capsys.readouterr()
    _, line = out.splitlines()
    assert line.startswith("failed/superseded SNM:A")
    assert line.endswith(f"no: the notice was never sent; version 3 replaced what it recalled at {delivered[:19]}")
    assert err.startswith("1 recall(s): 0 acknowledged, 0 acknowledged late, 0 outstanding, 0 overdue, 0 never sent, "
                          "1 never sent but superseded by a later delivery")
    assert _puente("audit", "recalls", "--json") == 0
    row = json.loads(capsys.readouterr().out)
    assert (row["state"], row["superseded_at"][:19], row["superseded_by"]) == ("failed/superseded", delivered[:19], 3)


def test_recalls_says_how_many_receipts_naming_holders_were_not_kept(
        service: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """COL's receipts of a recalled alert naming more stores than are kept: every store kept answered, yet the
    recall is outstanding, its line and its JSON say how many receipts were not kept."""
    service["left_out"] = 0
    stores = [f"{i:032x}" for i in range(MAX_HOLDERS + 2)]
    service["rows"] = [
        {"kind": "DECISION", "decision": "RECALL", "alert_id": "SNM:B", "partner": "COL", "version": 2,
         "notice_version": 2, "ack_hours": 72, "action": "RECLASSIFY", "at": _ago(2)},
        *({"kind": "RECEIPT", "status": "RECEIVED", "alert_id": "SNM:B", "partner": "COL", "version": 1,
           "chain": "COL", "store": s, "at": _ago(3)} for s in stores),
        *({"kind": "RECEIPT", "status": "RECALLED", "alert_id": "SNM:B", "partner": "COL", "version": 2,
           "chain": "COL", "store": s, "at": _ago(1)} for s in stores)]
    assert _puente("audit", "recalls") == 0
    _, line = capsys.readouterr().out.splitlines()
    assert line.startswith("outstanding") and line.endswith(
        "not yet; 4 receipt(s) of COL naming more holders or answers than are kept: not acknowledged")
    _puente("audit", "recalls", "--json")
    row = json.loads(capsys.readouterr().out)
    assert (row["state"], row["waiting_on"], row["receipts_not_kept"]) == ("outstanding", [], 4)


def test_recalls_does_not_judge_a_recall_of_a_view_delivered_before_the_partners_receipts_were_cut(
        service: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """COL's notice answered on time by its one store, no receipt held showing who held the alert: with COL's
    receipts whole it is acknowledged (exit 0); with its receipts partition cut after the view was delivered it is
    still acknowledged (the view's receipts are held); cut after, the delivery's receipts may be gone: "not judged",
    the answer's time shown, its line and JSON naming whose receipts before when are gone, one line on stderr, exit 5
    (not 1, past its deadline too: a partner that answered is not listed overdue)."""
    service["left_out"] = 0
    delivery = {"kind": "DECISION", "decision": "DELIVER", "alert_id": "SNM:B", "partner": "COL", "version": 1,
                "at": _ago(30)}
    notice = {"kind": "DECISION", "decision": "RECALL", "alert_id": "SNM:B", "partner": "COL", "version": 2,
              "notice_version": 2, "ack_hours": 72, "action": "RECLASSIFY", "at": _ago(10)}
    answer = {"kind": "RECEIPT", "status": "RECALLED", "alert_id": "SNM:B", "partner": "COL", "version": 2,
              "chain": "COL/a", "store": "a" * 32, "at": _ago(9)}
    answered = str(answer["at"])[:19]
    service["rows"] = [delivery, notice, answer]
    assert _puente("audit", "recalls") == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("acknowledged")
    before = ReceiptsCut("COL", "p.receipts.COL", 0, 7, datetime.now(UTC) - timedelta(hours=40))
    service["receipts_cut"] = [before]
    assert _puente("audit", "recalls") == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("acknowledged")
    cut = ReceiptsCut("COL", "p.receipts.COL", 0, 7, datetime.now(UTC) - timedelta(hours=20))
    service["receipts_cut"] = [cut]
    assert _puente("audit", "recalls") == EXIT_UNCHECKED
    out, err = capsys.readouterr()
    _, line = out.splitlines()
    assert line.startswith("not judged") and line.endswith(f"not judged: answered {answered}; {cut.describe()}")
    assert f"holders not known: COL's receipts before {iso_utc(cut.first_at)} are no longer held (p.receipts.COL[0] " \
        "starts at offset 7)" in line
    assert "1 not judged" in err
    assert err.splitlines()[-1] == ("not every recall could be judged: 1 recall(s) of a view delivered before its "
                                    "partner's receipts were cut may have holders no receipt held names, and are not "
                                    "taken as acknowledged (see each row)")
    assert _puente("audit", "recalls", "--json") == EXIT_UNCHECKED
    row = json.loads(capsys.readouterr().out)
    assert (row["state"], row["acknowledged_at"], row["answered_at"][:19], row["receipts_not_held"]) == (
        "not judged", None, answered, cut.describe())
    service["rows"] = [{**delivery, "at": _ago(130)}, {**notice, "at": _ago(100)}, {**answer, "at": _ago(99)}]
    service["receipts_cut"] = [replace(cut, first_at=datetime.now(UTC) - timedelta(hours=90))]
    assert _puente("audit", "recalls") == EXIT_UNCHECKED  # past its deadline, answered: not overdue
    assert capsys.readouterr().out.splitlines()[1].startswith("not judged")


def test_recalls_lists_a_holder_that_did_not_answer_as_overdue_whatever_the_cut(
        service: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """A view delivered before COL's receipts cut, another after it held by store B (its receipt held), B silent
    past the deadline: overdue, exit 1, the row waiting on B and naming the cut (more holders may wait)."""
    service["left_out"] = 0
    store = "b" * 32
    rows = [{"kind": "DECISION", "decision": "DELIVER", "alert_id": "SNM:B", "partner": "COL", "version": 1,
             "at": _ago(200)},
            {"kind": "DECISION", "decision": "DELIVER", "alert_id": "SNM:B", "partner": "COL", "version": 2,
             "at": _ago(150)},
            {"kind": "DECISION", "decision": "RECALL", "alert_id": "SNM:B", "partner": "COL", "version": 3,
             "notice_version": 3, "ack_hours": 72, "action": "RECLASSIFY", "at": _ago(100)},
            {"kind": "RECEIPT", "status": "RECEIVED", "alert_id": "SNM:B", "partner": "COL", "version": 2,
             "chain": "COL/b", "store": store, "at": _ago(149)}]
    service["rows"] = rows
    cut = ReceiptsCut("COL", "p.receipts.COL", 0, 7, datetime.now(UTC) - timedelta(hours=160))
    service["receipts_cut"] = [cut]
    assert _puente("audit", "recalls") == 1
    line = capsys.readouterr().out.splitlines()[1]
    assert line.startswith("overdue") and "waiting on" in line and line.endswith(cut.describe())


def test_a_back_dated_receipt_is_listed_when_kafka_appended_it(
        service: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """A receipt its partner dated before the delivery, which Kafka appended (with its checkpoint) later, is listed
    after what came before then, at Kafka's time, its partner's time in `why`; `--json` keeps that order and each
    row whole. A receipt dated after Kafka's time stays at its own."""
    service["rows"] = [
        {"kind": "RECEIPT", "at": "2026-11-03T09:00:00Z", "appended_at": "2026-11-03T11:00:00Z", "alert_id": "A:1",
         "partner": "COL", "status": "RECEIVED", "feed": "p.feed.COL:0:0"},
        {"kind": "DECISION", "at": "2026-11-03T10:00:00Z", "alert_id": "A:1", "version": 1, "partner": "COL",
         "decision": "DELIVER", "agreement": "PTY-COL-2026"},
        {"kind": "RECEIPT", "at": "2026-11-03T10:30:00Z", "appended_at": "2026-11-03T10:20:00Z", "alert_id": "A:2",
         "partner": "COL", "status": "RECEIVED", "feed": "p.feed.COL:0:1"},
    ]
    assert _puente("audit", "log") == 0
    _, *lines = capsys.readouterr().out.splitlines()
    assert [(line.split()[0], line.split()[2]) for line in lines] == [
        ("2026-11-03T10:00:00Z", "A:1"), ("2026-11-03T10:30:00Z", "A:2"), ("2026-11-03T11:00:00Z", "A:1")]
    assert lines[2].endswith("dated 2026-11-03T09:00:00Z by COL; p.feed.COL:0:0")
    assert lines[1].endswith(" p.feed.COL:0:1")
    assert _puente("audit", "log", "--json") == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert docs == [service["rows"][1], service["rows"][2], service["rows"][0]]


def test_collect_denials_and_the_demo_label_their_blocks_with_the_key_that_signs_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a rotation whose retired generation's public half came back newer by date, `audit collect-denials` and
    the demo's collector hand the collector one key: the id each block names is the key whose signature it carries
    (the broker's workers' own choice), so the blocks verify, never named after the retired generation."""
    keys = rotated_broker_keys(tmp_path / "k")
    verify = auditor.signature_checks(keys.path, None, signer=True)
    given: list[tuple[str, bool]] = []
    groups: list[set[str]] = []

    async def collect_denials(conn: Any, names: Any, logs: Any, principals: Any, signer_id: str, sign: Any,
                              *rest: Any, **more: Any) -> int:
        given.append((signer_id, verify(signer_id, b"block", sign(b"block"))))
        groups.append({acl.name for acl in more["planned"] if acl.resource == "GROUP"})
        return 0

    cfg = SimpleNamespace(keys=tmp_path / "k", topic_prefix="p", policy_dir=None, agencies=("SNM",),
                          audit_retention_days=3650, broker_group="ministry-broker")
    log = tmp_path / "authorizer.log"
    log.write_text("")
    monkeypatch.setattr(audit, "settings", lambda args: cfg)
    monkeypatch.setattr(audit, "kafka", lambda c, name: NO_KAFKA)
    monkeypatch.setattr(audit, "require_party", lambda *a: None)
    monkeypatch.setattr(audit, "collect_denials", collect_denials)
    monkeypatch.setattr(demo, "collect_denials", collect_denials)
    assert _puente("audit", "collect-denials", "--log", str(log)) == 0
    asyncio.run(demo._collect(cfg, NO_KAFKA, load_policy_set(None), datetime.now(UTC)))  # type: ignore[arg-type]
    assert given == [("broker-sign-2026b", True), ("broker-sign-2026b", True)]
    # Both hand the collector the deployment's ACL plan: a stranger refused the broker's group, named by
    # PUENTE_GROUP_ID and not by the topic prefix, is a denial it reports (``denials.concerns``).
    assert len(groups) == 2 and all("ministry-broker" in named for named in groups)

