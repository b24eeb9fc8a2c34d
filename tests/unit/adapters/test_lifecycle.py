"""An officer's changes as versions: the id's agency, the checks before Kafka, the next version, whose records count."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import adapters.lifecycle as lifecycle
from adapters.config import Context
from adapters.lifecycle import (
    Change,
    Found,
    agency_of,
    changed_markings,
    check_change,
    collect,
    next_of,
    next_version,
    own_mac_lookup,
)
from broker.crypto import KeyKind, sign_ingress
from broker.kafka import KafkaConnection
from broker.keystore import Keystore, Keystores
from broker.pipeline import Originator
from broker.topology import key_partition
from puente.errors import ConfigError
from puente.settings import AGENCIES, PuenteSettings
from puente.wire import Record
from schemas import alert_codec, bounds

PARTNERS = ("COL", "CRI", "FEAN", "USA")
SNM = Originator.of("SNM", "PAN", "PAN")
HIT: dict[str, Any] = {
    "id_control": "PTY-20261103-00231", "puesto": "PTY", "fecha_hora": "2026-11-03 22:15:03",
    "viajero": {"nombres": "José Luis", "primer_apellido": "Pérez", "fecha_nacimiento": "1988-03-02"},
    "coincidencia": {"lista": "notificación roja", "puntaje": 0.93}, "riesgo": "alto",
    "marcado": {"clasificacion": "RESTRINGIDO", "difusion": ["COL", "USA"], "manejo": "H2", "consentimiento": ["COL"]},
}


@pytest.fixture
def hit(one: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """SNM's alert for HIT, version 1, as the broker would decode it."""
    codec = alert_codec()
    return codec.decode(codec.encode(one("snm", json.dumps(HIT, ensure_ascii=False).encode())))


def test_the_agency_is_the_alert_ids_prefix() -> None:
    """SNM:... is SNM's; an id without a known agency prefix is refused before anything is read."""
    assert agency_of("SNM:PTY-20261103-00231", AGENCIES) == "SNM"
    assert agency_of("COMBIFRON:COL-ARC-2026-00412", AGENCIES) == "COMBIFRON"
    for bad in ("PTY-20261103-00231", "XYZ:1", "SNM:", "snm:PTY-1"):
        with pytest.raises(ConfigError, match="SNM:"):
            agency_of(bad, AGENCIES)


def test_changes_are_checked_against_the_policy_first(ctx_for: Callable[[str], Context]) -> None:
    """Reasons, partners and markings the policy does not know are refused; known codes come out canonical."""
    ctx = ctx_for("COMBIFRON")
    assert check_change(Change("RECALL", reason="LEGAL"), ctx, PARTNERS) == Change("RECALL", reason="LEGAL")
    with pytest.raises(ConfigError, match="ERROR, LEGAL"):
        check_change(Change("RECALL", reason="WHIM"), ctx, PARTNERS)
    assert check_change(Change("CONSENT", partners=("usa", "CRI", "USA")), ctx, PARTNERS).partners == ("USA", "CRI")
    with pytest.raises(ConfigError, match=r"--partner VEN: not a partner the policy knows \(known: COL, CRI"):
        check_change(Change("CONSENT", partners=("USA", "VEN")), ctx, PARTNERS)
    checked = check_change(Change("RECLASSIFY", markings={"classification": "reservada", "releasable_to": ["col"],
                                                          "caveats": []}), ctx, PARTNERS)
    assert checked.markings == {"classification": "CONFIDENCIAL", "releasable_to": ["COL"], "caveats": []}
    for bad in ({}, {"classification": "ALTO SECRETO"}, {"handling_code": "H9"}, {"releasable_to": ["VEN"]},
                {"grading": "A1"}):
        with pytest.raises(ConfigError):
            check_change(Change("RECLASSIFY", markings=bad), ctx, PARTNERS)
    with pytest.raises(ConfigError, match="RECALL, CONSENT or RECLASSIFY"):
        check_change(Change("UPDATE"), ctx, PARTNERS)


def test_a_recall_is_the_next_version_with_its_reason(hit: dict[str, Any]) -> None:
    """Version + 1, lifecycle RECALL with the reason, the content otherwise as it was."""
    new = next_version(hit, Change("RECALL", reason="ERROR"))
    assert (new["version"], new["lifecycle"]) == (2, {"action": "RECALL", "reason": "ERROR", "partners": []})
    assert {k: v for k, v in new.items() if k not in ("version", "lifecycle")} == \
        {k: v for k, v in hit.items() if k not in ("version", "lifecycle")}
    assert hit["version"] == 1 and hit["lifecycle"] is None  # the latest version is not changed in place
    with pytest.raises(ConfigError, match=r"recalled in version 2 .*for good"):
        next_version(new, Change("CONSENT", partners=("USA",)))


def test_a_recall_at_the_last_version_is_repeated_there_and_nothing_else_goes_above(hit: dict[str, Any]) -> None:
    """Version 1,000,000 is kept for a recall; a recall there that missed a holder is repeated at that same
    version (there is no higher one), and no other change is made from it or from 999,999."""
    near = {**next_version(hit, Change("RECALL", reason="ERROR")), "version": 999_999,
            "lifecycle": {"action": "RECLASSIFY", "reason": None, "partners": []}}
    with pytest.raises(ConfigError, match="kept for its recall"):
        next_version(near, Change("CONSENT", partners=("USA",)))
    last = next_version(near, Change("RECALL", reason="ERROR"))
    assert (last["version"], last["lifecycle"]["action"]) == (1_000_000, "RECALL")
    again = next_version(last, Change("RECALL", reason="LEGAL"))
    assert again["version"] == 1_000_000
    assert again["lifecycle"] == {"action": "RECALL", "reason": "LEGAL", "partners": []}
    with pytest.raises(ConfigError, match="for good"):
        next_version(last, Change("RECLASSIFY", markings={"classification": "CONFIDENCIAL"}))


def test_a_consent_names_the_partners_and_adds_them_to_the_originators_consent(hit: dict[str, Any]) -> None:
    """The partners go to lifecycle.partners and to markings.originator_consent; one already there is refused."""
    new = next_version(hit, Change("CONSENT", partners=("USA", "CRI")))
    assert new["lifecycle"] == {"action": "CONSENT", "reason": None, "partners": ["USA", "CRI"]}
    assert new["markings"]["originator_consent"] == ["COL", "USA", "CRI"]
    with pytest.raises(ConfigError, match="USA already has the originator's consent"):
        next_version(new, Change("CONSENT", partners=("USA",)))


def test_a_reclassification_changes_the_markings_and_says_which(hit: dict[str, Any]) -> None:
    """The new markings replace the old field by field; the changed ones are reported; no change is refused;
    H3 needs its text and only H3 keeps one."""
    new = next_version(hit, Change("RECLASSIFY", markings={"classification": "CONFIDENCIAL", "releasable_to": []}))
    assert new["lifecycle"] == {"action": "RECLASSIFY", "reason": None, "partners": []}
    assert changed_markings(hit, new) == {"classification": "CONFIDENCIAL", "releasable_to": []}
    assert new["markings"]["caveats"] == hit["markings"]["caveats"]
    with pytest.raises(ConfigError, match="already these"):
        next_version(new, Change("RECLASSIFY", markings={"classification": "CONFIDENCIAL"}))
    with pytest.raises(ConfigError, match="--handling-text"):
        next_version(hit, Change("RECLASSIFY", markings={"handling_code": "H3"}))
    with pytest.raises(ConfigError, match="H3"):
        next_version(hit, Change("RECLASSIFY", markings={"handling_text": "solo para uso policial"}))
    h3 = next_version(hit, Change("RECLASSIFY", markings={"handling_code": "H3", "handling_text": "no judicial"}))
    assert (h3["markings"]["handling_code"], h3["markings"]["handling_text"]) == ("H3", "no judicial")
    back = next_version(h3, Change("RECLASSIFY", markings={"handling_code": "H1"}))
    assert back["version"] == 3 and back["markings"]["handling_text"] is None


def _site(tmp_path: Path) -> Keystores:
    return Keystore.provision(tmp_path, partners=[], agencies=["SNM", "PN"], agreements=[], generation="2026a",
                              now=datetime(2026, 1, 5, tzinfo=UTC))


def publishing(monkeypatch: pytest.MonkeyPatch, publish: Callable[[list[dict[str, Any]]], None]) -> None:
    """The lifecycle commands' ingress publisher replaced: what they publish goes to ``publish``."""
    class Publisher:
        def __init__(self, *_: Any) -> None:
            pass

        async def __aenter__(self) -> Publisher:
            return self

        async def __aexit__(self, *_: Any) -> None:
            pass

        async def publish(self, alerts: list[dict[str, Any]]) -> None:
            publish(alerts)

    monkeypatch.setattr(lifecycle, "IngressPublisher", Publisher)


def stand_ins(monkeypatch: pytest.MonkeyPatch, found: Found) -> list[dict[str, Any]]:
    """The ingress topic read back as ``found``, and the list of what the command then publishes."""
    async def latest(*_: Any) -> Found:
        return found

    published: list[dict[str, Any]] = []
    monkeypatch.setattr(lifecycle, "find_latest", latest)
    publishing(monkeypatch, published.extend)
    return published


def _record(hit: dict[str, Any], offset: int, headers: list[tuple[str, bytes]], key: str | None = None,
            partition: int = 0) -> Record:
    value = alert_codec().encode(hit)
    return Record("t.ingress.SNM", partition, offset, (key or hit["alert_id"]).encode(), value, tuple(headers), 0)


def test_a_version_outside_its_keys_partition_is_never_built_on(tmp_path: Path, hit: dict[str, Any]) -> None:
    """A v2 releasable to more partners, written to another partition than the id's (a wrong partitioner, an explicit
    partition): the broker refused it as misrouted and still holds v1. A consent is built on v1, the copy in the key's
    partition, so it never releases v2's markings; and with only misrouted copies there is nothing to change. A copy
    read before the partition count is known counts for nothing."""
    site = _site(tmp_path)
    mac = site.agencies["SNM"].load_agency_mac("SNM")
    codec, lookup = alert_codec(), own_mac_lookup(site.agencies["SNM"], "SNM")
    home = key_partition(hit["alert_id"].encode(), 3)
    wider = copy.deepcopy(next_version(hit, Change("CONSENT", partners=("USA",))))
    wider["markings"]["releasable_to"] = sorted({*wider["markings"]["releasable_to"], "USA", "CRI"})

    def read(*placed: tuple[dict[str, Any], int], partitions: int = 3) -> Found:
        found = Found(partitions=partitions)
        for offset, (alert, partition) in enumerate(placed):
            signed = sign_ingress("SNM", mac.key_id, mac, codec.encode(alert), alert["alert_id"])
            collect(found, _record(alert, offset, signed, partition=partition), hit["alert_id"], "SNM", lookup,
                    codec, SNM)
        return found

    found = read((hit, home), (wider, (home + 1) % 3))
    assert found.misrouted == 1 and found.alert is not None and found.alert["version"] == 1
    consent = next_of(found, Change("CONSENT", partners=("CRI",)))
    assert consent["version"] == 2 and consent["markings"]["releasable_to"] == hit["markings"]["releasable_to"]
    only_wrong = read((wider, (home + 1) % 3), (hit, (home + 2) % 3))
    assert only_wrong.alert is None and only_wrong.misrouted == 2
    assert read((hit, home), partitions=0).alert is None


def test_only_versions_the_agency_signed_count_and_the_latest_wins(tmp_path: Path, hit: dict[str, Any]) -> None:
    """Records of the id that verify with the agency's own keys, old generations included, are candidates and the
    highest version wins; a record MACed by another agency, or not at all, is counted as unverified."""
    site = _site(tmp_path)
    snm = site.agencies["SNM"]
    old = snm.load_agency_mac("SNM")
    snm.generate(KeyKind.KEY_AGREEMENT, "SNM", generation="2026b", now=datetime(2026, 6, 1, tzinfo=UTC))
    snm.use_agency_key("SNM-kex-2026b")
    new = snm.load_agency_mac("SNM")
    assert new.key_id != old.key_id
    pn = site.agencies["PN"].load_agency_mac("PN")
    codec, found = alert_codec(), Found(partitions=1)
    lookup = own_mac_lookup(snm, "SNM")
    second = next_version(hit, Change("CONSENT", partners=("USA",)))
    third = next_version(second, Change("RECALL", reason="LEGAL"))

    def signed(alert: dict[str, Any], key: Any, agency: str = "SNM") -> list[tuple[str, bytes]]:
        return sign_ingress(agency, key.key_id, key, codec.encode(alert), alert["alert_id"])

    for rec in (_record(hit, 0, signed(hit, old)), _record(second, 1, signed(second, new)),
                _record(third, 2, signed(third, pn, "PN")), _record(third, 3, []),
                _record(hit, 4, signed(hit, new), key="SNM:OTHER")):
        collect(found, rec, hit["alert_id"], "SNM", lookup, codec, SNM)
    assert found.alert is not None and found.alert["version"] == 2 and found.unverified == 2
    assert lookup("PN", pn.key_id) is None and lookup("SNM", "SNM-kex-2026z+broker-kex-2026a") is None


def test_two_copies_of_the_latest_version_with_different_content_are_noted(tmp_path: Path,
                                                                             hit: dict[str, Any]) -> None:
    """Two officers changed version 1 at once: the broker decided the first copy of version 2 it accepted and
    refused the other as a replay. Which it was is not the reader's to guess, so the differing copies are noted
    (``change_alert`` then refuses to build a change on either, which could undo the other); identical copies
    (an agency's replay) and a later, higher version are not a conflict."""
    site = _site(tmp_path)
    mac = site.agencies["SNM"].load_agency_mac("SNM")
    codec = alert_codec()
    lookup = own_mac_lookup(site.agencies["SNM"], "SNM")
    raised = next_version(hit, Change("RECLASSIFY", markings={"classification": "SECRETO"}))
    consented = next_version(hit, Change("CONSENT", partners=("USA",)))

    def read(*alerts: dict[str, Any]) -> Found:
        found = Found(partitions=1)
        for offset, alert in enumerate(alerts):
            signed = sign_ingress("SNM", mac.key_id, mac, codec.encode(alert), alert["alert_id"])
            collect(found, _record(alert, offset, signed), hit["alert_id"], "SNM", lookup, codec, SNM)
        return found

    assert read(hit, raised, consented).differs == (1, 2)
    assert read(hit, raised, raised).differs is None
    assert read(hit, raised, consented, next_version(raised, Change("RECALL", reason="LEGAL"))).differs is None


async def test_a_change_is_not_built_on_a_version_that_breaks_a_content_rule(tmp_path: Path, hit: dict[str, Any],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A version published before a content rule (the bounds, ``schemas.bounds``; hidden characters) breaks it: a
    consent or reclassification built on it would be taken for a version that breaks a rule, withheld from everyone
    and the alert pulled back. It is refused in one line naming the rule, before anything is published; a recall is
    still built."""
    _site(tmp_path / "keys")
    big = copy.deepcopy(hit)
    big["payload"]["match_reason"] = "x" * (bounds.PLACE + 1)
    found = Found(copies=[(0, big)])

    published = stand_ins(monkeypatch, found)
    cfg = PuenteSettings(keys=tmp_path / "keys")
    conn = KafkaConnection(bootstrap="unused:9092")
    with pytest.raises(ConfigError, match="breaks a rule the broker now holds alerts to") as refused:
        await lifecycle.change_alert(cfg, conn, hit["alert_id"], Change("CONSENT", partners=("USA",)))
    assert "payload.match_reason" in str(refused.value) and "x" * 20 not in str(refused.value) and not published
    hidden = copy.deepcopy(hit)  # a version published before hidden characters were refused
    hidden["payload"]["match_reason"] = "caso \u202eodnum"
    found.copies = [(0, hidden)]
    with pytest.raises(ConfigError, match="RIGHT-TO-LEFT OVERRIDE"):
        await lifecycle.change_alert(cfg, conn, hit["alert_id"], Change("RECLASSIFY", markings={"caveats": []}))
    assert not published
    done = await lifecycle.change_alert(cfg, conn, hit["alert_id"], Change("RECALL", reason="ERROR"))
    assert done.action == "RECALL" and len(published) == 1


async def test_a_copy_past_a_bound_takes_a_recall_and_no_other_change(tmp_path: Path, hit: dict[str, Any],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A signed copy whose person holds 6 documents (one past their bound) is found, though the codec built none
    of them: a consent built on it is refused naming the bound, as the broker would withdraw the alert for it, and
    a recall is built and published."""
    site = _site(tmp_path / "keys")
    mac = site.agencies["SNM"].load_agency_mac("SNM")
    codec, found = alert_codec(), Found(partitions=1)
    big = copy.deepcopy(hit)
    big["payload"]["person"]["documents"] = [{"document_type": "PASSPORT", "number": "X1", "issuing_country": "COL",
                                             "expires_on": None}] * (bounds.MAX_DOCUMENTS + 1)
    signed = sign_ingress("SNM", mac.key_id, mac, codec.encode(big), big["alert_id"])
    collect(found, _record(big, 0, signed), hit["alert_id"], "SNM", own_mac_lookup(site.agencies["SNM"], "SNM"),
            codec, SNM)
    assert found.alert is not None and found.alert["payload"]["person"]["documents"] == []

    published = stand_ins(monkeypatch, found)
    cfg = PuenteSettings(keys=tmp_path / "keys")
    conn = KafkaConnection(bootstrap="unused:9092")
    with pytest.raises(ConfigError, match=r"payload\.person\.documents has 6 entries; at most 5 are accepted"):
        await lifecycle.change_alert(cfg, conn, hit["alert_id"], Change("CONSENT", partners=("USA",)))
    assert not published
    done = await lifecycle.change_alert(cfg, conn, hit["alert_id"], Change("RECALL", reason="ERROR"))
    assert done.action == "RECALL" and len(published) == 1


def test_two_copies_past_a_bound_are_the_same_only_byte_for_byte(tmp_path: Path, hit: dict[str, Any]) -> None:
    """A version published twice, each copy with an array past its bound (decoded with it empty), is one version
    when the copies are the same bytes, so the refusal a change meets names the bound, not two contents; copies
    whose bytes differ differ, though what was decoded of them is the same."""
    site = _site(tmp_path / "keys")
    mac = site.agencies["SNM"].load_agency_mac("SNM")
    codec = alert_codec()
    lookup = own_mac_lookup(site.agencies["SNM"], "SNM")

    def copy_with(number: str) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
        big = copy.deepcopy(hit)
        big["payload"]["person"]["documents"] = [{"document_type": "PASSPORT", "number": number,
                                                 "issuing_country": "COL", "expires_on": None}] * 6
        return big, sign_ingress("SNM", mac.key_id, mac, codec.encode(big), big["alert_id"])

    same, other = Found(partitions=1), Found(partitions=1)
    (big, signed), (changed, resigned) = copy_with("X1"), copy_with("X2")
    collect(same, _record(big, 0, signed), hit["alert_id"], "SNM", lookup, codec, SNM)
    collect(same, _record(big, 1, signed), hit["alert_id"], "SNM", lookup, codec, SNM)
    collect(other, _record(big, 0, signed), hit["alert_id"], "SNM", lookup, codec, SNM)
    collect(other, _record(changed, 1, resigned), hit["alert_id"], "SNM", lookup, codec, SNM)
    assert len(same.past_bound) == 2 and same.differs is None
    assert other.differs == (0, 1)
