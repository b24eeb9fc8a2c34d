"""The alert lifecycle in the pure pipeline: every later version re-decided for every partner against
who holds which version; recall notices that carry nothing; states kept and read back strictly."""

from __future__ import annotations

import copy
import dataclasses
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.partitioner import murmur2 as kafkas_murmur2
from worker_fakes import counted

from broker import pipeline
from broker.lifecycle import MAX_VERSION, AlertState, LifecycleBook, LifecycleStateError
from broker.metrics import Metrics
from broker.pipeline import WITHHOLD, Originator, Outcome, Pipeline
from broker.topology import Slots, TopicNames, _murmur2, key_partition, murmur2
from policies import alert_reference, recall_notice
from puente import wire
from puente.dev.synthetic import generate
from puente.wire import Record
from schemas import alert_codec

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
SLOTS = Slots(("SNM",), 3, TopicNames("t"))
ORIGINATORS = {"SNM": Originator.of("SNM", "PAN", "PAN")}
LEVELS = ("PUBLICO", "RESTRINGIDO", "CONFIDENCIAL", "SECRETO")  # the shipped scale (vocabulary.yaml)
CODEC = alert_codec()


@dataclass(frozen=True)
class Decision:
    partner: str
    outcome: str
    agreement: str | None = "AGR"
    rules: Sequence[str] = ("AGR.r1",)
    reasons: Sequence[str] = ("because",)
    redactions: Sequence[tuple[str, str]] = ()
    policy_version: str = "v1"
    audit: dict[str, Any] = field(default_factory=dict)


REF_KEY = b"unit-test-alert-reference-key-32b"  # what the broker names alerts to partners under
ACK_HOURS = {"COL": 72, "USA": 24}  # the hours each partner has to acknowledge a recall notice


class Policy:
    """COL receives anything below SECRETO; USA only what the originator consented to for USA."""

    version = "v1"

    def partners(self) -> list[tuple[str, str]]:
        return [("COL", "t.feed.COL"), ("USA", "t.feed.USA")]

    def decide(self, alert: dict[str, Any], partner: str, now: datetime) -> Decision:
        m = alert["markings"]
        ok = m["classification"] != "SECRETO" if partner == "COL" else "USA" in m["originator_consent"]
        outcome = "DELIVER" if ok else WITHHOLD
        audit = {"partner": partner, "decision": outcome, "agreement": "AGR", "rules": ["AGR.r1"],
                 "reasons": ["because"], "redacted": [], "policy_version": "v1"}
        return Decision(partner, outcome, audit=audit)

    def decide_all(self, alert: dict[str, Any], partners: Sequence[str], now: datetime,
                   until: Any = None) -> list[Decision]:
        return [self.decide(alert, p, now) for p in partners]

    def view(self, alert: dict[str, Any], decision: Any) -> dict[str, Any]:
        return alert

    def notice(self, alert: dict[str, Any], version: int, reason: str | None) -> dict[str, Any]:
        return recall_notice(alert, version, reason)

    def reference(self, partner: str, alert_id: str) -> str:
        return alert_reference(REF_KEY, partner, alert_id)

    def recall_ack_hours(self, partner: str) -> int:
        return ACK_HOURS.get(partner, 72)


class Sealer:
    """Keeps each plaintext it seals, so the tests can read what a partner would."""

    def __init__(self) -> None:
        self.sealed: list[bytes] = []

    def seal(self, plaintext: bytes, **_: Any) -> bytes:
        self.sealed.append(plaintext)
        return b"sealed"


class Run:
    """One slot's pipeline with its committed states, fed version after version (the first agency of ``slots``,
    SNM's by default)."""

    def __init__(self, slots: Slots = SLOTS, originators: dict[str, Originator] = ORIGINATORS) -> None:
        self.sealers = {"COL": Sealer(), "USA": Sealer()}

        def origin(headers: Sequence[tuple[str, bytes]], value: bytes, key: str) -> tuple[str, int]:
            return key.split(":", 1)[0], NOW_MS

        self.pipeline = counted(Pipeline(Policy(), CODEC, self.sealers, origin, slots,  # type: ignore[arg-type]
                                         originators=originators, classifications=LEVELS))
        self.topic = slots.names.ingress(slots.agencies[0])
        self.book = LifecycleBook()
        self.seen: set[str] = set()
        self.offset = 0

    def send(self, alert: dict[str, Any]) -> Outcome:
        self.offset += 1
        key = alert["alert_id"].encode()
        rec = Record(self.topic, key_partition(key, 3), self.offset, key, CODEC.encode(alert), (), NOW_MS)
        out = self.pipeline.process(rec, self.seen, NOW, self.book.get)
        if out.seen_id:
            self.seen.add(out.seen_id)
        if out.state is not None:
            self.book.put(alert["alert_id"], out.state)
        return out


def _bare(state: AlertState | None, *, typed: bool = False) -> AlertState | None:
    """``state`` without the feed partition counts it records (``AlertState.counts``, which
    ``test_feed_partition`` tests), without the consent it records (``AlertState.consent``, which
    ``test_lifecycle_consent`` tests) and, unless ``typed``, without the alert type it records
    (``AlertState.alert_type``, which ``test_lifecycle_type`` and the pull-back tests check), for
    the tests of what the lifecycle decides: a test that cares for the type says so."""
    if state is None:
        return None
    return dataclasses.replace(state, counts={}, alert_type=state.alert_type if typed else None, consent=None)


def _first(classification: str = "RESTRINGIDO", consent: Sequence[str] = ()) -> dict[str, Any]:
    alert = copy.deepcopy(next(a for a in generate(40, seed=3, now=NOW) if a["agency"] == "SNM"))
    alert["markings"]["classification"] = classification
    alert["markings"]["originator_consent"] = list(consent)
    alert["markings"]["expires_at"] = None
    return alert


def _next(alert: dict[str, Any], action: str, **changes: Any) -> dict[str, Any]:
    later = copy.deepcopy(alert)
    later["version"] = alert["version"] + 1
    later["lifecycle"] = {"action": action, "reason": changes.pop("reason", None),
                          "partners": changes.pop("partners", [])}
    later["markings"].update(changes)
    return later


def _by_partner(out: Outcome) -> dict[str, dict[str, Any]]:
    return {d["partner"]: d for d in out.entry["decisions"]}


def _headers(out: Outcome) -> dict[str, str]:
    return {f.topic.rsplit(".", 1)[1]: dict(f.headers)[wire.DECISION].decode() for f in out.feeds}


def test_a_first_version_that_reaches_someone_is_remembered_and_one_that_reaches_no_one_is_not() -> None:
    run = Run()
    out = run.send(_first())
    assert _headers(out) == {"COL": "DELIVER"} and _bare(out.state) == AlertState(1, {"COL": 1}, originator="SNM")
    assert "version" not in out.entry  # a first publication's audit entry is as before versions
    secret = _first("SECRETO")
    secret["alert_id"] = "SNM:OTHER-1"
    assert run.send(secret).state is None


def test_an_update_supersedes_what_a_holder_has_and_is_audited_as_such() -> None:
    run = Run()
    first = _first()
    run.send(first)
    out = run.send(_next(first, "UPDATE"))
    assert _headers(out) == {"COL": "DELIVER"}
    col = _by_partner(out)["COL"]
    assert col["supersedes"] == 1 and out.entry["version"] == 2 and out.entry["action"] == "UPDATE"
    assert out.entry["previous_version"] == 1 and _bare(out.state) == AlertState(2, {"COL": 2}, originator="SNM")
    assert CODEC.decode(run.sealers["COL"].sealed[-1])["version"] == 2


def test_an_upgrade_pulls_the_alert_back_with_a_notice_that_carries_nothing() -> None:
    run = Run()
    first = _first()
    run.send(first)
    out = run.send(_next(first, "RECLASSIFY", classification="SECRETO"))
    assert _headers(out) == {"COL": "RECALL"}
    col = _by_partner(out)["COL"]
    assert col["decision"] == "RECALL" and col["recalls"] == 1 and col["feed"] == "t.feed.COL"
    assert _bare(out.state) == AlertState(2, {}, originator="SNM")
    notice = CODEC.decode(run.sealers["COL"].sealed[-1])
    assert notice["lifecycle"]["action"] == "RECALL" and notice["version"] == 2
    # The notice names the alert as the view COL holds does: by COL's reference, never the agency's own id.
    ref = alert_reference(REF_KEY, "COL", first["alert_id"])
    assert notice["alert_id"] == ref == CODEC.decode(run.sealers["COL"].sealed[0])["alert_id"]
    assert notice["markings"]["classification"] == "" and out.entry["refs"] == {"COL": ref}
    assert dict(out.feeds[0].headers)[wire.ALERT_ID] == out.feeds[0].key == ref.encode()
    assert notice["payload"]["person"]["surnames"] is None and notice["location"] is None


def test_a_consent_delivers_to_the_partner_it_names_for_the_first_time() -> None:
    run = Run()
    first = _first()
    run.send(first)
    out = run.send(_next(first, "CONSENT", partners=["USA"], originator_consent=["USA"]))
    assert _headers(out) == {"COL": "DELIVER", "USA": "DELIVER"}
    usa = _by_partner(out)["USA"]
    assert "supersedes" not in usa and _bare(out.state) == AlertState(2, {"COL": 2, "USA": 2}, originator="SNM")


def test_a_consent_is_on_the_record_for_each_partner_it_names_whatever_the_decision() -> None:
    """Consent is given per alert and per partner and is itself recorded: the entry lists whom it is for (an id the
    policy does not know only as such), and each named partner's decision says so in its reasons, also when the
    partner is withheld for another reason (here, a classification above its clearance)."""
    run = Run()
    first = _first("SECRETO")
    run.send(first)
    out = run.send(_next(first, "CONSENT", partners=["COL", "ZZZ-EVIL"], originator_consent=["COL", "ZZZ-EVIL"]))
    assert out.entry["action"] == "CONSENT" and out.entry["consent"] == ["COL", "(not a partner)"]
    col, usa = _by_partner(out)["COL"], _by_partner(out)["USA"]
    assert col["decision"] == "WITHHOLD"
    assert "the originator consented to release it to COL (version 2)" in col["reasons"]
    assert not any("consented" in reason for reason in usa["reasons"])


@pytest.mark.parametrize("where", ["partners", "originator_consent", "both"])
@pytest.mark.parametrize("names", [["COL", "ZZZ-evil\nname"], ["COL", "X Y"], ["COL", ""],
                                   [f"Z{i}" for i in range(65)]], ids=["control", "space", "empty", "too-many"])
def test_a_consent_naming_what_is_no_code_is_dead_lettered_whole(where: str, names: list[str]) -> None:
    """Partners and consents are codes of the vocabulary, at most 64 of them: anything else is refused whole
    (``invalid``), before each entry could become a reason in every partner's decision."""
    run = Run()
    first = _first("SECRETO")
    run.send(first)
    given = {"partners": ["COL"], "originator_consent": ["COL"]}
    for name in (["partners", "originator_consent"] if where == "both" else [where]):
        given[name] = names
    out = run.send(_next(first, "CONSENT", **given))
    assert out.dead_reason == "invalid" and out.feeds == []
    assert ("at most 64 are accepted" if len(names) > 64 else "must hold codes") in out.entry["detail"]
    assert "evil" not in out.entry["detail"] and "Z64" not in out.entry["detail"]


@pytest.mark.parametrize("name", ["caveats", "releasable_to", "originator_consent"])
@pytest.mark.parametrize("values", [[""] * 100_000, ["ORCON"] * 65, ["PII", "PII;REL"], ["PAN ONLY"]],
                         ids=["100k-empty", "65-known", "punctuation", "space"])
def test_a_marking_list_of_no_codes_or_too_many_is_dead_lettered_at_once(name: str, values: list[str]) -> None:
    """A first version too: a marking list holds at most 64 codes, or the record is refused whole (``invalid``),
    quickly and quoting nothing of it, before each entry could be a reason in every partner's decision."""
    alert = _first()
    alert["markings"][name] = values
    out = Run().send(alert)
    assert out.dead_reason == "invalid" and out.feeds == [] and f"markings.{name}" in out.entry["detail"]
    assert "ORCON" not in out.entry["detail"] and "PII" not in out.entry["detail"]


def test_an_invalid_consent_to_an_alert_partners_hold_pulls_it_back_and_consents_to_nothing() -> None:
    """A CONSENT version whose partners are no codes, of an alert COL holds: withheld from everyone and pulled back
    from COL (``alert.invalid``); the entry records no consent and no decision says the originator consented."""
    run = Run()
    first = _first()
    held = run.send(first).state
    assert held is not None and "COL" in held.holders
    out = run.send(_next(first, "CONSENT", partners=["USA", "X Y"], originator_consent=["USA", "X Y"]))
    assert out.dead_reason is None and "consent" not in out.entry
    assert {d["partner"]: d["decision"] for d in out.entry["decisions"]}["COL"] == "RECALL"
    assert not any("consented" in r for d in out.entry["decisions"] for r in d.get("reasons", ()))
    assert out.state is not None and out.state.holders == {}


def test_a_downgrade_reaches_a_partner_that_never_had_it() -> None:
    run = Run()
    first = _first("SECRETO")
    assert run.send(first).feeds == []
    out = run.send(_next(first, "RECLASSIFY", classification="RESTRINGIDO"))
    assert _headers(out) == {"COL": "DELIVER"} and _bare(out.state) == AlertState(2, {"COL": 2}, originator="SNM")


NO_HISTORY = {"action": "UPDATE", "reason": None, "partners": []}  # what a first copy of a later version reads


def test_a_first_copy_of_a_later_version_says_nothing_of_the_versions_its_partner_was_refused() -> None:
    """COL is refused versions 1 and 2 (SECRETO); version 3 lowers the markings to let it in. Its first copy reads
    as any later version does, an UPDATE giving no reason and naming no one, never the RECLASSIFY that let it in:
    COL never held the alert, and the action would tell it what it was refused. The version stays the alert's, so
    its store, its receipts and a later recall notice still match what it holds; the audit keeps the action."""
    run = Run()
    first = _first("SECRETO")
    assert run.send(first).feeds == []
    update = _next(first, "UPDATE")
    assert run.send(update).feeds == []
    lowered = _next(update, "RECLASSIFY", reason="SUPERSEDED", partners=["COL"], classification="RESTRINGIDO")
    out = run.send(lowered)
    assert _headers(out) == {"COL": "DELIVER"} and "supersedes" not in _by_partner(out)["COL"]
    view = CODEC.decode(run.sealers["COL"].sealed[-1])
    assert view["version"] == 3 and view["lifecycle"] == NO_HISTORY
    assert view["markings"]["classification"] == "RESTRINGIDO"  # the content is this version's
    assert out.entry["action"] == "RECLASSIFY" and out.entry["reason"] == "SUPERSEDED"  # national auditors read it
    assert _bare(out.state) == AlertState(3, {"COL": 3}, originator="SNM")
    # From here COL holds version 3: a later version tells it what that version did, and a recall pulls back 3.
    again = _next(lowered, "RECLASSIFY", classification="PUBLICO")
    assert _by_partner(run.send(again))["COL"]["supersedes"] == 3
    assert CODEC.decode(run.sealers["COL"].sealed[-1])["lifecycle"]["action"] == "RECLASSIFY"
    recall = run.send(_next(again, "RECALL", reason="ERROR"))
    assert _by_partner(recall)["COL"]["recalls"] == 4 and _headers(recall) == {"COL": "RECALL"}


def test_a_holder_reads_what_a_version_did_and_a_first_copy_of_it_does_not() -> None:
    """One version, two partners: COL held version 1 and reads the RECLASSIFY with its reason (it held what the
    version changes); USA, consented to by the same version, gets its first copy and reads no lifecycle history.
    The same for a CONSENT that names the partner it lets in: the consent itself is in the markings it reads."""
    run = Run()
    first = _first()
    run.send(first)
    out = run.send(_next(first, "RECLASSIFY", reason="SUPERSEDED", classification="PUBLICO",
                         originator_consent=["USA"]))
    assert _headers(out) == {"COL": "DELIVER", "USA": "DELIVER"}
    col, usa = (CODEC.decode(run.sealers[p].sealed[-1]) for p in ("COL", "USA"))
    assert col["lifecycle"] == {"action": "RECLASSIFY", "reason": "SUPERSEDED", "partners": []}
    assert usa["lifecycle"] == NO_HISTORY and usa["version"] == col["version"] == 2
    run = Run()
    first = _first("SECRETO")
    run.send(first)
    out = run.send(_next(first, "CONSENT", partners=["USA"], originator_consent=["USA"]))
    assert _headers(out) == {"USA": "DELIVER"} and out.entry["consent"] == ["USA"]
    usa = CODEC.decode(run.sealers["USA"].sealed[-1])
    assert usa["lifecycle"] == NO_HISTORY and usa["markings"]["originator_consent"] == ["USA"]


def test_a_recall_notifies_every_holder_and_no_one_else_and_is_for_good() -> None:
    run = Run()
    first = _first(consent=["USA"])
    run.send(first)
    update = _next(first, "UPDATE")
    run.send(update)
    recall = _next(update, "RECALL", reason="ERROR")
    out = run.send(recall)
    assert _headers(out) == {"COL": "RECALL", "USA": "RECALL"}
    assert out.entry["action"] == "RECALL" and out.entry["reason"] == "ERROR"
    assert _bare(out.state) == AlertState(3, {}, recalled=True, originator="SNM")
    for partner in ("COL", "USA"):
        notice = CODEC.decode(run.sealers[partner].sealed[-1])
        assert notice["lifecycle"] == {"action": "RECALL", "reason": "ERROR", "partners": []}
    after = run.send(_next(recall, "UPDATE"))
    assert after.dead_reason == "recalled" and after.feeds == []


def test_a_recall_of_an_alert_no_partner_holds_sends_nothing() -> None:
    run = Run()
    first = _first("SECRETO")
    run.send(first)
    out = run.send(_next(first, "RECALL", reason="LEGAL"))
    assert out.feeds == [] and {d["decision"] for d in out.entry["decisions"]} == {WITHHOLD}
    assert all("holds no version of it" in d["reasons"][0] for d in out.entry["decisions"])


@pytest.mark.parametrize(("later_version", "reason"), [(2, "replay"), (1, "stale")])
def test_the_same_version_again_is_a_replay_and_an_older_one_is_stale(later_version: int, reason: str) -> None:
    run = Run()
    first = _first()
    run.send(first)
    two = _next(first, "UPDATE")
    run.send(two)
    again = copy.deepcopy(two) if later_version == 2 else copy.deepcopy(first)
    run.seen.clear()  # beyond the replay window: the state alone must catch it
    out = run.send(again)
    assert out.dead_reason == reason and out.feeds == []


@pytest.mark.parametrize(("change", "problem"), [
    ({"version": 2}, "must say what it does"),
    ({"lifecycle": {"action": "UPDATE", "reason": None, "partners": []}}, "has no lifecycle action"),
    ({"version": 2, "lifecycle": {"action": "RECALL", "reason": None, "partners": []}}, "give its reason"),
    ({"version": 2, "lifecycle": {"action": "CONSENT", "reason": None, "partners": ["USA"]}},
     "originator_consent"),
    ({"version": 0}, "between 1"),
])
def test_versions_and_lifecycles_that_disagree_are_dead_lettered(change: dict[str, Any], problem: str) -> None:
    run = Run()
    bad = {**_first(), **change}
    out = run.send(bad)
    assert out.dead_reason == "invalid" and problem in out.entry["detail"] and out.feeds == []


def test_the_last_version_is_kept_for_a_recall_so_no_notice_or_state_goes_above_it() -> None:
    """A content version at the last version (1,000,000) is dead-lettered: a recall of the alert (at any version,
    since it carries no content) sends its notice above what the partners hold, and a state, a notice or a
    partner's store above the last version would be refused when read back, stopping the slot at every start
    and the partner's feed at the notice. Versions up to 999,999 then a recall work, and read back."""
    run = Run()
    first = _first()
    run.send(first)
    top = {**_next(first, "UPDATE"), "version": MAX_VERSION}
    out = run.send(top)
    assert out.dead_reason == "invalid" and "kept for a recall" in out.entry["detail"]
    near = {**_next(first, "UPDATE"), "version": MAX_VERSION - 1}
    assert _bare(run.send(near).state) == AlertState(MAX_VERSION - 1, {"COL": MAX_VERSION - 1}, originator="SNM")
    recall = {**_next(first, "RECALL", reason="ERROR"), "version": 2}  # built on an older copy
    out = run.send(recall)
    assert _bare(out.state) == AlertState(MAX_VERSION, {}, recalled=True, originator="SNM")
    assert CODEC.decode(run.sealers["COL"].sealed[-1])["version"] == MAX_VERSION
    LifecycleBook().load(first["alert_id"].encode(), out.state.encode(first["alert_id"], "2026-11-22T12:00:00Z"))
    again = run.send({**recall, "version": MAX_VERSION})
    assert again.dead_reason is not None and again.feeds == []


def test_a_state_is_written_and_read_back_and_anything_else_stops_the_slot() -> None:
    state = AlertState(3, {"COL": 2, "USA": 3})
    value = state.encode("SNM:X-1", "2026-11-22T12:00:00Z")
    book = LifecycleBook()
    book.load(b"SNM:X-1", value)
    assert book.get("SNM:X-1") == state
    book.load(b"SNM:X-1", None)  # a tombstone forgets it
    assert book.get("SNM:X-1") is None
    for bad in (b"not json", AlertState(1, {"COL": 2}).encode("SNM:X-1", "t"), value.replace(b"X-1", b"X-2"),
                b'{"alert_id": "SNM:X-1", "version": true, "holders": {}, "recalled": false}'):
        with pytest.raises(LifecycleStateError):
            book.load(b"SNM:X-1", bad)


def test_holders_the_policy_no_longer_names_are_audited_by_name_and_counted_under_one_label() -> None:
    """A state naming holders the policy does not (a partner removed since, or names no partner ever had): each is
    in the audit entry by name, still a holder, and counted under ``FORMER_PARTNER``: a metric's partner label is
    never a name read from a state."""
    run = Run()
    first = _first()
    run.send(first)
    held = run.book.get(first["alert_id"])
    assert held is not None
    names = [f"GONE-{n:04d}" for n in range(50)]
    run.book.put(first["alert_id"], dataclasses.replace(held, holders={**held.holders, **dict.fromkeys(names, 1)}))
    out = run.send(_next(first, "UPDATE"))
    audited = _by_partner(out)
    assert all(audited[name]["decision"] == "RECALL" and audited[name]["sent"] is False for name in names)
    assert out.state is not None and set(names) <= set(out.state.holders)
    assert {p for p, _ in out.decisions} == {"COL", "USA", pipeline.FORMER_PARTNER}
    assert out.decisions.count((pipeline.FORMER_PARTNER, "RECALL_FAILED")) == 50
    metrics = Metrics()
    metrics.count_batch([out], [NOW_MS])
    assert not any(name in line for line in metrics.render().decode().splitlines() for name in names)


def test_a_book_holds_one_copy_of_equal_states_and_each_alert_reads_its_own() -> None:
    """Alerts whose states are equal share one; a state differing in any field is its own; a state no alert holds
    any longer (pruned, or replaced) is let go. A state cannot be changed in place, so a shared one never changes
    another alert's."""
    book = LifecycleBook()
    fields = [AlertState(1, {"COL": 1}, originator="SNM", counts={"COL": 3}),
              AlertState(2, {"COL": 1}, originator="SNM", counts={"COL": 3}),
              AlertState(1, {"COL": 1, "USA": 1}, originator="SNM", counts={"COL": 3}),
              AlertState(1, {"COL": 1}, recalled=True, originator="SNM", counts={"COL": 3}),
              AlertState(1, {"COL": 1}, originator="SENAN", counts={"COL": 3}),
              AlertState(1, {"COL": 1}, originator="SNM", by_id=frozenset({"COL"}), counts={"COL": 3}),
              AlertState(1, {"COL": 1}, originator="SNM", by_slot=frozenset({"COL"}), counts={"COL": 3}),
              AlertState(1, {"COL": 1}, originator="SNM", counts={"COL": 6}),
              AlertState(1, {"COL": 1}, originator="SNM")]
    for i, state in enumerate(fields):
        for alert_id in (f"SNM:A-{i}", f"SNM:B-{i}"):
            book.load(alert_id.encode(), state.encode(alert_id, "2026-11-22T12:00:00Z"))
    for i, state in enumerate(fields):
        assert book.get(f"SNM:A-{i}") == state and book.get(f"SNM:A-{i}") is book.get(f"SNM:B-{i}")
    assert len({id(book.get(f"SNM:A-{i}")) for i in range(len(fields))}) == len(fields)
    with pytest.raises(AttributeError):
        book.get("SNM:A-0").version = 3  # type: ignore[misc, union-attr]
    pruned = LifecycleBook(retention_ms=1000)
    for n in range(1, 2001):
        pruned.put(f"SNM:C-{n}", AlertState(n, {"COL": n}), written_ms=n)
    pruned.put("SNM:C-1", AlertState(1, {"COL": 1}), written_ms=10**9)  # a later write of the first
    assert len(pruned._shared) == 2000
    assert pruned.prune(10**9) == 1999 and len(pruned) == 1
    assert len(pruned._shared) == 1 and pruned.get("SNM:C-1") == AlertState(1, {"COL": 1})
    pruned.put("SNM:C-1", AlertState(2, {"COL": 2}), written_ms=10**9)
    assert list(pruned._shared.values()) == [AlertState(2, {"COL": 2})]


def test_a_book_of_many_alerts_holds_a_few_hundred_bytes_each() -> None:
    """Read back from the lifecycle topic, 20,000 alerts delivered to the same partners take under 400 bytes each
    in the book (their ids included); a state object each took about 1,100."""
    values = [(f"SNM:2026-{i:09d}".encode(), AlertState(1, {"COL": 1, "USA": 1}, originator="SNM",
                                                         counts={"COL": 3, "USA": 3}).encode(f"SNM:2026-{i:09d}", "t"))
              for i in range(20_000)]
    tracemalloc.start()
    try:
        book = LifecycleBook(10**12)
        for n, (key, value) in enumerate(values):
            book.load(key, value, 1_700_000_000_000 + n)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(book) == 20_000 and held / 20_000 < 400


def test_a_recall_notice_holds_no_value_of_the_alert_it_withdraws() -> None:
    """For every alert type, no string of the alert but its id and type is in the notice's bytes."""

    def strings(value: Any) -> list[str]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        if isinstance(value, list):
            return [s for v in value for s in strings(v)]
        return []

    seen_types = set()
    for alert in generate(60, seed=9, now=NOW):
        seen_types.add(alert["alert_type"])
        encoded = CODEC.encode(recall_notice(alert, 2, "SOURCE_PROTECTION"))
        kept = {alert["alert_id"], alert["alert_type"]}
        leaked = [s for s in strings(alert) if len(s) > 3 and not any(s in k for k in kept) and s.encode() in encoded]
        assert leaked == [], leaked
    assert seen_types == {"WATCHLIST_HIT", "SEIZURE", "BORDER_EVENT"}


def test_a_recall_may_reuse_a_version_and_its_notices_still_supersede_what_is_held() -> None:
    """An officer's recall built on an older version than the broker's latest is not lost: a recall
    carries no content; its notices take a version above any a partner holds."""
    run = Run()
    first = _first(consent=["USA"])
    run.send(first)
    run.send(_next(first, "UPDATE"))
    late = _next(first, "RECALL", reason="LEGAL")  # version 2 again
    out = run.send(late)
    assert _headers(out) == {"COL": "RECALL", "USA": "RECALL"}
    assert {CODEC.decode(run.sealers[p].sealed[-1])["version"] for p in ("COL", "USA")} == {3}
    assert _bare(run.book.get(first["alert_id"])) == AlertState(3, {}, recalled=True, originator="SNM")
    assert run.send(_next(late, "RECALL", reason="LEGAL")).dead_reason == "recalled"  # nothing left to pull back


def test_a_notice_that_cannot_be_sealed_leaves_the_holder_and_a_second_recall_reaches_it() -> None:
    run = Run()
    first = _first(consent=["USA"])
    run.send(first)
    usa = run.sealers.pop("USA")
    recall = _next(first, "RECALL", reason="ERROR")
    out = run.send(recall)
    usa_entry = _by_partner(out)["USA"]
    assert usa_entry["decision"] == "RECALL" and usa_entry["sent"] is False and "could not be sent" in \
        usa_entry["reasons"][-1]
    assert _bare(out.state) == AlertState(2, {"USA": 1}, recalled=True, originator="SNM")
    run.sealers["USA"] = usa
    again = run.send(_next(recall, "RECALL", reason="ERROR"))
    assert _headers(again) == {"USA": "RECALL"}
    assert _bare(again.state) == AlertState(3, {}, recalled=True, originator="SNM")


def test_a_recall_at_the_last_version_that_missed_a_holder_is_repeated_at_that_version() -> None:
    """No version is above the last (1,000,000), so a recall there whose notice could not be sealed is
    repeated at that same version: it reaches the holder left, at that version, and once none is left the
    same recall again is dead-lettered. A content version or a plain replay there is still refused."""
    run = Run()
    first = _first(consent=["USA"])
    run.send(first)
    near = {**_next(first, "UPDATE"), "version": MAX_VERSION - 1}
    run.send(near)
    usa = run.sealers.pop("USA")
    recall = {**_next(first, "RECALL", reason="ERROR"), "version": MAX_VERSION}
    out = run.send(recall)
    assert _bare(out.state) == AlertState(MAX_VERSION, {"USA": MAX_VERSION - 1}, recalled=True, originator="SNM")
    run.sealers["USA"] = usa
    again = run.send(recall)
    assert _headers(again) == {"USA": "RECALL"}
    assert _bare(again.state) == AlertState(MAX_VERSION, {}, recalled=True, originator="SNM")
    assert CODEC.decode(run.sealers["USA"].sealed[-1])["version"] == MAX_VERSION
    assert run.send(recall).dead_reason == "replay"  # nothing left to pull back: the seen id refuses it
    update = {**_next(first, "UPDATE"), "version": MAX_VERSION}
    assert run.send(update).dead_reason is not None


def test_a_repeat_recall_at_the_last_version_is_only_for_a_recall_already_there() -> None:
    """A version at the last version is taken again only to repeat a recall made there: a recall at the last
    version of an alert whose state is below it is a first recall, and a second one with no holder left is a
    replay."""
    run = Run()
    first = _first()
    run.send(first)
    recall = {**_next(first, "RECALL", reason="ERROR"), "version": MAX_VERSION}
    out = run.send(recall)
    assert _headers(out) == {"COL": "RECALL"}
    assert _bare(out.state) == AlertState(MAX_VERSION, {}, recalled=True, originator="SNM")
    assert run.send(recall).dead_reason == "replay"


def test_an_update_that_cannot_reach_a_holder_pulls_back_what_it_holds() -> None:
    run = Run()
    first = _first()
    run.send(first)

    class Refusing(Sealer):
        def seal(self, plaintext: bytes, **_: Any) -> bytes:
            if CODEC.decode(plaintext)["lifecycle"]["action"] != "RECALL":
                raise ValueError("no")
            return super().seal(plaintext)

    run.sealers["COL"] = Refusing()
    out = run.send(_next(first, "UPDATE"))
    col = [d for d in out.entry["decisions"] if d["partner"] == "COL"]
    assert [d["decision"] for d in col] == ["RECALL"] and _headers(out) == {"COL": "RECALL"}
    assert any(r == "withheld at delivery: ValueError" for r in col[0]["reasons"])  # why version 2 did not go
    assert _bare(out.state) == AlertState(2, {}, originator="SNM")


def test_a_holder_the_policy_no_longer_names_is_kept_and_reported() -> None:
    run = Run()
    first = _first()
    run.send(first)
    run.book.put(first["alert_id"], AlertState(1, {"COL": 1, "GONE": 1}))
    out = run.send(_next(first, "RECALL", reason="ERROR"))
    gone = _by_partner(out)["GONE"]
    assert gone["sent"] is False and "no longer names" in gone["reasons"][0]
    assert _bare(out.state) == AlertState(2, {"GONE": 1}, recalled=True)


def test_a_version_in_another_partition_than_its_keys_is_dead_lettered() -> None:
    """Replays and states are kept per partition: a record its key does not place there meets neither."""
    run = Run()
    first = _first()
    key = first["alert_id"].encode()
    wrong = (key_partition(key, 3) + 1) % 3
    out = run.pipeline.process(Record("t.ingress.SNM", wrong, 1, key, CODEC.encode(first), (), NOW_MS), set(), NOW)
    assert out.dead_reason == "misrouted" and f"belongs in partition {key_partition(key, 3)}" in out.entry["detail"]


def test_murmur2_places_keys_as_kafkas_own_clients_do() -> None:
    """Python's hash and the one ``key_partition`` uses (the native codec's, where it is built) are Kafka's."""
    for size in range(0, 70):
        for seed in range(4):
            key = bytes((i * 37 + size + seed * 101) % 256 for i in range(size))
            assert murmur2(key) & 0x7FFFFFFF == kafkas_murmur2(key) & 0x7FFFFFFF
            assert _murmur2(key) == murmur2(key)


class _SizeSealer(Sealer):
    """Seals to about the plaintext's size, as the real sealer does (so a large view is too large sealed)."""

    def seal(self, plaintext: bytes, **kw: Any) -> bytes:
        super().seal(plaintext, **kw)
        return b"s" * (len(plaintext) + 100)


def test_a_version_too_large_to_send_is_one_recall_decision_for_each_holder(monkeypatch: pytest.MonkeyPatch) -> None:
    """A later version a holder is entitled to but that cannot be sent (its view is over the feed's record limit)
    pulls the held version back: one RECALL decision for that partner, whose reasons say why the version did
    not go, never a WITHHOLD and a RECALL for one input (the per-partner counts would no longer add up)."""
    run = Run()
    run.sealers["COL"] = run.pipeline.sealers["COL"] = _SizeSealer()
    first = _first()
    sent = run.send(first)
    assert _bare(sent.state) == AlertState(1, {"COL": 1}, originator="SNM")
    # An alert within its bounds (``schemas.bounds``) is far below the feed's limit: the limit is lowered to just
    # above the first version's view, and the second's longer summary goes over it.
    monkeypatch.setattr(pipeline, "MAX_FEED_RECORD", max(len(f.value) for f in sent.feeds) + 50)
    huge = _next(first, "UPDATE")
    huge["summary"] = "Actualización " + "y" * 180
    out = run.send(huge)
    assert [d["partner"] for d in out.entry["decisions"]] == ["COL", "USA"]
    col = _by_partner(out)["COL"]
    assert col["decision"] == "RECALL" and col["recalls"] == 1
    assert any("ViewTooLarge" in r for r in col["reasons"]) and "pulled back" in col["reasons"][-1]
    assert sorted(out.decisions) == [("COL", "RECALL"), ("USA", WITHHOLD)]
    assert _bare(out.state) == AlertState(2, {}, originator="SNM")
