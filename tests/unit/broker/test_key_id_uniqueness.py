"""The one check every reader's set of keys passes: one public half under one id, one id for one public half."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from broker.crypto import refuse_one_key_two_ids
from broker.crypto.keys import KeyKind, KeyRecord, new_key
from puente.errors import KeyMaterialError

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _as(record: KeyRecord, key_id: str, kind: KeyKind) -> KeyRecord:
    """``record``'s public half filed under ``key_id`` as ``kind``, as a copy made by hand would be."""
    return replace(record.public_only(), key_id=key_id, kind=kind)


def _refused(records: list[KeyRecord]) -> str:
    with pytest.raises(KeyMaterialError) as info:
        refuse_one_key_two_ids(records, "keystore /k/auditor")
    message = str(info.value)
    assert "\n" not in message and message.startswith("keystore /k/auditor: "), message
    return message


def test_a_partners_key_filed_as_the_brokers_is_refused_naming_both_ids() -> None:
    """COL's receipt key also filed as broker-sign-2026b: one line naming both ids and both owners, no key bytes."""
    col = new_key(KeyKind.PARTNER_SIGNING, "COL", "2026a", NOW)
    message = _refused([col.public_only(), _as(col, "broker-sign-2026b", KeyKind.BROKER_SIGNING)])
    assert "COL-rcpt-2026a (COL's)" in message and "broker-sign-2026b (broker's)" in message
    assert "could act as each other" in message
    assert col.public is not None and col.public.hex() not in message


def test_one_key_under_two_generations_of_one_owner_is_refused() -> None:
    """The broker's key under 2026a and 2026b: one id mistyped, and its label would retire the key in use."""
    broker = new_key(KeyKind.BROKER_SIGNING, "broker", "2026a", NOW)
    message = _refused([broker.public_only(), _as(broker, "broker-sign-2026b", KeyKind.BROKER_SIGNING)])
    assert "broker-sign-2026a" in message and "broker-sign-2026b" in message and "mistyped" in message


def test_one_key_filed_as_another_kind_is_still_one_key() -> None:
    """Public halves compare as bytes whatever kind each file calls its key, as the keystore's own checks do."""
    col = new_key(KeyKind.PARTNER_SIGNING, "COL", "2026a", NOW)
    message = _refused([_as(col, "USA-enc-2026a", KeyKind.PARTNER_ENCRYPTION), col.public_only()])
    assert "USA-enc-2026a (USA's)" in message and "COL-rcpt-2026a (COL's)" in message


def test_two_keys_under_one_id_are_refused() -> None:
    """Two files given as broker-sign-2026a holding different keys: the reader would keep whichever came last."""
    first = new_key(KeyKind.BROKER_SIGNING, "broker", "2026a", NOW).public_only()
    other = _as(new_key(KeyKind.BROKER_SIGNING, "broker", "2026a", NOW), "broker-sign-2026a", KeyKind.BROKER_SIGNING)
    assert "two different keys are given as broker-sign-2026a" in _refused([first, other])


def test_one_file_given_twice_and_keys_without_public_halves_pass() -> None:
    """The same key under the same id twice is one key; pseudonym keys have no public half to compare."""
    broker = new_key(KeyKind.BROKER_SIGNING, "broker", "2026a", NOW).public_only()
    pseudonyms = [new_key(KeyKind.PSEUDONYM, "PA-COL-2026", "2026a", NOW),
                  new_key(KeyKind.PSEUDONYM, "PA-USA-2026", "2026a", NOW)]
    refuse_one_key_two_ids([broker, broker, *pseudonyms], "keystore /k/broker")
