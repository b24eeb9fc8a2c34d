"""A subscriber does not continue its receipt chain from a head signed by a key the chain had moved on from.

Old receipt-key generations stay beside the new one so the old checkpoints still verify; a leaked old key could
then sign a checkpoint after the real head, and the next subscriber would sign over it. The checkpoint the
partner's store saw committed last tells which key the chain had reached.
"""

from __future__ import annotations

import hashlib
import hmac
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.audit import ChainWriter
from broker.audit.verify import head_problem
from broker.crypto import sign_checkpoint
from broker.crypto.keys import KeyKind, new_key
from broker.kafka import KafkaConnection
from broker.keystore import Holder, Keystore
from broker.partner import ReceiptSigner, Subscriber, receipt_signer
from puente.errors import KeyMaterialError
from puente.wire import Record

SIGNED_AT = "2026-11-01T00:00:00Z"  # a checkpoint's time: in UTC, as subscribers write it (audit verify checks it)
KEY = b"k" * 32
NEW, OLD = "COL-rcpt-2026b", "COL-rcpt-2026a"
TOPIC = "t.receipts.COL"


def _sign(payload: bytes) -> bytes:
    # 64 bytes, as an Ed25519 signature: a record's sig must be exactly 128 lowercase hex digits
    return hmac.new(KEY, payload, hashlib.sha512).digest()


def _verify(signer: str, payload: bytes, sig: bytes) -> bool:
    return signer in (NEW, OLD) and hmac.compare_digest(_sign(payload), sig)


def _subscriber(key_id: str = NEW) -> Subscriber:
    signer = ReceiptSigner(key_id, _sign, _verify, (NEW, OLD))
    return Subscriber(KafkaConnection(bootstrap="unused:9092"), "COL", "t.feed.COL", TOPIC,
                      object(), object(), signer=signer)  # type: ignore[arg-type]


def _checkpoints(*signers: str) -> list[Record]:
    writer = ChainWriter(TOPIC, 0, checkpoint_every=1 << 62, chain="COL")
    out = []
    for offset, signer in enumerate(signers):
        writer.append("RECEIPT", {"partner": "COL", "alert_id": f"SNM:{offset}", "status": "RECEIVED"})
        out.append(Record(TOPIC, 0, offset, b"COL", writer.checkpoint(signer, _sign, SIGNED_AT), (), 0))
    return out


def test_a_head_signed_by_a_key_older_than_the_kept_checkpoints_is_refused() -> None:
    kept, head = _checkpoints(NEW, OLD)
    problem = _subscriber()._signed_by_a_retired_key(0, head, kept)
    assert problem is not None and "moved on from" in problem and NEW in problem


def test_a_rotation_and_a_kept_record_that_is_no_checkpoint_of_the_chain_pass() -> None:
    kept, head = _checkpoints(OLD, NEW)
    assert _subscriber()._signed_by_a_retired_key(0, head, kept) is None  # the key rotated forward
    kept, head = _checkpoints(NEW, OLD)
    forged = Record(TOPIC, 0, kept.offset, b"COL", kept.value.replace(b'"sig":"', b'"sig":"00', 1), (), 0)
    assert _subscriber()._signed_by_a_retired_key(0, head, forged) is None  # names NEW, but NEW did not sign it


def test_a_head_signed_by_a_newer_generation_than_the_signers_is_refused() -> None:
    """A subscriber signing with COL-rcpt-2026a does not extend a chain whose head 2026b signed: its receipts would be
    a retired key in use to the auditors. Signing with the newest, or over an older head, goes on."""
    (head,) = _checkpoints(NEW)
    problem = _subscriber(OLD)._signed_by_a_newer_key(head)
    assert problem is not None and NEW in problem and OLD in problem and "newer generation" in problem
    assert _subscriber(NEW)._signed_by_a_newer_key(head) is None
    (older,) = _checkpoints(OLD)
    assert _subscriber(NEW)._signed_by_a_newer_key(older) is None


def test_a_sign_key_older_than_the_newest_beside_it_is_refused(tmp_path: Path) -> None:
    """--sign-key naming COL's 2026a receipt key while 2026b is beside it is refused in one line naming the newer
    key's file; the newest, given or by default, signs."""
    col = Keystore(tmp_path / "COL")
    made = datetime(2026, 1, 5, tzinfo=UTC)
    col.generate_own(Holder.PARTNER, "COL", generation="2026a", now=made)
    col.generate_own(Holder.PARTNER, "COL", generation="2026b", now=made + timedelta(days=90))
    key = col.path / "COL-enc-2026b.json"
    with pytest.raises(KeyMaterialError) as info:
        receipt_signer("COL", key, col.path / "COL-rcpt-2026a.json")
    message = str(info.value)
    assert "\n" not in message and str(col.path / "COL-rcpt-2026b.json") in message and "newer generation" in message
    assert receipt_signer("COL", key, col.path / "COL-rcpt-2026b.json").key_id == NEW
    assert receipt_signer("COL", key, None).key_id == NEW


def test_a_receipt_key_made_last_whose_label_comes_before_an_older_ones_signs_nothing(tmp_path: Path) -> None:
    """COL-rcpt-2026dec made after 2026nov (a folder filled by hand: `keys generate` refuses it): the auditors order
    receipt keys by label, so every receipt it signed would be a retired key's and not count. The subscriber refuses
    to sign, in one line naming both and what to do; a generation after both signs."""
    col = Keystore(tmp_path / "COL")
    made = datetime(2026, 1, 5, tzinfo=UTC)
    col.generate_own(Holder.PARTNER, "COL", generation="2026nov", now=made)
    col.put(new_key(KeyKind.PARTNER_SIGNING, "COL", "2026dec", made + timedelta(days=30)))
    key = col.path / "COL-enc-2026nov.json"
    with pytest.raises(KeyMaterialError) as info:
        receipt_signer("COL", key, None)
    message = str(info.value)
    assert "\n" not in message and "COL-rcpt-2026dec, made last" in message
    assert "COL-rcpt-2026nov's generation" in message and "--for partner COL" in message
    col.put(new_key(KeyKind.PARTNER_SIGNING, "COL", "2027a", made + timedelta(days=60)))
    assert receipt_signer("COL", key, None).key_id == "COL-rcpt-2027a"


def test_an_old_sign_key_copied_alone_into_another_folder_is_refused(tmp_path: Path) -> None:
    """COL's 2026a receipt key copied alone into a folder of its own, 2026b beside the decryption key: refused in
    one line naming the newer key's file. The newest, copied alone, signs, and knows the older one in the other
    folder, so a chain head the older key signed ranks below it."""
    col = Keystore(tmp_path / "COL")
    made = datetime(2026, 1, 5, tzinfo=UTC)
    col.generate_own(Holder.PARTNER, "COL", generation="2026a", now=made)
    col.generate_own(Holder.PARTNER, "COL", generation="2026b", now=made + timedelta(days=90))
    key = col.path / "COL-enc-2026b.json"
    for key_id in (OLD, NEW):
        other = tmp_path / key_id
        other.mkdir(mode=0o700)
        shutil.copy(col.path / f"{key_id}.json", other / f"{key_id}.json")
        (other / f"{key_id}.json").chmod(0o600)
    with pytest.raises(KeyMaterialError) as info:
        receipt_signer("COL", key, tmp_path / OLD / f"{OLD}.json")
    message = str(info.value)
    assert "\n" not in message and str(col.path / f"{NEW}.json") in message and "newer generation" in message
    signer = receipt_signer("COL", key, tmp_path / NEW / f"{NEW}.json")
    assert signer.key_id == NEW and signer.generations == (NEW, OLD)


def test_one_receipt_key_id_held_as_two_keys_is_refused(tmp_path: Path) -> None:
    """The --sign-key folder holding a different key under the id of one beside the decryption key: which is COL's,
    nothing says, so neither signs."""
    col, other = Keystore(tmp_path / "COL"), Keystore(tmp_path / "other")
    made = datetime(2026, 1, 5, tzinfo=UTC)
    col.generate_own(Holder.PARTNER, "COL", generation="2026a", now=made)
    other.generate_own(Holder.PARTNER, "COL", generation="2026a", now=made)
    with pytest.raises(KeyMaterialError, match="two different keys as COL-rcpt-2026a"):
        receipt_signer("COL", col.path / "COL-enc-2026a.json", other.path / f"{OLD}.json")


def test_an_older_receipt_key_kept_as_its_public_half_only_does_not_sign(tmp_path: Path) -> None:
    """COL made 2026b, deleted 2026a's private half and imported its public half back, to verify what 2026a signed:
    the imported half is dated when it was imported, yet the newest key held whole signs, by default or given, and
    the older one's checkpoints still verify."""
    col = Keystore(tmp_path / "COL")
    made = datetime(2026, 1, 5, tzinfo=UTC)
    col.generate_own(Holder.PARTNER, "COL", generation="2026a", now=made)
    col.generate_own(Holder.PARTNER, "COL", generation="2026b", now=made + timedelta(days=90))
    pem = col.public_pem(OLD)
    (col.path / f"{OLD}.json").unlink()
    col.import_public(pem, OLD, source="backup", now=made + timedelta(days=120))
    assert col.load_receipt_key("COL").key_id == NEW
    key = col.path / "COL-enc-2026b.json"
    for sign_file in (None, col.path / f"{NEW}.json"):
        signer = receipt_signer("COL", key, sign_file)
        assert signer.key_id == NEW and set(signer.generations) == {OLD, NEW}


def test_a_chain_head_signed_by_a_key_not_held_says_so() -> None:
    """A head signed by a generation whose key is not held (its file removed too early) is named as a key not held,
    what to do with it, not as a signature that fails, which reads as someone else's record."""
    (head,) = _checkpoints(OLD)
    problem = head_problem(TOPIC, 0, head.value, "COL", _verify, (NEW,))
    assert problem is not None and f"signed by {OLD}, which this keystore does not hold" in problem
    assert "import-public" in problem
    assert head_problem(TOPIC, 0, head.value, "COL", _verify, (OLD, NEW)) is None


def test_receipt_keys_rank_by_label_whatever_halves_are_held(tmp_path: Path) -> None:
    """2026a kept whole, 2026b's private half removed and its public half imported back, 2026c signing: the keys
    rank by label (as the auditors rank them), not by which halves are held, so a leaked 2026a signing after
    2026b's checkpoint is a retired key in use, and an honest rotation from 2026a to 2026b is not."""
    col = Keystore(tmp_path / "COL")
    made = datetime(2026, 1, 5, tzinfo=UTC)
    for i, generation in enumerate(("2026a", "2026b", "2026c")):
        col.generate_own(Holder.PARTNER, "COL", generation=generation, now=made + timedelta(days=90 * i))
    a, b = "COL-rcpt-2026a", "COL-rcpt-2026b"
    private = {k: col.load(k, KeyKind.PARTNER_SIGNING).ed25519_private() for k in (a, b)}
    pem = col.public_pem(b)
    (col.path / f"{b}.json").unlink()
    col.import_public(pem, b, source="backup", now=made + timedelta(days=300))
    signer = receipt_signer("COL", col.path / "COL-enc-2026c.json", None)
    sub = Subscriber(KafkaConnection(bootstrap="unused:9092"), "COL", "t.feed.COL", TOPIC, object(), object(),
                     signer=signer)  # type: ignore[arg-type]

    def chain(*signers: str) -> list[Record]:
        writer = ChainWriter(TOPIC, 0, checkpoint_every=1 << 62, chain="COL")
        out = []
        for offset, key_id in enumerate(signers):
            writer.append("RECEIPT", {"partner": "COL", "alert_id": f"SNM:{offset}", "status": "RECEIVED"})
            signed = writer.checkpoint(key_id, lambda p, k=key_id: sign_checkpoint(private[k], p), SIGNED_AT)
            out.append(Record(TOPIC, 0, offset, b"COL", signed, (), 0))
        return out

    kept, head = chain(b, a)
    assert "moved on from" in (sub._signed_by_a_retired_key(0, head, kept) or "")
    kept, head = chain(a, b)
    assert sub._signed_by_a_retired_key(0, head, kept) is None
    assert sub._signed_by_a_newer_key(head) is None and signer.key_id == "COL-rcpt-2026c"
