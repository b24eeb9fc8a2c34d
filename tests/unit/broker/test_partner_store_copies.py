"""Two files answering for one store: a copy of a store's file has its id, and each receipt names the store by it, so a
copy run as another instance would acknowledge a recall while the original still holds the text. The subscriber
refuses a partition whose group offset another instance committed with this store's id from another file; one file
two instances share, a restart, and a backup restored in place under its own instance are taken; ``puente store
new-id`` makes a copy a store of its own, which reads its feed again."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from partner_feed import FEED, BrokerKeys, run_batch, sealed, subscriber
from recall_views import recall_notice

from broker.kafka import TopicPartition
from broker.partner import _Handover, tag_fields
from broker.partner_store import PartnerStore, Retention
from puente.errors import StoreError
from tests.unit.broker.test_partner_handover import _Feed, _Group
from tests.unit.broker.test_partner_store import _view

TP = TopicPartition(FEED, 0)
T0 = datetime.now(UTC) - timedelta(minutes=5)
RETENTION = Retention({"COMBIFRON": 180}, fallback_days=10)


def _copy(store: PartnerStore, to: Path) -> PartnerStore:
    """A byte-for-byte copy of ``store``'s file at ``to`` (as `cp` or a backup makes it), opened."""
    to.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    store.wipe()
    shutil.copyfile(store.path, to)
    to.chmod(0o600)
    return PartnerStore.open(to, "COL", retention=RETENTION)


class _Committing(_Feed):
    """The feed consumer, also noting what it commits (offset and metadata)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.commits: dict[TopicPartition, tuple[int, str]] = {}

    async def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        self.commits.update({tp: (at.offset, at.metadata) for tp, at in offsets.items()})


async def _assign(sub: Any, committed: tuple[int, str]) -> _Committing:
    feed = _Committing(_Group({TP: committed}), {TP}, sub)
    await _Handover(sub, feed).on_partitions_assigned({TP})  # type: ignore[arg-type]
    return feed


async def test_a_copy_of_the_store_run_as_another_instance_is_refused(tmp_path: Path) -> None:
    """Instance main read the partition into its store; a copy of that file, run as instance b, is given the
    partition: it stops (StoreError, one line) naming both ways out, before reading anything."""
    keys = BrokerKeys("2026a")
    original = PartnerStore.open(tmp_path / "a" / "feed.sqlite", "COL", retention=RETENTION)
    main = subscriber(keys, original, lambda: T0)
    await run_batch(main, sealed(keys.sealer("broker-sign-2026a"), _view(), 0, T0))
    copy = _copy(original, tmp_path / "b" / "feed.sqlite")
    assert copy.store_id == original.store_id
    other = subscriber(keys, copy, lambda: T0, instance="b")
    feed = await _assign(other, (1, main.commit_tag))
    refused = other._resume_failed
    assert isinstance(refused, StoreError) and "\n" not in str(refused) and feed.seeks == {}
    assert copy.file_id != original.file_id
    assert "two copies of" in str(refused) and "--instance main" in str(refused)
    assert f"puente store new-id --partner COL --store {copy.path}" in str(refused)
    original.close()
    copy.close()


async def test_one_file_two_instances_share_is_no_copy(tmp_path: Path) -> None:
    """Instances main and b open the same store file (its default place is the partner's, not the instance's): b
    takes the partition main read on as before, reading on from the group's offset."""
    keys = BrokerKeys("2026a")
    path = tmp_path / "a" / "feed.sqlite"
    first, second = (PartnerStore.open(path, "COL", retention=RETENTION) for _ in range(2))
    main = subscriber(keys, first, lambda: T0)
    await run_batch(main, sealed(keys.sealer("broker-sign-2026a"), _view(), 0, T0))
    other = subscriber(keys, second, lambda: T0, instance="b")
    feed = await _assign(other, (1, main.commit_tag))
    assert other._resume_failed is None and feed.seeks == {}
    first.close()
    second.close()


async def test_a_restart_and_a_backup_restored_in_place_are_taken(tmp_path: Path) -> None:
    """The same instance started again on its own file is its own committer; a backup of the file restored in its
    place (another file, the same store) reads again what the group read since, and tags the group's offset with
    its file, so that an instance sharing the restored file is not told it is a copy."""
    keys = BrokerKeys("2026a")
    sealer = keys.sealer("broker-sign-2026a")
    path = tmp_path / "a" / "feed.sqlite"
    store = PartnerStore.open(path, "COL", retention=RETENTION)
    main = subscriber(keys, store, lambda: T0)
    await run_batch(main, sealed(sealer, _view(), 0, T0))
    backup = tmp_path / "backup.sqlite"
    store.wipe()
    shutil.copyfile(path, backup)
    await run_batch(main, sealed(sealer, _view("senan-gofast-seizure"), 1, T0))
    tag = main.commit_tag
    store.close()
    again = PartnerStore.open(path, "COL", retention=RETENTION)
    restarted = subscriber(keys, again, lambda: T0)
    feed = await _assign(restarted, (2, tag))
    assert restarted._resume_failed is None and feed.seeks == {}
    again.close()
    shutil.copyfile(backup, tmp_path / "a" / "restoring")
    (tmp_path / "a" / "restoring").chmod(0o600)
    os.replace(tmp_path / "a" / "restoring", path)  # a new file in its place
    restored = PartnerStore.open(path, "COL", retention=RETENTION)
    main_again = subscriber(keys, restored, lambda: T0)
    feed = await _assign(main_again, (2, tag))
    assert main_again._resume_failed is None and feed.seeks == {TP: 1}  # what the backup lacks, read again
    await main_again._tag_anew(feed)  # type: ignore[arg-type]
    assert feed.commits == {TP: (2, main_again.commit_tag)} and tag_fields(tag)[2] != restored.file_id
    sharing = PartnerStore.open(path, "COL", retention=RETENTION)
    other = subscriber(keys, sharing, lambda: T0, instance="b")
    assert (await _assign(other, feed.commits[TP])).sub._resume_failed is None
    restored.close()
    sharing.close()


async def test_a_copy_given_a_new_id_reads_its_feed_again_as_a_store_of_its_own(tmp_path: Path) -> None:
    """`puente store new-id` on the copy: a new id, no feed position of the original's. Run as instance b, it reads
    the partition from its first record up to the group's offset, receipting under its own id what it holds (V:
    RECEIVED, then its recall: RECALLED), so the auditors wait for its answer too; another alert, W, which the
    original received after the copy, is passed over."""
    keys = BrokerKeys("2026a")
    sealer = keys.sealer("broker-sign-2026a")
    v_view = _view()
    v = sealed(sealer, v_view, 0, T0)
    original = PartnerStore.open(tmp_path / "a" / "feed.sqlite", "COL", retention=RETENTION)
    main = subscriber(keys, original, lambda: T0)
    await run_batch(main, v)
    copy = _copy(original, tmp_path / "b" / "feed.sqlite")
    w = sealed(sealer, _view("senan-gofast-seizure"), 1, T0)
    r = sealed(sealer, recall_notice(v_view, 2, "ERROR"), 2, T0)
    await run_batch(main, w, r)
    old, new = copy.new_id()
    assert old == original.store_id and copy.store_id == new != old
    assert copy.feed_offset(FEED, 0) is None and copy.catch_up(FEED, 0) == (0, 1)
    notes: list[str] = []
    other = subscriber(keys, copy, lambda: T0, notes=notes, instance="b")
    feed = await _assign(other, (3, main.commit_tag))
    assert other._resume_failed is None and feed.seeks == {TP: 0} and "new-id" in notes[-1]
    _, receipts = await run_batch(other, v, w, r)
    assert receipts.statuses() == ["RECEIVED", "RECALLED"] and receipts.offsets == {TP: 3}
    assert {x["store"] for x in receipts.sent if x["kind"] == "RECEIPT"} == {new}
    assert copy.show(v_view["alert_id"]).state == "RECALLED" and copy.catch_up(FEED, 0) is None
    original.close()
    copy.close()


@pytest.mark.parametrize(("tag", "fields"), [
    ("main|" + "a" * 32 + "|0123456789abcdef", ("main", "a" * 32, "0123456789abcdef")),
    ("main|" + "a" * 32, ("main", "a" * 32, "")),  # an earlier Puente named no file: never taken for a copy
    ("", ("", "", "")),
])
def test_a_commit_tag_names_instance_store_and_file(tag: str, fields: tuple[str, str, str]) -> None:
    """``tag_fields`` reads the metadata of a committed feed offset, whichever Puente wrote it."""
    assert tag_fields(tag) == fields
