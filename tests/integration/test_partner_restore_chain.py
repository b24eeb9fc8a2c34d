"""A store restored from a backup reads its receipt chain from the head it kept: the chain runs past it (Kafka keeps
what the backup lost), and the feed records the newer receipts answered are kept as a re-read, marked passed on as they
are applied again (``Subscriber._behind_chain``), whatever the group's offsets say."""

from __future__ import annotations

from pathlib import Path

from puente_testing import Env
from recall_views import recall_notice

from broker.partner_store import PartnerStore
from tests.integration.test_partner_store import PARTNER, SECRET, Feed, _receipts, _subscribe, _view


async def test_a_restored_store_keeps_what_its_chain_receipted_since_as_a_reread(env: Env, tmp_path: Path) -> None:
    seizure = _view("senan-gofast-seizure", summary=f"Lancha rápida, capitán {SECRET}")
    store_path, backup = tmp_path / "partner" / "feed.sqlite", tmp_path / "backup"
    store_path.parent.mkdir(mode=0o700)
    async with Feed(env, PARTNER) as feed:
        await feed.send(_view("darien-armed-group-sighting"))
    first = _subscribe(env, "--store", str(store_path))
    assert first.returncode == 0, first.stderr[-2000:]
    backup.mkdir()
    for part in store_path.parent.glob(store_path.name + "*"):
        (backup / part.name).write_bytes(part.read_bytes())
    async with Feed(env, PARTNER) as feed:
        where = await feed.send(seizure)
    copied = _subscribe(env, "--store", str(store_path), "--out", str(tmp_path / "copy.jsonl"))
    assert copied.returncode == 0, copied.stderr[-2000:]
    assert SECRET in (tmp_path / "copy.jsonl").read_text()
    for part in store_path.parent.glob(store_path.name + "*"):
        part.unlink()
    for part in backup.iterdir():
        (store_path.parent / part.name).write_bytes(part.read_bytes())
        (store_path.parent / part.name).chmod(0o600)
    async with Feed(env, PARTNER) as feed:
        recall = await feed.send(recall_notice(seizure, 2, "SOURCE_PROTECTION"), "RECALL")
    restored = _subscribe(env, "--store", str(store_path))
    assert restored.returncode == 0, restored.stderr[-2000:]
    assert "runs past the head it kept" in restored.stderr, restored.stderr[-3000:]
    partition = int(where.split(":")[1])
    with PartnerStore.open(store_path, PARTNER, create=False) as store:
        assert store.show(seizure["alert_id"]).state == "RECALLED"
        assert store.reread(where.split(":")[0], partition) is None  # confirmed past its end: over
    statuses = [r["status"] for r in await _receipts(env, PARTNER) if r.get("feed") == recall]
    assert statuses == ["RECALL_PASSED_ON"]
