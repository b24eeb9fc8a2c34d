"""The audit index checks chain ends as `audit verify` does: each decision chain against the broker group's
committed ingress offsets, each partner's receipts against its subscriber group's committed feed offsets, from
the offsets the last catch-up read before its reads. Records dropped from a chain's end show on the console."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import broker.auditor as auditor
from broker.audit import ChainWriter, PartitionWalk, ingress_of
from broker.audit.verify import FeedEnds, GroupEnds, ReceiptReach, receipt_ends
from broker.audit_index import AuditIndex, Scope
from broker.crypto import checker, sign_checkpoint
from broker.kafka import TopicPartition
from puente.wire import iso_utc

DECISIONS, COL_RCPT, USA_RCPT = "t.audit.decisions", "t.receipts.COL", "t.receipts.USA"
HOLDS = {DECISIONS: "decisions", COL_RCPT: "receipts", USA_RCPT: "receipts"}
OWNERS = {COL_RCPT: "COL", USA_RCPT: "USA"}
READERS = {"t.feed.COL": "COL", "t.feed.USA": "USA"}
KEYS = {kid: Ed25519PrivateKey.generate() for kid in ("broker-sign-2026a", "COL-rcpt-2026a", "USA-rcpt-2026a")}
VERIFY = checker({kid: key.public_key() for kid, key in KEYS.items()})
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SNM0, SNM1 = ("t.ingress.SNM", 0), ("t.ingress.SNM", 1)
COL0, USA0 = ("t.feed.COL", 0), ("t.feed.USA", 0)


def _sign(kid: str) -> Any:
    return lambda payload: sign_checkpoint(KEYS[kid], payload)


def _decisions(*blocks: range) -> list[bytes]:
    """One block per range of ingress offsets of t.ingress.SNM[0], each offset an alert decided for COL."""
    writer = ChainWriter(DECISIONS, 0)
    return [writer.block([{"kind": "ALERT", "alert_id": f"SNM:{i}", "ingress": f"t.ingress.SNM:0:{i}",
                           "at": iso_utc(T0), "decisions": [{"partner": "COL", "decision": "DELIVER",
                                                             "feed": "t.feed.COL", "rules": ["r"]}]}
                          for i in offsets], "broker-sign-2026a", _sign("broker-sign-2026a"), iso_utc(T0))
            for offsets in blocks]


def _receipts(partner: str, places: list[str], *, checkpoint: bool = True) -> list[bytes]:
    writer = ChainWriter(f"t.receipts.{partner}", 0, checkpoint_every=1 << 62, chain=partner)
    out = [writer.append("RECEIPT", {"partner": partner, "alert_id": f"SNM:{i}", "version": 1, "status": "RECEIVED",
                                     "feed": place, "at": iso_utc(T0)}) for i, place in enumerate(places)]
    if checkpoint:
        out.append(writer.checkpoint(f"{partner}-rcpt-2026a", _sign(f"{partner}-rcpt-2026a"), iso_utc(T0)))
    return out


def _ends(ingress: Mapping[tuple[str, int], int] | None = None, feeds: Mapping[tuple[str, int], int] | None = None,
          readers: Mapping[str, str] = READERS, refused: tuple[str, ...] = ()) -> GroupEnds:
    return GroupEnds(dict(ingress or {}), FeedEnds(dict(feeds or {}), frozenset(READERS), "t.feed.", dict(readers)),
                     refused)


def _catch_up(index: AuditIndex, topics: Mapping[str, Iterable[bytes]], ends: GroupEnds | None,
              upto: Mapping[str, int] | None = None, unsettled: Iterable[tuple[str, int]] = (),
              trimmed: Iterable[str] = ()) -> None:
    """What ``broker.auditor.index_topics`` does, without Kafka: each topic's records (up to ``upto[topic]``) from
    where the index stands, how far receipts reach counted, then the offsets kept (None: not read)."""
    index.register({t: HOLDS[t] for t in topics}, OWNERS)  # type: ignore[misc]
    for topic, values in topics.items():
        ingest = index.partition(topic, 0, HOLDS[topic], VERIFY, owner=OWNERS.get(topic),  # type: ignore[arg-type]
                                 batch_rows=2, feeds="t.feed.")
        for offset, value in enumerate(values):
            if ingest.start <= offset < (upto or {}).get(topic, 1 << 30):
                ingest.add(offset, value)
        ingest.commit()
    if ends is not None:
        index.record_ends(ends, set(unsettled), set(trimmed))
    index.finish(T0)


NATIONAL = Scope()


def _states(index: AuditIndex, scope: Scope = NATIONAL) -> dict[str, str]:
    return {e["source"]: e["state"] for e in index.integrity(scope)["ends"]}


def test_a_decision_chain_reaching_the_committed_offset_is_checked_and_one_short_of_it_is_a_problem(
        tmp_path: Path) -> None:
    """Blocks deciding ingress offsets 0-4: with the broker group at 5 the end reaches it; at 8 the decisions of
    5-7 are missing from the chain's end, one problem on the integrity page, in `problems()` and in the ends."""
    with AuditIndex(tmp_path / "index.sqlite") as index:
        _catch_up(index, {DECISIONS: _decisions(range(3), range(3, 5))}, _ends({SNM0: 5}))
        ends = index.end_reports()
        assert [(r.end.source, r.end.last, r.end.committed, r.end.checked) for r in ends.reports if r.end] == [
            ("t.ingress.SNM:0", 4, 5, True)]
        assert ends.problems == 0 and index.problems() == 0 and ends.why == []
        assert _states(index) == {"t.ingress.SNM:0": "reaches"}

        _catch_up(index, {DECISIONS: _decisions(range(3), range(3, 5))}, _ends({SNM0: 8}))
        found = index.integrity(Scope())
        assert _states(index) == {"t.ingress.SNM:0": "short"}
        assert index.problems() == 1 and found["end_problems"] == 1 and found["findings_total"] == 1
        assert "offsets 5 to 7 are missing from the chain's end" in found["findings"][0]["problem"]


def test_an_end_short_while_its_partition_kept_a_transaction_open_is_not_checked_never_sound(tmp_path: Path) -> None:
    with AuditIndex(tmp_path / "index.sqlite") as index:
        _catch_up(index, {DECISIONS: _decisions(range(5))}, _ends({SNM0: 8}), unsettled=[(DECISIONS, 0)])
        ends = index.end_reports()
        assert ends.problems == 0 and ends.unchecked == 1
        assert _states(index) == {"t.ingress.SNM:0": "not checked"}


def test_an_ingress_partition_committed_past_that_no_chain_names_is_a_problem(tmp_path: Path) -> None:
    """Its whole chain is gone (emptied, or all unsound): no walk of what remains can see that."""
    with AuditIndex(tmp_path / "index.sqlite") as index:
        _catch_up(index, {DECISIONS: _decisions(range(5))}, _ends({SNM0: 5, SNM1: 3}))
        ends = index.end_reports()
        assert [f.problem for r in ends.reports for f in r.findings] == [
            "the broker group has committed offset 3 here, but no sound decision chain records any of this "
            "partition's records: its chain is missing or unsound"]


def test_without_the_groups_offsets_no_end_is_checked_and_the_page_says_why(tmp_path: Path) -> None:
    with AuditIndex(tmp_path / "index.sqlite") as index:
        _catch_up(index, {DECISIONS: _decisions(range(5))}, None)
        ends = index.end_reports()
        assert ends.reports == [] and ends.read_at is None
        assert "has not been caught up with the groups' committed offsets" in ends.why[0]
        _catch_up(index, {DECISIONS: _decisions(range(5))}, _ends({}, refused=("Kafka refused auditor access",)))
        ends = index.end_reports()
        assert ends.why == ["Kafka refused auditor access"] and ends.unchecked == 1 and ends.problems == 0


def test_receipts_vouched_in_a_later_catch_up_reach_as_far_as_verify_says(tmp_path: Path) -> None:
    """Receipts read in one catch-up and vouched by a checkpoint read in the next count then, as one walk
    of the whole topic counts them (``ReceiptReach`` over the same records); short of the committed offset,
    the receipts missing from the end are one problem."""
    records = _receipts("COL", ["t.feed.COL:0:0", "t.feed.COL:0:1", "t.feed.COL:0:2"])
    topics = {DECISIONS: _decisions(range(3)), COL_RCPT: records}  # the deliveries the receipts acknowledge
    decided = {"t.ingress.SNM:0": "reaches"}
    with AuditIndex(tmp_path / "index.sqlite") as index:
        _catch_up(index, topics, _ends({SNM0: 3}, feeds={COL0: 3}), upto={COL_RCPT: 3})
        # nothing vouched yet: the receipts are unvouched
        assert _states(index) == {**decided, "t.feed.COL:0": "short"}
        _catch_up(index, topics, _ends({SNM0: 3}, feeds={COL0: 3}))
        assert _states(index) == {**decided, "t.feed.COL:0": "reaches"} and index.problems() == 0

        walk, reach = PartitionWalk(COL_RCPT, 0, VERIFY, "receipts", "COL"), ReceiptReach(READERS, "t.feed.")
        reach.begin("COL")
        for offset, value in enumerate(records):
            doc, found = walk.feed(offset, value)
            reach.take(doc, not found, walk.cut)
        whole = receipt_ends(reach, {COL0: 3}, frozenset(READERS), lambda t: f"{t}.subscriber", set(), set())
        assert [r.end for r in index.end_reports().reports if r.topic != DECISIONS] == [r.end for r in whole]

        _catch_up(index, topics, _ends({SNM0: 3}, feeds={COL0: 6}))
        found = index.integrity(Scope())
        assert [e["state"] for e in found["ends"]] == ["reaches", "short"] and found["end_problems"] == 1
        assert any("receipts of the feed records from offset 3 to 5 are missing" in f["problem"]
                   for f in found["findings"])


def test_another_partners_receipts_never_stand_in_and_naming_its_feed_is_a_problem(tmp_path: Path) -> None:
    """USA's sound receipts naming COL's feed do not reach COL's committed offset for it, and are a problem at USA's
    receipts partition (one per feed partition they name: `audit verify` names each receipt); matching no delivery
    to USA, each of those receipts is a finding as well. USA's auditor is not told whose feed it was."""
    topics = {DECISIONS: _decisions(range(1)), COL_RCPT: _receipts("COL", ["t.feed.COL:0:0"]),
              USA_RCPT: _receipts("USA", ["t.feed.COL:0:1", "t.feed.COL:0:2"])}
    with AuditIndex(tmp_path / "index.sqlite") as index:
        _catch_up(index, topics, _ends({SNM0: 1}, feeds={COL0: 3}))
        found = index.integrity(Scope())
        assert _states(index) == {"t.ingress.SNM:0": "reaches", "t.feed.COL:0": "short"}
        placed = [f for f in found["findings"] if "which the policy gives COL, not USA" in f["problem"]]
        never = [f for f in found["findings"] if "never delivered to USA" in f["problem"]]
        assert [f["topic"] for f in placed] == [USA_RCPT] and [f["offset"] for f in never] == [0, 1]
        assert index.problems() == 4  # and COL's end short
        told = {**placed[0], "problem": "receipts name a feed the policy does not give USA: USA signed receipts for "
                                        "records it cannot have read"}
        assert index.integrity(Scope("USA"))["findings"] == sorted([told, *never], key=lambda f: f["offset"])
        assert index.integrity(Scope("COL"))["end_problems"]


def _verify_says(topics: Mapping[str, list[bytes]], committed: Mapping[tuple[str, int], int],
                 readers: Mapping[str, str]) -> list[Any]:
    """The receipts' ends one walk of every record gives (``audit verify``'s pure core), under ``readers``."""
    reach = ReceiptReach(dict(readers), "t.feed.")
    for topic, records in topics.items():
        walk = PartitionWalk(topic, 0, VERIFY, "receipts", OWNERS[topic])
        reach.begin(OWNERS[topic])
        for offset, value in enumerate(records):
            doc, found = walk.feed(offset, value)
            reach.take(doc, not found, walk.cut)
    return [r.end for r in receipt_ends(reach, dict(committed), frozenset(READERS), lambda t: f"{t}.subscriber",
                                        set(), set())]


def test_a_policy_that_gives_a_feed_to_another_partner_applies_to_receipts_already_indexed(tmp_path: Path) -> None:
    """Whose feed each is, is read with the policy at hand, as `audit verify` reads it: receipts indexed under
    one policy are judged under the next one without a rebuild, and the ends match verify's under each."""
    topics = {COL_RCPT: _receipts("COL", ["t.feed.COL:0:0"]), USA_RCPT: _receipts("USA", ["t.feed.USA:0:0"])}
    committed = {COL0: 1, USA0: 1}
    moved = {"t.feed.COL": "USA", "t.feed.USA": "USA"}
    with AuditIndex(tmp_path / "index.sqlite") as index:
        _catch_up(index, topics, _ends(feeds=committed))
        assert _states(index) == {"t.feed.COL:0": "reaches", "t.feed.USA:0": "reaches"}
        assert [r.end for r in index.end_reports().reports] == _verify_says(topics, committed, READERS)
        _catch_up(index, topics, _ends(feeds=committed, readers=moved))
        ends = index.end_reports()
        assert [r.end for r in ends.reports if r.end is not None] == _verify_says(topics, committed, moved)
        assert _states(index)["t.feed.COL:0"] == "short"  # USA's receipts do not reach it, COL's do not count
        assert any("which the policy gives USA, not COL" in f.problem for r in ends.reports for f in r.findings)
        _catch_up(index, topics, _ends(feeds=committed, readers={"t.feed.USA": "USA"}))  # COL left; its feed kept
        assert _states(index)["t.feed.COL:0"] == "reaches"  # the one partner whose receipts name it


def test_a_partners_auditor_reads_the_ends_of_the_feeds_the_policy_gives_its_partner_alone(tmp_path: Path) -> None:
    """USA's own subscriber signs receipts naming the feed of CRI, a partner that left the policy (its feed kept). A
    national auditor reads that feed's end by the one partner whose receipts name it; USA's auditor never does (a
    claim counts for nothing: the offsets say how many alerts CRI got, and when), only that USA's receipts named a
    feed the policy does not give USA, with neither name nor offset; its own feed's end it reads."""
    topics = {DECISIONS: _decisions(range(3)), USA_RCPT: _receipts("USA", ["t.feed.CRI:0:0", "t.feed.USA:0:0"])}
    committed = {("t.feed.CRI", 0): 4242, USA0: 1}
    ends = GroupEnds({SNM0: 3}, FeedEnds(committed, frozenset([*READERS, "t.feed.CRI"]), "t.feed.", dict(READERS)))
    with AuditIndex(tmp_path / "index.sqlite") as index:
        _catch_up(index, topics, ends)
        assert _states(index) == {"t.ingress.SNM:0": "reaches", "t.feed.CRI:0": "short", "t.feed.USA:0": "reaches"}
        usa = Scope("USA")
        found = index.integrity(usa)
        assert _states(index, usa) == {"t.feed.USA:0": "reaches"}
        assert "CRI" not in repr(found) and "4242" not in repr(found)
        assert [f["problem"] for f in found["findings"] if "does not give" in f["problem"]] == [
            "receipts name a feed the policy does not give USA: USA signed receipts for records it cannot have read"]
        assert index.end_reports(usa).problems == 1 and _states(index, Scope("CRI")) == {}


def test_a_hostile_feed_offset_beyond_kafkas_is_no_place_and_never_stops_the_index(tmp_path: Path) -> None:
    """A receipt naming an offset past 64 bits (its own partner's key signed it) counts for nothing; the catch-up
    goes on, and the feed's end is judged by the receipts that name real places."""
    records = _receipts("COL", ["t.feed.COL:0:0", "t.feed.COL:0:99999999999999999999",
                                "t.feed.COL:0:9223372036854775808"])
    with AuditIndex(tmp_path / "index.sqlite") as index:
        _catch_up(index, {COL_RCPT: records}, _ends(feeds={COL0: 1}))
        assert _states(index) == {"t.feed.COL:0": "reaches"}


def test_a_partner_whose_receipts_topic_never_held_a_record_is_not_checked(tmp_path: Path) -> None:
    """A reader of its own writes no receipts: its feed's end is not checked, unless records were deleted."""
    with AuditIndex(tmp_path / "index.sqlite") as index:
        _catch_up(index, {COL_RCPT: []}, _ends(feeds={COL0: 4}))
        assert _states(index) == {"t.feed.COL:0": "not checked"} and index.problems() == 0
        _catch_up(index, {COL_RCPT: []}, _ends(feeds={COL0: 4}), trimmed=[COL_RCPT])
        assert _states(index) == {"t.feed.COL:0": "short"} and index.problems() == 1


def test_a_partners_auditor_counts_the_decision_chains_end_problems_and_reads_only_its_own_feeds(
        tmp_path: Path) -> None:
    topics = {DECISIONS: _decisions(range(5)), COL_RCPT: _receipts("COL", ["t.feed.COL:0:0"]),
              USA_RCPT: _receipts("USA", ["t.feed.USA:0:0"])}
    with AuditIndex(tmp_path / "index.sqlite") as index:
        _catch_up(index, topics, _ends({SNM0: 9}, {COL0: 1, USA0: 4}))
        assert index.problems() == 3  # the two ends, and USA's receipt: no delivery to USA was decided
        usa = Scope("USA")
        found = index.integrity(usa)
        assert _states(index, usa) == {"t.feed.USA:0": "short"}
        assert found["end_problems"] == 2 and index.problems(usa) == 3
        assert all("t.ingress" not in f["problem"] and f["topic"] != DECISIONS for f in found["findings"])
        assert _states(index, Scope("COL")) == {"t.feed.COL:0": "reaches"}


def test_a_partners_auditor_is_never_told_every_end_was_checked_when_a_decision_end_was_not(tmp_path: Path) -> None:
    """A decision chain's end not checked (an open transaction, offsets refused) counts for a scoped auditor too,
    and Kafka's refusal, which names groups and feeds, reaches it only as a line saying something was kept."""
    topics = {DECISIONS: _decisions(range(5)), USA_RCPT: _receipts("USA", ["t.feed.USA:0:0"])}
    with AuditIndex(tmp_path / "index.sqlite") as index:
        _catch_up(index, topics, _ends({SNM0: 9}, {USA0: 1}), unsettled=[(DECISIONS, 0)])
        usa = index.end_reports(Scope("USA"))
        assert usa.problems == 0 and usa.unchecked == 1 and not usa.all_checked
        assert index.integrity(Scope("USA"))["ends_all_checked"] is False
        _catch_up(index, topics, _ends({SNM0: 5}, {USA0: 1}, refused=("refused on group t.feed.COL.subscriber",)))
        usa = index.end_reports(Scope("USA"))
        assert not usa.all_checked and all("COL" not in why for why in usa.why) and usa.why
        assert index.end_reports().why == ["refused on group t.feed.COL.subscriber"]
        _catch_up(index, topics, _ends({SNM0: 5}, {USA0: 1}))
        assert index.end_reports(Scope("USA")).all_checked and index.end_reports().all_checked


def test_an_ingress_place_beyond_kafkas_numbers_is_no_place() -> None:
    """Kafka's partitions are int32 and its offsets int64: anything longer names no record (and never raises)."""
    assert ingress_of("t.ingress.SNM:0:9223372036854775807") == ("t.ingress.SNM", 0, 2**63 - 1)
    for hostile in ("t.ingress.SNM:0:9223372036854775808", "t.ingress.SNM:0:" + "9" * 30,
                    "t.ingress.SNM:" + "1" * 5000 + ":1", "t.ingress.SNM:2147483648:1"):
        assert ingress_of(hostile) is None


def test_records_kafka_lost_after_they_were_indexed_are_a_problem(tmp_path: Path) -> None:
    """A partition Kafka now ends before where the index stands (truncated, deleted, made again) is a finding while
    it does, and a lost receipts partition's reach no longer counts: the ends it held vouch for nothing."""
    topics = {DECISIONS: _decisions(range(5)), COL_RCPT: _receipts("COL", ["t.feed.COL:0:0"])}
    with AuditIndex(tmp_path / "index.sqlite") as index:
        _catch_up(index, topics, _ends({SNM0: 5}, {COL0: 1}))
        assert index.problems() == 0 and index.positions() == {(DECISIONS, 0): 1, (COL_RCPT, 0): 2}
        index.record_lost({(DECISIONS, 0): (1, 0), (COL_RCPT, 0): (2, 0)}, T0)
        ends = index.end_reports()
        lost = [f.problem for r in ends.reports for f in r.findings if "Kafka ended it" in f.problem]
        assert len(lost) == 2 and all("--rebuild" in text for text in lost)
        assert _states(index)["t.feed.COL:0"] == "short"  # COL's receipts are gone with their partition
        usa = index.end_reports(Scope("USA"))
        assert usa.counted == 1 and not any("Kafka ended it" in f.problem for r in usa.reports for f in r.findings)
        col = index.end_reports(Scope("COL"))
        assert any("Kafka ended it" in f.problem for r in col.reports for f in r.findings)
        index.record_lost({}, T0)  # Kafka ends there again (records written again past it break the chain)
        assert index.problems() == 0


class _Ends:
    """A consumer whose ``end_offsets`` answers from a list of answers per partition, the last one for good."""

    def __init__(self, answers: dict[tuple[str, int], list[int]]) -> None:
        self.answers = answers

    async def end_offsets(self, tps: list[Any]) -> dict[Any, int]:
        return {tp: (self.answers[(tp.topic, tp.partition)].pop(0) if len(self.answers[(tp.topic, tp.partition)]) > 1
                     else self.answers[(tp.topic, tp.partition)][0]) for tp in tps}


def test_an_end_below_the_index_counts_as_lost_only_once_it_stays_there(monkeypatch: Any) -> None:
    """A new leader's high watermark can trail for a moment after a node fails: an end that comes back is no loss;
    one that stays below the index's position, or a partition gone from Kafka, is."""
    monkeypatch.setattr(auditor, "LOST_CONFIRM_S", 1.2)
    monkeypatch.setattr(auditor.asyncio, "sleep", _no_wait)
    positions = {(DECISIONS, 0): 10, (DECISIONS, 1): 10, (COL_RCPT, 0): 4, (USA_RCPT, 0): 7}
    last = {TopicPartition(DECISIONS, 0): 8, TopicPartition(DECISIONS, 1): 3, TopicPartition(COL_RCPT, 0): 9}
    consumer = _Ends({(DECISIONS, 0): [9, 10], (DECISIONS, 1): [3]})
    clock = iter(range(100))
    monkeypatch.setattr(auditor.time, "monotonic", lambda: float(next(clock)) * 0.5)
    lost = asyncio.run(auditor._lost(consumer, positions, last))
    assert lost == {(DECISIONS, 1): (10, 3), (USA_RCPT, 0): (7, 0)}


async def _no_wait(_: float) -> None:
    return None


def _batches(partner: str, batches: list[list[str]], open_batch: Sequence[str] = ()) -> list[bytes]:
    """``partner``'s chain: each batch's receipts (one per place) and its checkpoint; then ``open_batch``'s
    receipts, no checkpoint yet."""
    writer = ChainWriter(f"t.receipts.{partner}", 0, checkpoint_every=1 << 62, chain=partner)
    out = []
    for n, places in enumerate([*batches, open_batch]):
        out += [writer.append("RECEIPT", {"partner": partner, "alert_id": f"SNM:{n}-{i}", "version": 1,
                                          "status": "RECEIVED", "feed": place, "at": iso_utc(T0)})
                for i, place in enumerate(places)]
        if n < len(batches):
            out.append(writer.checkpoint(f"{partner}-rcpt-2026a", _sign(f"{partner}-rcpt-2026a"), iso_utc(T0)))
    return out


def _reach_of(records: list[bytes]) -> tuple[ReceiptReach, list[tuple[int, str]]]:
    walk, reach = PartitionWalk(COL_RCPT, 0, VERIFY, "receipts", "COL"), ReceiptReach(READERS, "t.feed.")
    reach.begin("COL")
    said = []
    for offset, value in enumerate(records):
        doc, found = walk.feed(offset, value)
        if (why := reach.take(doc, not found, walk.cut)) is not None:
            said.append((offset, why))
    return reach, said


def test_only_a_partners_own_checkpoints_spend_the_places_its_receipts_are_followed_into(monkeypatch: Any) -> None:
    """Anyone with COL's Kafka login can write receipts naming a new feed partition each (here 40, in a chain of
    their own, never vouched for): none of them spends ``MAX_PLACES`` (here 8; default 1,024), and COL's own
    receipts, vouched for by its checkpoint after the flood, still reach their ends."""
    monkeypatch.setitem(ReceiptReach.__init__.__kwdefaults__, "max_places", 8)
    junk = ChainWriter(COL_RCPT, 0, checkpoint_every=1 << 62, chain="COL/junk")
    flood = [junk.append("RECEIPT", {"partner": "COL", "alert_id": f"J:{i}", "version": 1, "status": "RECEIVED",
                                     "feed": f"t.feed.COL:{100 + i % 8}:{i}", "at": iso_utc(T0)}) for i in range(40)]
    reach, said = _reach_of([*flood, *_batches("COL", [["t.feed.COL:0:0", "t.feed.COL:1:0"]])])
    assert said == [(f, s) for f, s in said if "one more than the 8" in s]  # only the flood's own findings
    assert reach.sound == {COL0: 0, ("t.feed.COL", 1): 0} and set(reach.seen) <= {COL0, ("t.feed.COL", 1)}


def test_receipts_naming_a_new_feed_partition_each_are_followed_into_a_bounded_number_of_places(
        tmp_path: Path, monkeypatch: Any) -> None:
    """COL's own checkpoints vouching for receipts in 30 feed partitions: the first 8 (``MAX_PLACES`` here; default
    1,024) are followed, each checkpoint past them is a finding, and `audit verify` and the index over several
    catch-ups follow the same places and give the same ends; a chain naming more than 8 places before its checkpoint
    is told so at the receipt."""
    monkeypatch.setitem(ReceiptReach.__init__.__kwdefaults__, "max_places", 8)
    batches = [[f"t.feed.COL:{p}:0" for p in range(start, start + 3)] for start in range(0, 30, 3)]
    records = _batches("COL", batches, [f"t.feed.COL:{50 + p}:0" for p in range(9)])
    topics = {DECISIONS: _decisions(range(1)), COL_RCPT: records}
    reach, said = _reach_of(records)
    assert set(reach.sound) == {("t.feed.COL", p) for p in range(8)}
    over = [at for at, why in said if "past the 8 COL's receipts are followed into" in why]
    assert over == [11, 15, 19, 23, 27, 31, 35, 39] and "1 feed partition(s)" in said[0][1]
    assert [why for at, why in said if at >= 40] == [said[-1][1]] and "one more than the 8" in said[-1][1]
    whole = receipt_ends(reach, {COL0: 1}, frozenset(READERS), lambda t: f"{t}.subscriber", set(), set())

    with AuditIndex(tmp_path / "index.sqlite") as index:
        for upto in (5, 12, 21, 40, len(records)):  # catch-ups that each go a little further
            _catch_up(index, topics, _ends({SNM0: 1}, feeds={COL0: 1}), upto={COL_RCPT: upto})
            assert index._all("SELECT count(*) FROM receipt_reach")[0][0] <= 8
        placed = index._all("SELECT \"offset\" FROM findings WHERE problem LIKE '%are followed into%' OR "
                            "problem LIKE '%one more than the%' ORDER BY 1")
        assert [row[0] for row in placed] == [*over, 48]
        assert [r.end for r in index.end_reports().reports if r.topic != DECISIONS] == [r.end for r in whole]


def test_a_partners_auditor_counts_no_problem_of_another_partners_topic_or_a_national_one(tmp_path: Path) -> None:
    """A planned topic missing or a partition lost counts for a partner's auditor only at a decisions topic, and is
    read at its own receipts topic: another partner's receipts, the queries and the denials are nothing to it."""
    queries, denials = "t.audit.queries", "t.audit.denials"
    topics = {DECISIONS: _decisions(range(5)), COL_RCPT: _receipts("COL", ["t.feed.COL:0:0"]), USA_RCPT: []}
    with AuditIndex(tmp_path / "index.sqlite") as index:
        _catch_up(index, topics, _ends({SNM0: 5}, {COL0: 1}))
        index.register({queries: "queries", denials: "denials"})
        usa, col = Scope("USA"), Scope("COL")
        before = index.problems(usa), index.integrity(usa)["findings"]
        index.record_ends(_ends({SNM0: 5}, {COL0: 1}), set(), set(), [COL_RCPT, queries, denials])
        index.record_lost({(queries, 0): (1, 0), (denials, 0): (1, 0)}, T0)
        assert index.end_reports().problems == 5  # each is a national auditor's problem
        ends = index.end_reports(usa)
        assert (ends.counted, ends.problems) == (0, 0) and not ends.reports
        assert (index.problems(usa), index.integrity(usa)["findings"]) == before
        assert index.summary(usa)["problems"] == before[0]
        assert index.end_reports(col).counted == 0  # the queries and denials are no partner's
        index.record_lost({}, T0)
        index.record_ends(_ends({SNM0: 5}, {COL0: 1}), set(), set(), [DECISIONS, USA_RCPT])
        ends = index.end_reports(usa)
        assert ends.counted == 1 and [r.topic for r in ends.reports if r.findings] == [USA_RCPT]
        assert "it holds the receipts" in next(r for r in ends.reports if r.findings).findings[0].problem
        col_ends = index.end_reports(col)
        assert col_ends.counted == 1 and not any(r.topic == USA_RCPT for r in col_ends.reports)


def _flood_beside_col(chains: int, places: int) -> list[bytes]:
    """COL's chain: a batch vouched for, then two receipts waiting for its next checkpoint; then ``chains`` chains of
    receipts no one signs, in turn, each naming ``places`` feed partitions of its own; then COL's checkpoint."""
    col = ChainWriter(COL_RCPT, 0, checkpoint_every=1 << 62, chain="COL")
    flood = [ChainWriter(COL_RCPT, 0, checkpoint_every=1 << 62, chain=f"COL/f{c}") for c in range(chains)]

    def receipt(writer: ChainWriter, place: str) -> bytes:
        return writer.append("RECEIPT", {"partner": "COL", "alert_id": "SNM:0", "version": 1, "status": "RECEIVED",
                                         "feed": place, "at": iso_utc(T0)})

    def checkpoint() -> bytes:
        return col.checkpoint("COL-rcpt-2026a", _sign("COL-rcpt-2026a"), iso_utc(T0))

    out = [receipt(col, "t.feed.COL:0:0"), checkpoint(), receipt(col, "t.feed.COL:0:1"), receipt(col, "t.feed.COL:1:2")]
    out += [receipt(w, f"t.feed.COL:{100 + c * places + p}:{p}") for p in range(places) for c, w in enumerate(flood)]
    return [*out, checkpoint()]


def _waiting_places(reach: ReceiptReach) -> int:
    return sum(len(places) for places in reach.waiting.values())


def test_chains_waiting_for_a_checkpoint_name_a_bounded_number_of_places_in_all(monkeypatch: Any) -> None:
    """Ten chains no one signs naming four feed partitions each stay within each chain's bound, not within the
    partition's: past ``WAITING_PLACES`` (here 16; default 4,096) the receipts of the chain waiting longest that no
    checkpoint vouched for are given up, a finding at the receipt that went past (listed for the first
    ``LOTS_LISTED`` records, here 3, then one line more); COL's own chain, vouched for, keeps its receipts, which its
    checkpoint then counts."""
    monkeypatch.setitem(ReceiptReach.__init__.__kwdefaults__, "waiting_places", 16)
    monkeypatch.setattr("broker.audit.verify.LOTS_LISTED", 3, raising=False)
    records = _flood_beside_col(10, 4)
    walk, reach = PartitionWalk(COL_RCPT, 0, VERIFY, "receipts", "COL"), ReceiptReach(READERS, "t.feed.")
    reach.begin("COL")
    said, held = [], []
    for offset, value in enumerate(records):
        doc, found = walk.feed(offset, value)
        if (why := reach.take(doc, not found, walk.cut)) is not None:
            said.append((offset, why))
        held.append(_waiting_places(reach))
    assert max(held) == 16 and held[-2] == 16
    assert len(said) == 4  # LOTS_LISTED, then one line more
    assert "receipts of chain COL/f0 waiting for a checkpoint, naming 2 feed partition(s), are given up" in said[0][1]
    assert "may name 16 in all; they count for no end" in said[0][1] and "not listed" in said[3][1]
    assert reach.given_up > 4
    assert reach.sound == {COL0: 1, ("t.feed.COL", 1): 2} and _waiting_places(reach) == 14


def test_the_index_holds_and_saves_what_waits_as_verify_bounds_it(tmp_path: Path, monkeypatch: Any) -> None:
    """The audit index, over several catch-ups, gives up the same chains' waiting receipts at the same records as one
    walk of the whole partition (``ReceiptReach``, ``WAITING_PLACES`` here 16), saves no more than 16 places between
    catch-ups however many the flood names, and gives the same ends."""
    monkeypatch.setitem(ReceiptReach.__init__.__kwdefaults__, "waiting_places", 16)
    records = _flood_beside_col(10, 4)
    topics = {DECISIONS: _decisions(range(1)), COL_RCPT: records}
    reach, said = _reach_of(records)
    committed = {COL0: 2, ("t.feed.COL", 1): 3}
    whole = receipt_ends(reach, committed, frozenset(READERS), lambda t: f"{t}.subscriber", set(), set())
    assert [(r.end.checked, r.end.short) for r in whole if r.end is not None] == [(True, False)] * 2
    with AuditIndex(tmp_path / "index.sqlite") as index:
        for upto in (3, 11, 20, 27, 33, len(records)):  # catch-ups that each go a little further
            _catch_up(index, topics, _ends({SNM0: 1}, feeds=committed), upto={COL_RCPT: upto})
            stored = index._all("SELECT waiting FROM receipts_waiting")[0][0]
            assert stored.count('"t.feed.COL"') <= 16  # one per place saved
        placed = index._all("SELECT \"offset\", problem FROM findings WHERE problem LIKE '%are given up%' ORDER BY 1")
        assert [tuple(row) for row in placed] == said and len(said) > 5
        assert [r.end for r in index.end_reports().reports if r.topic != DECISIONS] == [r.end for r in whole]
