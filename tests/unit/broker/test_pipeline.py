"""The pure pipeline: fail closed at delivery, the replay window's stale check, and what the audit entry holds."""

from __future__ import annotations

import hashlib
import sys
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from worker_fakes import counted

from broker.metrics import Metrics
from broker.pipeline import (
    _FORMAT_BYTES,
    DAY_MS,
    MAX_DEAD_LETTER,
    MAX_FUTURE_SKEW_MS,
    MAX_INGRESS_RECORD,
    WITHHOLD,
    MissingDeliveryKey,
    Originator,
    Pipeline,
    hidden_char,
    seen_key,
)
from broker.topology import Slots, TopicNames, key_partition
from broker.worker import head_ahead
from policies import alert_reference
from puente import strict
from puente.dev.synthetic import generate
from puente.errors import KeyUnusable
from puente.wire import Record, Unreadable
from schemas import alert_codec

REF_KEY = b"unit-test-alert-reference-key-32b"  # the broker's alert-reference key in these tests

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
SLOTS = Slots(("SENAN", "SNM"), 3, TopicNames("t"))
ORIGINATORS = {a: Originator.of(a, "PAN", "PAN") for a in SLOTS.agencies}


@dataclass(frozen=True)
class FakeDecision:
    partner: str
    outcome: str
    agreement: str | None = "AGR"
    rules: Sequence[str] = ("AGR.r1",)
    reasons: Sequence[str] = ("because",)
    redactions: Sequence[tuple[str, str]] = ()
    policy_version: str = "v1"
    audit: dict[str, Any] = field(default_factory=dict)


class FakePolicy:
    """Delivers everything; like the real adapter, hands out one shared decision per partner."""

    version = "v1"

    def __init__(self) -> None:
        self.shared: dict[str, FakeDecision] = {}

    def partners(self) -> list[tuple[str, str]]:
        return [("COL", "t.feed.COL"), ("USA", "t.feed.USA")]

    def decide(self, alert: dict[str, Any], partner: str, now: datetime) -> FakeDecision:
        if partner not in self.shared:
            audit = {"partner": partner, "decision": "DELIVER", "agreement": "AGR", "rules": ["AGR.r1"],
                     "reasons": ["because"], "redacted": [], "policy_version": "v1"}
            self.shared[partner] = FakeDecision(partner, "DELIVER", audit=audit)
        return self.shared[partner]

    def decide_all(self, alert: dict[str, Any], partners: Sequence[str], now: datetime,
                   until: Any = None) -> list[FakeDecision]:
        return [self.decide(alert, p, now) for p in partners]

    def view(self, alert: dict[str, Any], decision: Any) -> dict[str, Any]:
        return alert

    def reference(self, partner: str, alert_id: str) -> str:
        return alert_reference(REF_KEY, partner, alert_id)


class FakeSealer:
    def seal(self, plaintext: bytes, **_: Any) -> bytes:
        return b"sealed:" + plaintext[:4]


def _pipeline(sealers: dict[str, Any]) -> Pipeline:
    def origin(headers: Sequence[tuple[str, bytes]], value: bytes, key: str) -> tuple[str, int]:
        return key.split(":", 1)[0], int(dict(headers)["published"])

    return counted(Pipeline(FakePolicy(), alert_codec(), sealers, origin, SLOTS, replay_window_days=7,  # type: ignore[arg-type]
                            originators=ORIGINATORS))


def _record(published_ms: int, appended_ms: int = NOW_MS) -> tuple[Record, dict[str, Any]]:
    alert = next(a for a in generate(30, seed=5, now=NOW) if a["agency"] == "SNM")
    value = alert_codec().encode(alert)
    headers = (("published", str(published_ms).encode()),)
    key = alert["alert_id"].encode()
    return Record("t.ingress.SNM", key_partition(key, 3), 7, key, value, headers, appended_ms), alert


def test_a_key_the_origin_check_cannot_use_is_raised_out_of_the_pipeline_not_dead_lettered() -> None:
    """``KeyUnusable`` from the origin check (the broker's own key-agreement key stopped loading) is configuration,
    not input: ``process`` raises it, so the worker commits nothing and the record waits in ingress; any other
    failure of the check still dead-letters the record."""
    record, _ = _record(NOW_MS)
    for raised in (KeyUnusable("broker-kex-2026a: others may read it"), RuntimeError("boom")):
        pipe = _pipeline({"COL": FakeSealer(), "USA": FakeSealer()})

        def origin(*_: Any, error: Exception = raised) -> tuple[str, int]:
            raise error

        pipe.origin = origin  # type: ignore[method-assign,assignment]
        if isinstance(raised, KeyUnusable):
            with pytest.raises(KeyUnusable):
                pipe.process(record, set(), NOW)
        else:
            assert pipe.process(record, set(), NOW).dead_reason == "internal"


def test_a_batch_the_kafka_client_could_not_read_is_dead_lettered_before_anything_reads_it() -> None:
    """The record standing for an unreadable batch (``broker.kafka.unreadable``) is refused as ``unreadable``, naming
    what failed and its offsets, before its origin is checked: it ends recorded, and the slot reads on past it."""
    good, _ = _record(NOW_MS)
    checked: list[str] = []
    pipe = _pipeline({"COL": FakeSealer(), "USA": FakeSealer()})
    pipe.origin = lambda *args: checked.append("origin") or ("SNM", NOW_MS)  # type: ignore[method-assign,assignment]
    bad = good._replace(key=None, value=b"", headers=(), unreadable=Unreadable("UnicodeDecodeError reading it", 5, 7))
    out = pipe.process(bad, set(), NOW)
    assert out.dead_reason == "unreadable" and not out.feeds and checked == []
    assert out.entry["kind"] == "DEAD_LETTER" and out.entry["ingress"] == f"t.ingress.SNM:{good.partition}:7"
    detail = out.entry["detail"]
    assert "UnicodeDecodeError reading it: records 5-7" in detail and "publish them again" in detail


def test_the_dead_letter_of_an_unreadable_batch_counts_every_record_of_it() -> None:
    """The outcome of the record standing for an unreadable batch answers for each of the batch's offsets from where
    the reader stood, so the metrics count as many ingress records as the slot's committed offsets move past;
    any other record, dead-lettered or not, answers for one."""
    good, _ = _record(NOW_MS)
    pipe = _pipeline({"COL": FakeSealer(), "USA": FakeSealer()})
    whole = good._replace(offset=19, key=None, value=b"", headers=(),
                          unreadable=Unreadable("a zstd-compressed batch, not inflated", 10, 19))
    tail = whole._replace(unreadable=Unreadable("a zstd-compressed batch, not inflated", 10, 19, start=16))
    outcomes = [pipe.process(rec, set(), NOW) for rec in (whole, tail, good, good._replace(value=b""))]
    assert [o.records for o in outcomes] == [10, 4, 1, 1]
    metrics = Metrics()
    metrics.count_batch(outcomes, [NOW_MS] * len(outcomes), "t.ingress.SNM")
    assert metrics.value("puente_ingress_records_total", topic="t.ingress.SNM") == metrics.inputs == 16
    assert metrics.value("puente_dead_letters_total", reason="unreadable") == 2


def test_the_text_scan_is_built_with_the_pipeline_not_in_its_first_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scan for characters drawn as nothing takes some 60 ms to build: a worker builds it as its pipeline is
    made, so no batch (and no alert's latency) pays for it."""
    monkeypatch.setattr(strict, "_suspect", None)
    _pipeline({})
    assert strict._suspect is not None


def test_a_delivery_to_a_partner_without_a_sealer_raises_rather_than_withhold() -> None:
    """The policy says deliver, but no sealer exists for USA: nothing is sent in clear, and no WITHHOLD is
    returned (the worker would commit it, final): process raises MissingDeliveryKey naming the partner, the record
    and what to fix, so the worker stops before committing and the record waits for a broker with the key."""
    record, alert = _record(NOW_MS)
    with pytest.raises(MissingDeliveryKey) as info:
        _pipeline({"COL": FakeSealer()}).process(record, set(), NOW)
    message = str(info.value)
    assert "partner USA" in message and alert["alert_id"] not in message and "t.ingress.SNM:" in message
    assert "without committing" in message and "encryption key" in message and "\n" not in message


def test_a_view_without_its_pseudonym_key_raises_rather_than_withhold() -> None:
    """The policy port raises MissingDeliveryKey when an agreement that pseudonymises has no key (an agreement come
    into force while the broker runs): it leaves process as it is, not as a committed WITHHOLD; any other failure
    of a view is still a withhold."""
    record, _ = _record(NOW_MS)
    pipe = _pipeline({"COL": FakeSealer(), "USA": FakeSealer()})

    def no_key(alert: dict[str, Any], decision: Any) -> dict[str, Any]:
        raise MissingDeliveryKey("the broker has no pseudonym key for agreement AGR")

    pipe.policy.view = no_key  # type: ignore[method-assign]
    with pytest.raises(MissingDeliveryKey, match="pseudonym key for agreement AGR"):
        pipe.process(record, set(), NOW)

    def broken(alert: dict[str, Any], decision: Any) -> dict[str, Any]:
        raise ValueError("a view that fails for another reason")

    pipe.policy.view = broken  # type: ignore[method-assign]
    assert all(d["decision"] == WITHHOLD for d in pipe.process(record, set(), NOW).entry["decisions"])


def test_shared_audit_fields_are_not_changed_by_a_delivery_failure() -> None:
    """The policy's shared audit fields stay as they were when a delivery fails (every seal fails here)."""
    record, _ = _record(NOW_MS)
    pipe = _pipeline({"COL": HugeSealer(), "USA": HugeSealer()})
    first = pipe.process(record, set(), NOW)
    assert all(d["decision"] == WITHHOLD for d in first.entry["decisions"])
    shared = pipe.policy.shared  # type: ignore[attr-defined]
    assert {p: d.audit["decision"] for p, d in shared.items()} == {"COL": "DELIVER", "USA": "DELIVER"}
    assert all(len(d.audit["reasons"]) == 1 for d in shared.values())


@pytest.mark.parametrize(("published_ms", "ok"), [
    (NOW_MS - 7 * DAY_MS, True),
    (NOW_MS - 7 * DAY_MS - 1, False),
    (NOW_MS + MAX_FUTURE_SKEW_MS, True),
    (NOW_MS + MAX_FUTURE_SKEW_MS + 1, False),
])
def test_publication_time_must_fall_within_the_replay_window(published_ms: int, ok: bool) -> None:
    """A record published longer ago than the window (or ahead of Kafka's clock by more than the skew) is stale."""
    record, _ = _record(published_ms)
    out = _pipeline({"COL": FakeSealer(), "USA": FakeSealer()}).process(record, set(), NOW)
    assert (out.dead_reason is None) is ok
    if not ok:
        assert out.dead_reason == "stale" and out.entry["kind"] == "DEAD_LETTER" and not out.feeds


def test_an_id_in_the_window_is_a_replay() -> None:
    record, alert = _record(NOW_MS)
    out = _pipeline({"COL": FakeSealer()}).process(record, {alert["alert_id"]}, NOW)
    assert out.dead_reason == "replay" and not out.feeds and out.seen_id is None


class RaisingPolicy(FakePolicy):
    """A policy whose view (or whose decisions) fail with whatever a hostile alert may cause."""

    def __init__(self, view_error: Exception | None = None, decide_error: Exception | None = None) -> None:
        super().__init__()
        self.view_error, self.decide_error = view_error, decide_error

    def decide_all(self, alert: dict[str, Any], partners: Sequence[str], now: datetime,
                   until: Any = None) -> list[FakeDecision]:
        if self.decide_error is not None:
            raise self.decide_error
        return super().decide_all(alert, partners, now)

    def view(self, alert: dict[str, Any], decision: Any) -> dict[str, Any]:
        if self.view_error is not None:
            raise self.view_error
        return alert


def _with(policy: FakePolicy, sealers: dict[str, Any]) -> Pipeline:
    def origin(headers: Sequence[tuple[str, bytes]], value: bytes, key: str) -> tuple[str, int]:
        return key.split(":", 1)[0], int(dict(headers)["published"])

    return counted(Pipeline(policy, alert_codec(), sealers, origin, SLOTS, replay_window_days=7,  # type: ignore[arg-type]
                            originators=ORIGINATORS))


@pytest.mark.parametrize("error", [OverflowError("cannot convert float infinity to integer"),
                                   ValueError("María Pérez"), RecursionError(), ZeroDivisionError()])
def test_any_failure_building_a_view_withholds_with_its_kind_only(error: Exception) -> None:
    """Whatever a view raises, the partner is withheld with the kind of fault; no text that could quote the alert."""
    record, _ = _record(NOW_MS)
    out = _with(RaisingPolicy(view_error=error), {"COL": FakeSealer(), "USA": FakeSealer()}).process(
        record, set(), NOW)
    assert not out.feeds and dict(out.decisions) == {"COL": WITHHOLD, "USA": WITHHOLD}
    for decision in out.entry["decisions"]:
        assert decision["reasons"][-1] == f"withheld at delivery: {type(error).__name__}"


def test_a_policy_that_fails_to_decide_withholds_from_every_partner() -> None:
    """An exception out of the policy withholds the alert from everyone, recorded, instead of stopping the worker."""
    record, alert = _record(NOW_MS)
    out = _with(RaisingPolicy(decide_error=RecursionError()), {"COL": FakeSealer()}).process(record, set(), NOW)
    assert not out.feeds and out.seen_id == alert["alert_id"]
    assert [d["decision"] for d in out.entry["decisions"]] == [WITHHOLD, WITHHOLD]
    assert "RecursionError" in out.entry["decisions"][0]["reasons"][0]


def test_an_unexpected_failure_while_admitting_is_a_dead_letter() -> None:
    """A failure nobody foresaw while checking a record dead-letters it (reason internal); it never raises."""
    record, _ = _record(NOW_MS)

    def broken(headers: Sequence[tuple[str, bytes]], value: bytes, key: str) -> tuple[str, int]:
        raise MemoryError

    pipe = Pipeline(FakePolicy(), alert_codec(), {}, broken, SLOTS, originators=ORIGINATORS)  # type: ignore[arg-type]
    out = pipe.process(record, set(), NOW)
    assert out.dead_reason == "internal" and "MemoryError" in out.entry["detail"]


def test_an_ingress_record_over_the_limit_is_dead_lettered_unread() -> None:
    """A value larger than any producer sends uncompressed (a small compressed batch can carry hundreds of
    megabytes) is dead-lettered as too-large before its origin is checked or anything of it decoded; the detail
    gives its size, never its content. One at the limit goes on to the usual checks."""
    record, _ = _record(NOW_MS)
    padded = record.value + b"Zaqueo" * ((MAX_INGRESS_RECORD - len(record.value)) // 6 + 1)
    checked: list[bytes] = []

    def origin(headers: Sequence[tuple[str, bytes]], value: bytes, key: str) -> tuple[str, int]:
        checked.append(value)
        return key.split(":", 1)[0], NOW_MS

    pipeline = counted(Pipeline(FakePolicy(), alert_codec(), {"COL": FakeSealer(), "USA": FakeSealer()},  # type: ignore[arg-type]
                                origin, SLOTS, replay_window_days=7, originators=ORIGINATORS))
    out = pipeline.process(record._replace(value=padded), set(), NOW)
    assert out.dead_reason == "too-large" and checked == [] and not out.feeds
    assert f"{len(padded):,} bytes" in out.entry["detail"] and "Zaqueo" not in out.entry["detail"]
    at_limit = pipeline.process(record._replace(value=padded[:MAX_INGRESS_RECORD]), set(), NOW)
    assert at_limit.dead_reason != "too-large" and checked


@pytest.mark.parametrize("value", [None, b""])
def test_a_tombstone_or_an_empty_record_is_dead_lettered_as_such(value: bytes | None) -> None:
    """A record with no value (a Kafka tombstone, which anyone who may write the topic can send) is dead-lettered
    as empty before its origin is checked: it was taken for a fault of Puente's own (internal, "report it to
    Puente's maintainers"), the origin check failing on the missing bytes."""
    record, _ = _record(NOW_MS)
    checked: list[Any] = []

    def origin(headers: Sequence[tuple[str, bytes]], value: bytes, key: str) -> tuple[str, int]:
        checked.append(value)
        return key.split(":", 1)[0], len(value)

    pipeline = counted(Pipeline(FakePolicy(), alert_codec(), {"COL": FakeSealer(), "USA": FakeSealer()},  # type: ignore[arg-type]
                                origin, SLOTS, replay_window_days=7, originators=ORIGINATORS))
    out = pipeline.process(record._replace(value=value), set(), NOW)
    assert out.dead_reason == "empty" and "tombstone" in out.entry["detail"] and checked == [] and not out.feeds


class HugeSealer:
    def seal(self, plaintext: bytes, **_: Any) -> bytes:
        return b"x" * 2_000_000


def test_a_view_too_large_for_a_feed_record_is_withheld() -> None:
    """A sealed view over Kafka's record limit is withheld (it would abort the batch at every retry)."""
    record, _ = _record(NOW_MS)
    out = _pipeline({"COL": HugeSealer(), "USA": FakeSealer()}).process(record, set(), NOW)
    assert dict(out.decisions) == {"COL": WITHHOLD, "USA": "DELIVER"}
    col = next(d for d in out.entry["decisions"] if d["partner"] == "COL")
    assert "ViewTooLarge" in col["reasons"][-1]


@pytest.mark.parametrize(("key_len", "value_len"), [(30, 1_047_000), (1_000_000, 10), (450_000, 450_001)])
def test_a_dead_letter_too_large_to_send_is_cut_with_a_note(key_len: int, value_len: int) -> None:
    """Key and value over MAX_DEAD_LETTER together are cut to it (the key to 1 KiB first), with a note of both
    sizes and the value's digest; the worker sends the cut pair, never more than the producer takes."""
    key, value = b"K" * key_len, bytes(range(256)) * (value_len // 256) + b"v" * (value_len % 256)
    record = Record("t.ingress.SNM", 0, 7, key, value, (), NOW_MS)
    out = _pipeline({}).process(record, set(), NOW)
    assert out.dead_reason is not None and out.dead_record is not None
    dead_key, dead_value = out.dead_record
    assert len(dead_key) == min(key_len, 1024) and len(dead_value) == min(value_len, MAX_DEAD_LETTER - len(dead_key))
    assert key.startswith(dead_key) and value.startswith(dead_value)
    note = dict(out.dead_letter or ())["puente-dlq-cut"].decode()
    assert f"value {value_len:,} bytes" in note and hashlib.sha256(value).hexdigest() in note
    assert out.entry["cut"] == note


def test_a_dead_letter_that_fits_is_not_cut() -> None:
    """At the bound exactly, the dead letter is the record itself (no cut, no note)."""
    record = Record("t.ingress.SNM", 0, 7, b"k" * 100, b"v" * (MAX_DEAD_LETTER - 100), (), NOW_MS)
    out = _pipeline({}).process(record, set(), NOW)
    assert out.dead_reason is not None and out.dead_record is None and "cut" not in out.entry
    assert "puente-dlq-cut" not in dict(out.dead_letter or ())


@pytest.mark.parametrize("char", ["\u202e", "\u2067", "\u200b", "\ufeff", "\u00ad", "\u061c", "\u206a", "\U000e0041",
                                  "\ufff9", "\u180e"])
def test_invisible_formatting_characters_are_dead_lettered(char: str) -> None:
    """A name carrying a bidirectional override or zero-width character never reaches a partner."""
    alert = next(a for a in generate(30, seed=5, now=NOW) if a["agency"] == "SNM")
    alert["summary"] = f"Coincidencia {char}ADMITIDO"
    value = alert_codec().encode(alert)
    record = Record("t.ingress.SNM", key_partition(alert["alert_id"].encode(), 3), 7, alert["alert_id"].encode(),
                    value, (("published", str(NOW_MS).encode()),),
                    NOW_MS)
    out = _pipeline({"COL": FakeSealer(), "USA": FakeSealer()}).process(record, set(), NOW)
    assert out.dead_reason == "invalid" and f"U+{ord(char):04X}" in out.entry["detail"] and not out.feeds


@pytest.mark.parametrize("char", ["\u034f", "\u3164", "\ufe0f", "\U000e0100", "\u0378", "\uffff", "\u2800",
                                  "\U00016fe4", "\U0001d159"])
@pytest.mark.parametrize("path", ["summary", "payload.person.surnames"])
def test_characters_drawn_as_nothing_or_unassigned_are_dead_lettered(char: str, path: str) -> None:
    """A name carrying a combining grapheme joiner, a filler (Hangul, Khitan), a blank (Braille, a null notehead), a
    variation selector or an unassigned code point reads as the name without it, and matches nothing that has it
    not: dead-lettered, as the adapters refuse it; text with spaces of other widths still goes."""
    out = _admitted(_set(path, f"Pére{char}z"))
    assert out.dead_reason == "invalid" and f"U+{ord(char):04X}" in out.entry["detail"] and not out.feeds
    assert not _admitted(_set(path, "Pérez\u00a0Núñez\u3000Peña")).dead_reason


@pytest.mark.parametrize("point", [0xE000, 0xF8FF, 0xF0000, 0x10FFFD])
@pytest.mark.parametrize("path", ["summary", "payload.person.surnames", "markings.originator.unit"])
def test_private_use_characters_are_dead_lettered_as_such(point: int, path: str) -> None:
    """A private-use character, a vendor's glyph or a box that makes two equal-looking names differ, is dead-lettered
    as the adapters refuse it; the detail names it as private-use, by code point, never the text."""
    out = _admitted(_set(path, f"Pére{chr(point)}z"))
    assert out.dead_reason == "invalid" and not out.feeds
    assert f"the private-use character U+{point:04X}" in out.entry["detail"] and "Pére" not in out.entry["detail"]


@pytest.mark.parametrize("path", ["summary", "payload.person.surnames"])
def test_a_stack_of_combining_marks_is_dead_lettered(path: str) -> None:
    """Five or more combining marks on one letter (zalgo text, drawn over the text around it) are dead-lettered,
    said by the run's length; four, and Vietnamese or Hebrew names, go."""
    out = _admitted(_set(path, "Pe" + "\u0301\u0300\u0303\u0304\u0306" * 2 + "rez"))
    assert out.dead_reason == "invalid" and "a run of 10 combining marks on one character" in out.entry["detail"]
    assert not out.feeds and "rez" not in out.entry["detail"]
    decomposed = "a\u0301 e\u0301 i\u0301 o\u0301 u\u0301 n\u0303"  # a run in the fast search only: cleared by the walk
    for fine in ("Pe\u0301\u0300\u0303\u0304rez", "Nguyễn Thị Phượng", "שָּׁ֖לוֹם", decomposed):
        assert not _admitted(_set(path, fine)).dead_reason, fine


@pytest.mark.parametrize("path", ["summary", "payload.person.surnames"])
def test_emoji_sequences_are_admitted_and_their_glue_elsewhere_dead_lettered(path: str) -> None:
    """Emoji with a presentation selector, a keycap or a zero-width joiner go, as the adapters keep them; a joiner
    between letters, a selector after a letter or a joiner between emoji that form no recommended sequence is
    dead-lettered and named, as the adapters refuse it. A selector that ends one string and an emoji that begins the
    next do not make a sequence: each string is checked alone."""
    for fine in ("\u26a0\ufe0f P\u00e9rez 1\ufe0f\u20e3", "\U0001f468\u200d\U0001f469\u200d\U0001f467 familia"):
        assert not _admitted(_set(path, fine)).dead_reason, fine
    for bad, point in (("P\u200d\u00e9rez \u2764\ufe0f", 0x200D), ("P\u00e9re\ufe0fz", 0xFE0F),
                       ("\U0001f98a\u200d\U0001f431", 0x200D), ("\ufe0fP\u00e9rez", 0xFE0F)):
        out = _admitted(_set(path, bad))
        assert out.dead_reason == "invalid" and f"U+{point:04X}" in out.entry["detail"] and not out.feeds, bad
    assert hidden_char({"a": ["\u2764", "\ufe0f"]}) == "the invisible character U+FE0F VARIATION SELECTOR-16"
    assert hidden_char({"a": ["\u2764\ufe0f", "\U0001f468\u200d\U0001f469\u200d\U0001f467"]}) is None


def test_the_walk_of_the_strings_names_private_use_characters_and_runs_of_marks() -> None:
    """When the JSON form holds an escape (a literal backslash before t), the strings are walked one by one: a
    private-use character or a run of marks is still found there, and named as what it is."""
    assert hidden_char({"a": ["C:\\temp", "Pé\ue000z"]}) == "the private-use character U+E000"
    assert hidden_char({"a": ["C:\\temp", "Pe" + "\u0301" * 5]}) == "a run of 5 combining marks on one character"
    assert hidden_char({"a": ["C:\\temp", "Pe\u0301\u0301\u0301\u0301z"]}) is None


@pytest.mark.parametrize("zone", ["America/Panama", "UTC", "Etc/GMT+5"])
def test_the_time_zones_of_places_and_utc_are_admitted(zone: str) -> None:
    """An IANA zone of a place, UTC or an Etc/ offset is a sound source_timezone."""
    out = _admitted(_set("source_timezone", zone))
    assert out.dead_reason is None and out.feeds


def _admitted(change: Callable[[dict[str, Any]], None], agency: str = "SNM", key: str | None = None) -> Any:
    """Process one generated alert of ``agency`` after ``change``, with a valid origin and placement."""
    alert = next(a for a in generate(60, seed=5, now=NOW) if a["agency"] == agency)
    change(alert)
    value = alert_codec().encode(alert)
    record_key = (key or alert["alert_id"]).encode()
    record = Record(f"t.ingress.{agency}", key_partition(record_key, 3), 7, record_key, value,
                    (("published", str(NOW_MS).encode()),), NOW_MS)
    return _pipeline({"COL": FakeSealer(), "USA": FakeSealer()}).process(record, set(), NOW)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(alert: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = alert
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[last] = value
    return change


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x07", "\t", "\r", "\x7f", "\x85", "\x9b"])
@pytest.mark.parametrize("path", ["summary", "payload.person.surnames", "markings.originator.unit"])
def test_control_characters_anywhere_are_dead_lettered_without_the_text(char: str, path: str) -> None:
    """An escape sequence that rewrites a terminal, a NUL that cuts a C string short, a tab or carriage return
    that forges a log line: dead-lettered wherever a text field holds it, as the adapters refuse it; the detail
    names the kind, never the text."""
    out = _admitted(_set(path, f"Pérez{char}[31m forged"))
    assert out.dead_reason == "invalid" and "a control character" in out.entry["detail"] and not out.feeds
    assert "Pérez" not in out.entry["detail"] and "forged" not in out.entry["detail"]


@pytest.mark.parametrize("text", ["línea uno\nlínea dos", "C:\\temp\\table \\u0041 \\b", "Núñez ½ — «ok»"])
def test_line_feeds_and_backslashes_are_text(text: str) -> None:
    """A line feed (remarks span lines), a literal backslash before t, u or b, and non-ASCII letters are text:
    the fast search's false alarms are cleared on the strings."""
    out = _admitted(_set("summary", text))
    assert out.dead_reason is None and out.feeds


@pytest.mark.parametrize(("agency", "path", "value", "said"), [
    ("SENAN", "payload.items.0.quantity", float("nan"), "quantity must be a finite number"),
    ("SENAN", "payload.items.0.quantity", float("inf"), "quantity must be a finite number"),
    ("SENAN", "payload.items.0.quantity", -5.0, "quantity must be a finite number, not negative"),
    ("SENAN", "payload.persons_detained", -7, "persons_detained is negative"),
    ("SNM", "payload.match_score", 1.5, "match_score must be a number from 0 to 1"),
    ("SNM", "payload.match_score", float("nan"), "match_score must be a number from 0 to 1"),
    ("SNM", "payload.person.birth_year", 1492, "birth_year is before 1900"),
    ("SNM", "payload.person.date_of_birth", date(2090, 1, 1), "date_of_birth is before 1900 or in the future"),
    ("SNM", "payload.person.date_of_birth", date(1, 1, 1), "date_of_birth is before 1900 or in the future"),
    ("SNM", "payload.encountered_at", datetime(9000, 1, 1, tzinfo=UTC), "encountered_at is before 1900 or in the"),
    ("SNM", "source_timezone", "Mars/Olympus_Mons", "source_timezone is not an IANA time zone"),
    ("SNM", "source_timezone", "../../etc/passwd", "source_timezone is not an IANA time zone"),
    *[("SNM", "source_timezone", zone, "source_timezone is not an IANA time zone of a place")
      for zone in ("Factory", "localtime", "posixrules", "posix/America/Panama", "right/UTC")],
    ("SNM", "occurred_at", datetime(1, 1, 1, tzinfo=UTC), "occurred_at is before 1900"),
    ("SNM", "reported_at", NOW + timedelta(days=30), "reported_at is in the future"),
    ("SNM", "markings.review_at", datetime(1, 1, 1, tzinfo=UTC), "markings.review_at is before 1900 or more than"),
    ("SNM", "markings.expires_at", datetime(9999, 1, 1, tzinfo=UTC), "markings.expires_at is before 1900 or more"),
])
def test_impossible_values_are_dead_lettered(agency: str, path: str, value: Any, said: str) -> None:
    """Values the schema's types allow but no report holds, which the adapters refuse: dead-lettered as invalid
    with the field and the rule, so a partner never reads a negative seizure or a NaN score."""
    out = _admitted(_set(path, value), agency)
    assert out.dead_reason == "invalid" and said in out.entry["detail"] and not out.feeds


@pytest.mark.parametrize("reference", ["x\n[audit] forged", "a b", "a:b", "-leading", "ok\x1b[2J", "PTY-1 v2 recall"])
def test_an_alert_id_outside_the_reference_pattern_is_dead_lettered(reference: str) -> None:
    """An id must be the agency and a reference of letters, digits and . _ / # -: no space, with which one alert's
    id could pass for another's version or recall in the replay window (a recall dead-lettered as a replay),
    and no control character, which would reach the feed's header."""
    def rename(alert: dict[str, Any]) -> None:
        alert["alert_id"] = f"SNM:{reference}"

    out = _admitted(rename)
    detail = out.entry["detail"]
    assert out.dead_reason == "invalid" and not out.feeds and reference not in detail
    assert "alert id must be" in detail or "control character" in detail  # a control character is found first


def test_the_byte_search_finds_exactly_the_format_characters() -> None:
    """_FORMAT_BYTES matches the UTF-8 of every character of category Cf in this Python's Unicode, and of no
    other: a character it missed would pass unseen (the decoded check runs only after a byte hit)."""
    missed, extra = [], []
    for code in (*range(0xD800), *range(0xE000, sys.maxunicode + 1)):
        char = chr(code)
        if (_FORMAT_BYTES.fullmatch(char.encode()) is not None) != (unicodedata.category(char) == "Cf"):
            (missed if unicodedata.category(char) == "Cf" else extra).append(f"U+{code:04X}")
    assert (missed, extra) == ([], [])


def test_a_dead_letters_alert_id_in_the_audit_has_its_control_characters_escaped() -> None:
    """The audit entry of a dead letter names the record's key, which no check has passed: an escape sequence in it
    is written escaped, never raw, so `audit log` cannot retitle or clear an auditor's terminal."""
    key = "SNM:x\x1b]0;pwned\x07\x1b[2J"
    record = Record("t.ingress.SNM", 0, 7, key.encode(), b"not avro", (("published", str(NOW_MS).encode()),), NOW_MS)
    out = _pipeline({}).process(record, set(), NOW)
    assert out.dead_reason is not None and out.entry["alert_id"] == "SNM:x\\x1b]0;pwned\\x07\\x1b[2J"
    assert out.entry["alert_id"].isprintable()


def test_replay_keys_of_ids_with_hashes_never_meet() -> None:
    """Ids the adapters write may hold '#': the replay window's key for one id's version or recall is never the
    key of another id (SNM:PTY-1#v2#recall at version 1 against the recall of SNM:PTY-1 at version 2)."""
    ids = ["SNM:PTY-1", "SNM:PTY-1#v2", "SNM:PTY-1#v2#recall", "SNM:PTY-1#v3", "SNM:PTY-1.v2"]
    keys = [seen_key(i, v, r) for i in ids for v in (1, 2, 3) for r in (False, True)]
    assert len(keys) == len(set(keys))


# Unicode's Default_Ignorable_Code_Point characters (DerivedCoreProperties.txt) and those drawn as a blank that
# Unicode does not list so (U+2800 BRAILLE PATTERN BLANK, U+16FE4 KHITAN SMALL SCRIPT FILLER...).
_IGNORABLE_POINTS = {*(code for first, last in strict.DEFAULT_IGNORABLE for code in range(first, last + 1)),
                     *strict.BLANK_LOOKING}


def test_the_hidden_character_search_finds_exactly_control_and_format_characters() -> None:
    """hidden_char flags a string holding any character of category Cc (but the line feed), Cf, Cs, Zl, Zp, Cn
    (unassigned) or Co (private use) in this Python's Unicode, or one drawn as nothing
    (Default_Ignorable_Code_Point, or a blank such as U+16FE4 KHITAN SMALL SCRIPT FILLER), between other text, and
    no other character: its fast scans of the JSON form miss none."""
    missed, extra = [], []
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        hidden = ((unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp", "Cn", "Co") and char != "\n")
                  or code in _IGNORABLE_POINTS)
        if (hidden_char({"a": [f"Pé{char}z"]}) is not None) != hidden:
            (missed if hidden else extra).append(f"U+{code:04X}")
    assert (missed, extra) == ([], [])


def _snm_record(alert_id: str | None = None, **markings: Any) -> Record:
    alert = next(a for a in generate(30, seed=5, now=NOW) if a["agency"] == "SNM")
    if alert_id is not None:
        alert["alert_id"] = alert_id
    for name, value in markings.items():
        if name.startswith("originator_"):
            alert["markings"]["originator"][name.removeprefix("originator_")] = value
        else:
            alert["markings"][name] = value
    value = alert_codec().encode(alert)
    return Record("t.ingress.SNM", key_partition(alert["alert_id"].encode(), 3), 7, alert["alert_id"].encode(),
                  value, (("published", str(NOW_MS).encode()),), NOW_MS)


def test_huge_marking_values_are_refused_and_bounded_ones_kept_short_in_the_audit_entry() -> None:
    """A marking string longer than a code (``schemas.bounds``) is dead-lettered, naming the field and the bound,
    never the value; one at the bound reaches the audit entry at most 64 characters long."""
    pipe = _pipeline({"COL": FakeSealer(), "USA": FakeSealer()})
    out = pipe.process(_snm_record(classification="X" * 1_000_000), set(), NOW)
    assert out.dead_reason == "invalid" and "XXX" not in out.entry["detail"]
    assert out.entry["detail"] == "markings.classification has 1,000,000 characters; at most 64 are accepted"
    out = pipe.process(_snm_record(classification="X" * 64), set(), NOW)
    assert out.dead_reason is None and len(out.entry["classification"]) <= 64


@pytest.mark.parametrize(("agency", "country"), [
    ("SENAFRONT", "PAN"),  # another agency of the same country: its restrictions are not SNM's to claim
    ("COL-DIJIN", "COL"),  # a foreign originator, named by an agency that relays no one
    ("SNM", "COL"),
    ("SNM", "XXX"),
    ("Y" * 100_000, "PAN"),
    ("SNM", ""),
], ids=["other-agency", "foreign", "foreign-country", "unknown-country", "huge", "empty-country"])
def test_an_originator_the_agency_may_not_name_is_dead_lettered(agency: str, country: str) -> None:
    """An agency's alerts name that agency and its configured country as originator, nothing else: the
    policy applies the originator country's restrictions, so a wrong one would move them. The detail
    quotes neither value (agency text)."""
    out = _pipeline({"COL": FakeSealer(), "USA": FakeSealer()}).process(
        _snm_record(originator_agency=agency, originator_country=country), set(), NOW)
    assert out.dead_reason == "originator" and not out.feeds and out.seen_id is None
    detail, headers = out.entry["detail"], str(out.dead_letter)
    quoted = [value for value in (agency[:40], country) if value not in ("SNM", "PAN", "")]
    assert not [value for value in quoted if value in detail or value in headers]  # neither value quoted
    assert "this one names another" in detail


def test_a_relaying_agency_names_its_countrys_services() -> None:
    """An agency configured for another country (COMBIFRON for Colombia) names <COUNTRY>-<unit> as originator,
    with that country; its own country's name, or a bare prefix, is refused."""
    relay = Originator.of("SNM", "COL", "PAN", ("DIJIN", "ARC"))
    pipe = counted(Pipeline(FakePolicy(), alert_codec(), {"COL": FakeSealer(), "USA": FakeSealer()},  # type: ignore[arg-type]
                            _pipeline({}).origin, SLOTS, originators={**ORIGINATORS, "SNM": relay}))
    ok = pipe.process(_snm_record("SNM:COL-DIJIN-2026-1", originator_agency="COL-DIJIN", originator_country="COL"),
                      set(), NOW)
    assert ok.dead_reason is None
    for agency, country in (("COL-DIJIN", "PAN"), ("COL-", "COL"), ("SNM", "PAN"),
                            # the unit is a code: free text (a source's name and document) is no unit
                            ("COL-Fuente Juan Perez CC 80123456", "COL"), ("COL-dijin", "COL"), ("COL-DIJIN\n", "COL")):
        out = pipe.process(_snm_record("SNM:COL-DIJIN-2026-1", originator_agency=agency, originator_country=country),
                           set(), NOW)
        assert out.dead_reason == "originator", (agency, country)
        assert "Juan" not in out.entry.get("detail", "")


@pytest.mark.parametrize("units", [(), ("DIJIN",), tuple(f"U{i}" for i in range(20))])
def test_a_unit_the_broker_does_not_name_is_dead_lettered(units: tuple[str, ...]) -> None:
    """A relaying agency's units are an allow-list (PUENTE_AGENCY_UNITS): a unit shaped as a code but not named, a
    name the agency system made up (a source's name in capitals), is refused, and the detail quotes only the
    configured units. A relay with none named takes only the agency itself."""
    relay = Originator.of("SNM", "COL", "PAN", units)
    pipe = counted(Pipeline(FakePolicy(), alert_codec(), {"COL": FakeSealer(), "USA": FakeSealer()},  # type: ignore[arg-type]
                            _pipeline({}).origin, SLOTS, originators={**ORIGINATORS, "SNM": relay}))
    for unit in ("JUAN_PEREZ_CC80123456", "ARC", "DIJIN2", "U99"):
        out = pipe.process(_snm_record(f"SNM:COL-{unit}-2026-1", originator_agency=f"COL-{unit}",
                                       originator_country="COL"), set(), NOW)
        assert out.dead_reason == "originator" and not out.feeds, unit
        assert f"COL-{unit}" not in out.entry["detail"].replace("SNM:COL-", "") and unit not in str(out.dead_letter)
        assert "PUENTE_AGENCY_UNITS" in out.entry["detail"]
        assert not units or f"COL-{units[0]}" in out.entry["detail"]
    if len(units) > 8:
        assert f"and {len(units) - 8} more" in out.entry["detail"]
    own = pipe.process(_snm_record("SNM:SCR-00000003", originator_agency="SNM", originator_country="COL"), set(), NOW)
    assert own.dead_reason is None
    for unit in units[:1]:
        ok = pipe.process(_snm_record(f"SNM:COL-{unit}-2026-1", originator_agency=f"COL-{unit}",
                                      originator_country="COL"), set(), NOW)
        assert ok.dead_reason is None


def test_a_relayed_units_alert_id_must_be_in_its_own_series() -> None:
    """A relaying agency's units number their messages in their own series (``SNM:COL-DIJIN-...``, as the
    COMBIFRON adapter writes them): an alert naming one unit under another unit's id, or under no unit's, is
    refused, so no unit can publish a version of another's alert; the agency naming itself is held to no series."""
    relay = Originator.of("SNM", "COL", "PAN", ("DIJIN", "ARC"))
    pipe = counted(Pipeline(FakePolicy(), alert_codec(), {"COL": FakeSealer(), "USA": FakeSealer()},  # type: ignore[arg-type]
                            _pipeline({}).origin, SLOTS, originators={**ORIGINATORS, "SNM": relay}))
    for alert_id in ("SNM:COL-ARC-2026-1", "SNM:SCR-00000002", "SNM:COL-DIJINX-2026-1", "SNM:COL-DIJIN"):
        out = pipe.process(_snm_record(alert_id, originator_agency="COL-DIJIN", originator_country="COL"), set(), NOW)
        assert out.dead_reason == "originator" and "SNM:<unit>-" in out.entry["detail"], alert_id
    own = pipe.process(_snm_record("SNM:SCR-00000002", originator_agency="SNM", originator_country="COL"), set(), NOW)
    assert own.dead_reason is None


def test_a_province_or_border_sector_that_is_no_code_is_dead_lettered() -> None:
    """Free text where a code goes would reach the audit's sector column and the indicators: refused, naming the
    field, never the value."""
    for name in ("province", "border_sector"):
        alert = next(a for a in generate(30, seed=5, now=NOW) if a["agency"] == "SNM")
        alert["location"] = {**(alert.get("location") or {}), name: "Juan Perez Gomez CC 80123456"}
        value = alert_codec().encode(alert)
        rec = Record("t.ingress.SNM", key_partition(alert["alert_id"].encode(), 3), 7, alert["alert_id"].encode(),
                     value, (("published", str(NOW_MS).encode()),), NOW_MS)
        out = _pipeline({"COL": FakeSealer(), "USA": FakeSealer()}).process(rec, set(), NOW)
        assert out.dead_reason == "invalid" and f"location.{name} must be a code" in out.entry["detail"]
        assert "Juan" not in out.entry["detail"]


def test_an_agency_without_a_configured_originator_is_dead_lettered() -> None:
    """No entry for the agency: every alert of it is dead-lettered, naming the setting (fail closed)."""
    pipe = Pipeline(FakePolicy(), alert_codec(), {}, _pipeline({}).origin, SLOTS)  # type: ignore[arg-type]
    out = pipe.process(_snm_record(), set(), NOW)
    assert out.dead_reason == "originator" and "PUENTE_AGENCY_COUNTRIES" in out.entry["detail"]


def test_an_agency_mismatch_quotes_only_a_known_agency() -> None:
    """alert.agency is free text: the dead letter names it only when it is one of the broker's agencies."""
    secret = "Jose Perez Gomez, pasaporte AX1234567"
    for named, shown in ((secret, "another agency"), ("SENAN", "SENAN")):
        alert = next(a for a in generate(30, seed=5, now=NOW) if a["agency"] == "SNM")
        alert["agency"] = named
        value = alert_codec().encode(alert)
        record = Record("t.ingress.SNM", key_partition(alert["alert_id"].encode(), 3), 7,
                        alert["alert_id"].encode(), value, (("published", str(NOW_MS).encode()),), NOW_MS)
        out = _pipeline({}).process(record, set(), NOW)
        assert out.dead_reason == "agency-mismatch" and f"names {shown} as its agency" in out.entry["detail"]
        assert "Perez" not in out.entry["detail"] and "Perez" not in str(out.dead_letter)


@pytest.mark.parametrize(("appended_ms", "window"), [
    (NOW_MS + 600_000, (NOW, NOW + timedelta(minutes=10))),  # Kafka's clock ahead of the worker's: held until then
    (NOW_MS, (NOW, None)),  # the clocks agree: that moment alone
    (NOW_MS - 5_000, (NOW - timedelta(seconds=5), NOW)),  # Kafka's behind (a backlog, or the worker's clock fast)
])
def test_the_decision_holds_between_the_workers_clock_and_kafkas(
        appended_ms: int, window: tuple[datetime, datetime | None]) -> None:
    """The present is between the worker's ``now`` and the latest time Kafka appended a record the pipeline admitted,
    and the policy is asked to decide for every moment between them (``policies.decide``'s ``now`` and ``until``): a
    slow worker clock never delivers past an agreement's end, and a fast one never under an agreement before its
    start."""
    asked: list[tuple[datetime, datetime | None]] = []

    class Recording(FakePolicy):
        def decide_all(self, alert: dict[str, Any], partners: Sequence[str], now: datetime,
                       until: Any = None) -> list[FakeDecision]:
            asked.append((now, until))
            return super().decide_all(alert, partners, now, until)

    record, _ = _record(appended_ms, appended_ms)
    pipe = counted(Pipeline(Recording(), alert_codec(), {"COL": FakeSealer(), "USA": FakeSealer()},  # type: ignore[arg-type]
                            _pipeline({}).origin, SLOTS, originators=ORIGINATORS))
    assert pipe.process(record, set(), NOW).dead_reason is None
    assert asked == [window]
    # Kafka's present is at least the latest time it appended anything admitted: an older record of the same batch
    # (a backlog) is decided as of then too, and a later batch's ``now`` is the window's other end.
    older, _ = _record(NOW_MS - 60_000, NOW_MS - 60_000)
    assert pipe.process(older, set(), NOW).dead_reason is None
    assert asked[-1] == window
    later = NOW + timedelta(hours=1)
    assert pipe.process(older, set(), later).dead_reason is None
    assert asked[-1] == (datetime.fromtimestamp(appended_ms / 1000, UTC), later)
    # A record refused as appended too far ahead moves nothing.
    ahead, _ = _record(NOW_MS + MAX_FUTURE_SKEW_MS + 1, NOW_MS + MAX_FUTURE_SKEW_MS + 1)
    assert pipe.process(ahead, set(), NOW).dead_reason is not None
    assert pipe.process(older, set(), NOW).dead_reason is None
    assert asked[-1] == window


def test_a_fast_worker_clock_delivers_under_no_agreement_before_its_start() -> None:
    """With the real policy: PAN-USA starts 2025-04-01 00:00 in Panama (05:00Z). The window the pipeline asks for a
    record Kafka appended at 04:40Z, decided by a worker whose clock reads 05:10Z, withholds from USA what the
    worker's clock alone delivers, saying it is not yet in force by the earlier clock."""
    from policies import decide, load_policy_set
    from puente.dev.synthetic import generate

    policy = load_policy_set()
    starts = datetime(2025, 4, 1, 5, 0, tzinfo=UTC)
    fast = starts + timedelta(minutes=10)
    alerts = [a for a in generate(400, seed=3, now=starts) if decide(a, "USA", policy, fast).delivers]
    assert alerts
    for alert in alerts:
        early = decide(alert, "USA", policy, starts - timedelta(minutes=20), fast)
        assert not early.delivers
        assert any("not yet in force by the earlier of the decision's two clocks" in r for r in early.reasons), early


@pytest.mark.parametrize("appended_ms", [0, -1, 946_684_799_999])
def test_a_kafka_time_that_is_no_append_time_is_dead_lettered(appended_ms: int) -> None:
    """Ingress topics use LogAppendTime; a record whose Kafka time is 0 or negative (a producer's own, on a topic
    left on CreateTime) with a publication time to match would pass the age check: it is dead-lettered."""
    record, _ = _record(appended_ms, appended_ms)
    out = _pipeline({"COL": FakeSealer(), "USA": FakeSealer()}).process(record, set(), NOW)
    assert out.dead_reason == "stale" and "LogAppendTime" in out.entry["detail"] and not out.feeds


@pytest.mark.parametrize("ahead_ms, ok", [(0, True), (MAX_FUTURE_SKEW_MS, True), (MAX_FUTURE_SKEW_MS + 1, False),
                                          (400 * DAY_MS, False)])
def test_a_kafka_time_ahead_of_the_workers_clock_is_dead_lettered(ahead_ms: int, ok: bool) -> None:
    """A Kafka time (with a publication time to match) far ahead of the worker's clock is no append time either:
    decided, it would move the replay window on and leave the slot's audit head days ahead."""
    record, _ = _record(NOW_MS + ahead_ms, NOW_MS + ahead_ms)
    out = _pipeline({"COL": FakeSealer(), "USA": FakeSealer()}).process(record, set(), NOW)
    assert (out.dead_reason is None) is ok
    if not ok:
        assert out.dead_reason == "stale" and "ahead of this worker's clock" in out.entry["detail"]


def test_a_record_dead_lettered_for_a_time_ahead_leaves_no_time_ahead_in_the_chain() -> None:
    """A dead letter's entry records its Kafka time no later than the clock allows: a slot's audit head with a time
    far ahead is refused when the slot loads again (``head_ahead``), so a record refused for such a time (or any
    record dead-lettered, its time whatever a producer set) must not leave one there."""
    record, _ = _record(NOW_MS + 400 * DAY_MS, NOW_MS + 400 * DAY_MS)
    out = _pipeline({"COL": FakeSealer(), "USA": FakeSealer()}).process(record, set(), NOW)
    assert out.dead_reason == "stale" and out.entry["ingress_ms"] == NOW_MS + MAX_FUTURE_SKEW_MS
    assert head_ahead({"kind": "BLOCK", "entries": [out.entry]}, NOW_MS) is None
    honest, alert = _record(NOW_MS - DAY_MS, NOW_MS - 5)
    replay = _pipeline({}).process(honest, {alert["alert_id"]}, NOW)
    assert replay.dead_reason == "replay" and replay.entry["ingress_ms"] == NOW_MS - 5  # kept as Kafka gave it


@pytest.mark.parametrize("path", ["summary", "payload.person.surnames"])
@pytest.mark.parametrize("marks, count", [("\u0344" * 4, 8), ("\u0f73" * 4, 8), ("\u0344" * 2 + "\u0301", 5),
                                          ("\u0301" + "\u0344" * 2, 5)])
def test_a_run_of_marks_that_decompose_is_dead_lettered_by_its_decomposition(marks: str, count: int,
                                                                             path: str) -> None:
    """A mark that decomposes into two (U+0344 COMBINING GREEK DIALYTIKA TONOS, U+0F73 TIBETAN VOWEL SIGN II) counts
    as two, as it is drawn and as the adapters count it after NFC: four of them on one letter are eight marks and
    dead-lettered, though four code points; so is a run the byte search's five suspects in a row would not find."""
    base = "\u0f40" if "\u0f73" in marks else "a"
    out = _admitted(_set(path, f"Pérez {base}{marks}z"))
    assert out.dead_reason == "invalid" and not out.feeds
    assert f"a run of {count} combining marks on one character" in out.entry["detail"]
    assert "Pérez" not in out.entry["detail"]
    walked = hidden_char({"a": ["C:\\temp", f"Pérez {base}{marks}z"]})  # the walk of the strings counts the same
    assert walked == f"a run of {count} combining marks on one character"


@pytest.mark.parametrize("path", ["summary", "payload.person.surnames"])
@pytest.mark.parametrize("fine", ["a\u0344\u0344 y \u0f40\u0f73", "Pe\u0301rez Go\u0301mez Pen\u0303a",
                                  unicodedata.normalize("NFD", "Nguyễn Thị Phượng")])
def test_decomposed_text_with_up_to_four_marks_a_letter_is_admitted(fine: str, path: str) -> None:
    """Four marks after decomposition, and Spanish or Vietnamese not in NFC (as a publisher other than the adapters
    may send them), are admitted."""
    out = _admitted(_set(path, fine))
    assert out.dead_reason is None and out.feeds


def test_a_record_stamped_by_its_producer_is_stale_whatever_its_time() -> None:
    """An ingress record whose time is its producer's (CreateTime: a topic switched while the broker ran, or
    records appended before it was set back) cannot have its age checked: dead-lettered, however fresh it says it
    is. ``record`` says which a Kafka record is."""
    from types import SimpleNamespace

    from broker.kafka.io import record

    rec = _snm_record()
    out = _pipeline({"COL": FakeSealer(), "USA": FakeSealer()}).process(rec._replace(append_time=False), set(), NOW)
    assert out.dead_reason == "stale" and "its producer's (CreateTime)" in out.entry["detail"]
    assert _pipeline({"COL": FakeSealer(), "USA": FakeSealer()}).process(
        rec._replace(append_time=True), set(), NOW).dead_reason is None
    msg = SimpleNamespace(topic="t", partition=0, offset=1, key=None, value=b"", headers=[], timestamp=5)
    assert record(SimpleNamespace(**vars(msg), timestamp_type=0)).append_time is False
    assert record(SimpleNamespace(**vars(msg), timestamp_type=1)).append_time is True


@pytest.mark.parametrize("years", [1, 30, 99])
def test_review_and_expiry_dates_decades_ahead_are_an_agencys_choice(years: int) -> None:
    """A review or expiry date up to a century ahead is admitted: only impossible ones are refused."""
    ahead = NOW + timedelta(days=365 * years)

    def later(alert: dict[str, Any]) -> None:
        alert["markings"].update(review_at=ahead, expires_at=ahead)

    out = _admitted(later)
    assert out.dead_reason is None and out.feeds
