"""The idempotence ledger keyed by (alert id, version): duplicates skipped, conflicts and older versions refused."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.config import Context
from adapters.ledger import Ledger, Verdict, digest, published_entry, read_ledger
from adapters.lifecycle import own_mac_lookup
from adapters.registry import get
from adapters.run import check
from broker.crypto import sign_ingress
from broker.keystore import Keystore
from broker.pipeline import Originator
from puente.wire import Record
from schemas import AlertCodec, alert_codec, releases
from tests.unit.broker.test_lifecycle import _next
from tests.unit.broker.test_lifecycle_originator import _as, _colombian

HIT: dict[str, Any] = {
    "id_control": "PTY-20261103-00231", "puesto": "PTY", "fecha_hora": "2026-11-03 22:15:03",
    "viajero": {"nombres": "José Luis", "primer_apellido": "Pérez", "fecha_nacimiento": "1988-03-02"},
    "coincidencia": {"lista": "notificación roja", "puntaje": 0.93}, "riesgo": "alto",
}


# SNM's default markings, as a later version states them (it takes no defaults): the same alert as HIT's first.
MARKED: dict[str, Any] = {"clasificacion": "RESTRINGIDO", "difusion": ["COL", "USA", "CRI", "FEAN"],
                          "advertencias": ["PII"], "manejo": "H0", "calificacion": "A2"}


def _line(**changes: Any) -> bytes:
    later = changes.get("revision", 1) > 1 and changes.get("estado") != "ANULADO"
    return json.dumps({**HIT, **({"marcado": MARKED} if later else {}), **changes}, ensure_ascii=False).encode() + b"\n"


def test_the_same_version_with_the_same_content_is_a_duplicate() -> None:
    """A (id, version) published with this digest is skipped; with another digest it is a conflict."""
    ledger = Ledger()
    ledger.add("SNM:A", 1, b"one")
    assert ledger.judge("SNM:A", 1, b"one") is Verdict.DUPLICATE
    assert ledger.judge("SNM:A", 1, b"other") is Verdict.CONFLICT


def test_a_higher_version_is_published_and_an_older_one_refused() -> None:
    """A version above the latest (with or without a gap) is new; one below it that was never published is older;
    an id the ledger never saw is new at any version (its first may be older than the topic)."""
    ledger = Ledger()
    ledger.add("SNM:A", 1, b"v1")
    ledger.add("SNM:A", 3, b"v3")
    assert ledger.latest("SNM:A") == 3 and len(ledger) == 2
    assert ledger.judge("SNM:A", 4, b"v4") is Verdict.NEW
    assert ledger.judge("SNM:A", 7, b"v7") is Verdict.NEW
    assert ledger.judge("SNM:A", 2, b"v2") is Verdict.OLDER
    assert ledger.judge("SNM:A", 1, b"v1") is Verdict.DUPLICATE  # re-reading an old export stays harmless
    assert ledger.judge("SNM:B", 5, b"b5") is Verdict.NEW


def test_nothing_follows_a_recall() -> None:
    """After a recall any later version is refused as recalled (the broker would refuse it too); the recall itself,
    read again, stays a duplicate."""
    ledger = Ledger()
    ledger.add("SNM:A", 1, b"v1")
    ledger.add("SNM:A", 2, b"v2", recalled=True)
    assert ledger.judge("SNM:A", 3, b"v3") is Verdict.RECALLED
    assert ledger.judge("SNM:A", 2, b"v2") is Verdict.DUPLICATE
    assert "recalled in version 2" in ledger.why(Verdict.RECALLED, "SNM:A", 3)


def test_the_messages_say_what_to_do_without_quoting_the_id() -> None:
    """A conflict asks for a higher revision; an older version names the latest; neither quotes the alert id."""
    ledger = Ledger()
    ledger.add("SNM:PA1234567", 2, b"x")
    conflict = ledger.why(Verdict.CONFLICT, "SNM:PA1234567", 2)
    older = ledger.why(Verdict.OLDER, "SNM:PA1234567", 1)
    assert "higher revision" in conflict and "version 2" in older
    assert "PA1234567" not in conflict + older


def test_a_record_on_the_topic_is_read_back_with_its_version(one: Callable[..., dict[str, Any]]) -> None:
    """A current record gives (id, version, digest of its bytes); a v1-written record of the same alert reads as
    version 1 with the digest the current schema would give it, so re-reading its export is a duplicate."""
    codec = alert_codec()
    alert = one("snm", _line())
    value = codec.encode(alert)
    key = alert["alert_id"].encode()
    assert published_entry(codec, key, value) == (alert["alert_id"], 1, digest(value), False, None)
    v1 = AlertCodec(releases()[0]).encode({k: v for k, v in alert.items() if k not in ("version", "lifecycle")})
    assert v1 != value
    assert published_entry(codec, key, v1) == (alert["alert_id"], 1, digest(value), False, None)
    later = one("snm", _line(revision=2, estado="ANULADO", motivo_anulacion="ERROR"))
    assert published_entry(codec, key, codec.encode(later)) == (alert["alert_id"], 2, digest(codec.encode(later)),
                                                                True, None)


def test_what_the_broker_would_refuse_is_not_in_the_ledger(one: Callable[..., dict[str, Any]]) -> None:
    """Bytes that do not decode, and a record keyed by another id, were never published: they are left out."""
    codec = alert_codec()
    alert = one("snm", _line())
    assert published_entry(codec, alert["alert_id"].encode(), b"not avro") is None
    assert published_entry(codec, b"SNM:OTHER", codec.encode(alert)) is None
    assert published_entry(codec, None, codec.encode(alert)) is None


async def test_only_records_that_prove_the_agencys_origin_enter_the_ledger(
        tmp_path: Path, one: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A record on the ingress topic counts only if it proves the agency's origin with the agency's own keys, as
    lifecycle's do: a forged RECALL of the agency's alert id (no origin headers, another agency's MAC, or the
    agency's MAC on an alert naming another agency) is left out and counted as unverified, so the agency's next
    genuine versions are still new, not 'recalled'."""
    site = Keystore.provision(tmp_path, partners=[], agencies=["SNM", "PN"], agreements=[], generation="2026a",
                              now=datetime(2026, 1, 5, tzinfo=UTC))
    snm, pn = site.agencies["SNM"].load_agency_mac("SNM"), site.agencies["PN"].load_agency_mac("PN")
    codec = alert_codec()
    genuine = one("snm", _line())
    alert_id = genuine["alert_id"]
    value = codec.encode(genuine)
    recall = codec.encode(one("snm", _line(revision=2, estado="ANULADO", motivo_anulacion="ERROR")))
    not_snms = codec.encode(dict(genuine, version=3, agency="PN"))

    def on_topic(offset: int, raw: bytes, headers: list[tuple[str, bytes]]) -> Record:
        return Record("t.ingress.SNM", 0, offset, alert_id.encode(), raw, tuple(headers), 0)

    topic = [on_topic(0, value, sign_ingress("SNM", snm.key_id, snm, value, alert_id)),
             on_topic(1, recall, []),
             on_topic(2, recall, sign_ingress("PN", pn.key_id, pn, recall, alert_id)),
             on_topic(3, recall, sign_ingress("SNM", pn.key_id, pn, recall, alert_id)),
             on_topic(4, not_snms, sign_ingress("SNM", snm.key_id, snm, not_snms, alert_id)),
             on_topic(5, b"not avro", sign_ingress("SNM", snm.key_id, snm, b"not avro", alert_id))]

    async def scan(conn: Any, name: str, keep: Callable[[Record], Any], sized: Callable[[int], Any]) -> None:
        sized(1)  # one partition: every record is in its key's
        for rec in topic:
            keep(rec)

    monkeypatch.setattr("adapters.ledger.scan", scan)
    ledger = await read_ledger(None, "t.ingress.SNM", codec, "SNM",  # type: ignore[arg-type]
                               own_mac_lookup(site.agencies["SNM"], "SNM"), Originator.of("SNM", "PAN", "PAN"))
    assert len(ledger) == 1 and ledger.latest(alert_id) == 1
    assert ledger.judge(alert_id, 1, digest(value)) is Verdict.DUPLICATE
    assert ledger.judge(alert_id, 2, b"an update") is Verdict.NEW
    assert ledger.judge(alert_id, 3, b"another") is Verdict.NEW
    assert ledger.unverified == 4  # the undecodable record was never published: left out, not counted


async def test_another_units_copies_of_a_units_alert_are_not_in_the_ledger(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The units COMBIFRON relays share its keys: DIJIN's copies of ARC's id (a version 1 of other content, a recall,
    a version 5), which the broker refuses as ``originator``, are left out and counted as refused, so ARC's own
    version 1 is new, not a conflict, and its version 2 new, neither recalled nor older."""
    site = Keystore.provision(tmp_path, partners=[], agencies=["COMBIFRON"], agreements=[], generation="2026a",
                              now=datetime(2026, 1, 5, tzinfo=UTC))
    mac = site.agencies["COMBIFRON"].load_agency_mac("COMBIFRON")
    codec = alert_codec()
    arc = _colombian()
    alert_id = arc["alert_id"]
    later = _next(arc, "UPDATE")
    later["version"] = 5
    dijin = [_as(dict(arc, summary="otro"), "DIJIN"), _as(_next(arc, "RECALL", reason="ERROR"), "DIJIN"),
             _as(later, "DIJIN")]
    topic = []
    for offset, alert in enumerate(dijin):
        value = codec.encode(alert)
        topic.append(Record("t.ingress.COMBIFRON", 0, offset, alert_id.encode(), value,
                            tuple(sign_ingress("COMBIFRON", mac.key_id, mac, value, alert_id)), 0))

    async def scan(conn: Any, name: str, keep: Callable[[Record], Any], sized: Callable[[int], Any]) -> None:
        sized(1)  # one partition: every record is in its key's
        for rec in topic:
            keep(rec)

    monkeypatch.setattr("adapters.ledger.scan", scan)
    ledger = await read_ledger(None, "t.ingress.COMBIFRON", codec, "COMBIFRON",  # type: ignore[arg-type]
                               own_mac_lookup(site.agencies["COMBIFRON"], "COMBIFRON"),
                               Originator.of("COMBIFRON", "COL", "PAN", ("ARC", "DIJIN")))
    assert len(ledger) == 0 and ledger.refused == 3 and ledger.unverified == 0
    assert ledger.judge(alert_id, 1, digest(codec.encode(arc))) is Verdict.NEW
    assert ledger.judge(alert_id, 2, b"an update") is Verdict.NEW


@pytest.mark.parametrize(("lines", "counts", "reasons"), [
    ([_line(), _line()], (1, 1, 0), {}),
    ([_line(), _line(riesgo="bajo")], (1, 0, 1), {"conflict": 1}),
    ([_line(), _line(revision=2, riesgo="bajo"), _line(revision=3, estado="ANULADO", motivo_anulacion="LEGAL")],
     (3, 0, 0), {}),
    ([_line(revision=3, riesgo="bajo"), _line(revision=2, riesgo="medio")], (1, 0, 1), {"conflict": 1}),
    ([_line(revision=2, estado="ANULADO", motivo_anulacion="ERROR"), _line(revision=3)], (1, 0, 1), {"conflict": 1}),
])
def test_check_holds_a_file_to_the_ledger_rule(ctx_for: Callable[[str], Context], lines: list[bytes],
                                               counts: tuple[int, int, int], reasons: dict[str, int]) -> None:
    """`adapt --check` counts within a file what a run would: duplicates skipped, conflicts and older versions
    rejected, later versions valid."""
    err = io.StringIO()
    tally = check(get("snm"), ctx_for("SNM"), io.BytesIO(b"".join(lines)), "hits.jsonl", err=err)
    assert (tally.published, tally.duplicates, tally.rejected) == counts
    assert dict(tally.reasons) == reasons
    if reasons:
        assert "hits.jsonl:2: conflict:" in err.getvalue()


def test_two_byte_forms_of_one_alert_have_one_digest(one: Callable[..., dict[str, Any]]) -> None:
    """Avro lets an array come as one block or two: a record in the second form holds the same alert, and the
    ledger counts it as the same content (a duplicate), not as a conflicting version."""
    codec = alert_codec()
    alert = one("snm", _line())
    alert = {**alert, "markings": {**alert["markings"], "releasable_to": ["COL", "USA"]}}
    one_block = codec.encode(alert)
    key = alert["alert_id"].encode()
    def with_releasable(*partners: str) -> bytes:
        return codec.encode({**alert, "markings": {**alert["markings"], "releasable_to": list(partners)}})

    at = next(i for i, (x, y) in enumerate(zip(one_block, with_releasable(), strict=False)) if x != y)
    assert one_block[at] == 4  # one block of two items (zig-zag 2), then the items and the closing 0
    item = len(with_releasable("COL")) - len(with_releasable()) - 1  # the bytes of the first item
    two_blocks = one_block[:at] + b"\x02" + one_block[at + 1:at + 1 + item] + b"\x02" + one_block[at + 1 + item:]
    assert codec.decode(two_blocks) == codec.decode(one_block) and two_blocks != one_block
    assert published_entry(codec, key, two_blocks) == published_entry(codec, key, one_block)


COMBI = json.loads((Path(__file__).resolve().parents[3] / "samples" / "combifron"
                    / "mensajes-colombia-2026-11.jsonl").read_bytes().splitlines()[1])
COMBI["restricciones"]["advertencias"] = []  # stated, as a later version must (COMBIFRON's default is none)


def _combi(**changes: Any) -> bytes:
    return json.dumps({**COMBI, **changes}, ensure_ascii=False).encode() + b"\n"


def _after(first: dict[str, Any], *later: dict[str, Any]) -> Ledger:
    """A ledger holding ``first`` and then each of ``later`` as published (read back from the topic)."""
    codec, ledger = alert_codec(), Ledger()
    for alert in (first, *later):
        entry = published_entry(codec, alert["alert_id"].encode(), codec.encode(alert))
        assert entry is not None
        ledger.add(*entry)
    return ledger


def _reclassified(alert: dict[str, Any], **markings: Any) -> dict[str, Any]:
    """The officer's RECLASSIFY of ``alert`` as its version 2."""
    return {**alert, "version": 2, "markings": {**alert["markings"], **markings},
            "lifecycle": {"action": "RECLASSIFY", "reason": None, "partners": []}}


def _judge(ledger: Ledger, alert: dict[str, Any]) -> Verdict:
    return ledger.judge_alert(alert, digest(alert_codec().encode(alert)))


def test_a_recall_after_a_reclassification_or_consent_is_published(one: Callable[..., dict[str, Any]]) -> None:
    """A RECALL exported after an officer's RECLASSIFY, or after a partner's CONSENT, is published whatever
    markings it carries: the broker ignores a recall's content, and refusing it would keep a withdrawn alert."""
    hit = one("snm", _line())
    recall = one("snm", _line(revision=3, estado="ANULADO", motivo_anulacion="ERROR"))
    assert _judge(_after(hit, _reclassified(hit, classification="SECRETO", releasable_to=[])), recall) is Verdict.NEW
    message = one("combifron", _combi())
    consent = one("combifron", _combi(revision=2, accion="CONSENTIMIENTO", consentimiento_nuevo=["USA"]))
    withdrawn = one("combifron", _combi(revision=3, accion="ANULACION", motivo_anulacion="ERROR"))
    assert _judge(_after(message, consent), withdrawn) is Verdict.NEW


def test_a_consent_keeps_the_markings_a_reclassification_set(one: Callable[..., dict[str, Any]]) -> None:
    """A partner's CONSENT after an officer's RECLASSIFY, carrying the partner's original restrictions, would undo
    the reclassification and is refused; one that keeps every held marking and only adds consents is published,
    and one that drops a consent already given is refused."""
    message = one("combifron", _combi())
    officer = _reclassified(message, classification="SECRETO", releasable_to=[])
    consent = one("combifron", _combi(revision=3, accion="CONSENTIMIENTO", consentimiento_nuevo=["USA"]))
    assert _judge(_after(message, officer), consent) is Verdict.UNDOES
    kept = {**consent, "markings": {**consent["markings"], "classification": "SECRETO", "releasable_to": []}}
    assert _judge(_after(message, officer), kept) is Verdict.NEW
    dropped = {**kept, "markings": {**kept["markings"], "originator_consent": ["USA"]}}
    assert message["markings"]["originator_consent"] == ["FEAN"]
    assert _judge(_after(message, officer), dropped) is Verdict.UNDOES


def test_held_markings_in_another_order_are_the_same(one: Callable[..., dict[str, Any]]) -> None:
    """After a CONSENT, a revision listing the same consents, partners and caveats in another order keeps the
    markings and is published; one listing fewer consents is refused."""
    message = one("combifron", _combi())
    consent = one("combifron", _combi(revision=2, accion="CONSENTIMIENTO", consentimiento_nuevo=["USA"]))
    assert consent["markings"]["originator_consent"] == ["FEAN", "USA"]
    update = one("combifron", _combi(revision=3, accion="ACTUALIZACION", resumen="corregido",
                                     restricciones={**COMBI["restricciones"], "consentimiento": ["USA", "FEAN"]}))
    assert _judge(_after(message, consent), update) is Verdict.NEW
    marks = {**consent["markings"], "releasable_to": ["FEAN", "COL"], "caveats": ["B", "A"]}
    officer = {**_reclassified(consent, releasable_to=["COL", "FEAN"], caveats=["A", "B"]), "version": 3}
    later = {**update, "version": 4, "markings": marks}
    assert _judge(_after(message, consent, officer), later) is Verdict.NEW
    fewer = one("combifron", _combi(revision=3, accion="ACTUALIZACION", resumen="corregido"))
    assert _judge(_after(message, consent), fewer) is Verdict.UNDOES


def test_a_version_past_a_bound_is_in_the_ledger_known_by_its_own_bytes(one: Callable[..., dict[str, Any]]) -> None:
    """An officer's RECLASSIFY carrying 65 caveats (one past their bound) is a version, as the broker takes it: its
    digest is that of its bytes (the codec builds none of the caveats), so an export of that version is a
    conflict, and its caveats are held as a list no later export keeps, which is refused as undoing them."""
    codec = alert_codec()
    message = one("combifron", _combi())
    officer = _reclassified(message, caveats=[f"Z{i}" for i in range(65)])
    value = codec.encode(officer)
    entry = published_entry(codec, officer["alert_id"].encode(), value)
    assert entry is not None and entry[:4] == (officer["alert_id"], 2, digest(value), False)
    ledger = _after(message, officer)
    again = one("combifron", _combi(revision=2, accion="ACTUALIZACION", resumen="corregido"))
    assert _judge(ledger, again) is Verdict.CONFLICT
    later = one("combifron", _combi(revision=3, accion="ACTUALIZACION", resumen="corregido"))
    assert _judge(ledger, later) is Verdict.UNDOES
    assert _judge(ledger, {**later, "markings": {**later["markings"], "caveats": []}}) is Verdict.UNDOES
