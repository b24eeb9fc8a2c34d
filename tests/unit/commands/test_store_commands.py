"""`puente store`: a --store that is no partner store is refused in one line and left as it was; a read never shows
what the partner may no longer keep."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from partner_feed import ms

import puente.commands.store as store
from broker.partner_store import Delivery, PartnerStore, default_store_path
from puente.cli import build_parser
from puente.errors import StoreError
from tests.unit.broker.test_partner_store import _view


@pytest.mark.parametrize("kind", ["accounts", "empty"])
def test_store_list_refuses_a_file_that_is_no_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    kind: str) -> None:
    """`store list --store acc.sqlite` on the console accounts (or an empty file) exits with a StoreError (status 3)
    naming the file and --store, never "0 of 0 alert(s)"; the file's bytes are unchanged and no WAL is left."""
    monkeypatch.setattr(store, "settings", lambda args: SimpleNamespace(keys=tmp_path / "keys", policy_dir=None))
    path = tmp_path / "acc.sqlite"
    if kind == "accounts":
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE accounts (name TEXT PRIMARY KEY)")
        conn.execute("CREATE TABLE sessions (token_sha256 TEXT PRIMARY KEY)")
        conn.commit()
        conn.close()
    else:
        path.touch()
    path.chmod(0o600)
    before = path.read_bytes()
    args = build_parser().parse_args(["store", "list", "--partner", "COL", "--store", str(path)])
    with pytest.raises(StoreError, match=r"acc\.sqlite is not a partner store \(.*\): check --store") as raised:
        args.func(args)
    assert raised.value.exit_code == 3 and "\n" not in str(raised.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acc.sqlite"]


def _held_past_their_time(keys: Path, vouched: timedelta = timedelta(0)) -> tuple[str, str]:
    """A store holding two alerts no purge has run over: one past its expiry, one past its agreement's retention
    (COMBIFRON, 180 days, from its first receipt: ten minutes ago), and the last time Kafka vouched for (its
    subscriber's last batch), ``vouched`` ago. Their ids."""
    now = datetime.now(UTC)
    expired = _view(summary="EXPIRED-SECRET-TEXT")
    expired["markings"] = {**expired["markings"], "expires_at": now - timedelta(days=1), "review_at": None}
    kept_too_long = _view("senan-gofast-seizure", summary="RETENTION-PASSED-TEXT")
    with PartnerStore.open(default_store_path(keys, "COL"), "COL") as held:
        held.apply(Delivery.of(expired, "t.feed.COL:0:0", "COMBIFRON"), now - timedelta(days=2))
        held.apply(Delivery.of(kept_too_long, "t.feed.COL:0:1", "COMBIFRON"), now - timedelta(days=180, minutes=10))
        held.keep_kafka_time(ms(now - vouched))
        assert held.counts().held == 2
    return expired["alert_id"], kept_too_long["alert_id"]


@pytest.mark.parametrize("action", ["list", "show"])
def test_reading_the_store_never_shows_what_should_have_been_purged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], action: str) -> None:
    """`store list` and `store show` purge first, with the partner's retention, as the subscriber does: an alert
    past its expiry or its agreement's retention reads as purged, never as held with its text, whenever the last
    purge ran."""
    keys = tmp_path / "keys"
    monkeypatch.setattr(store, "settings", lambda args: SimpleNamespace(keys=keys, policy_dir=None))
    ids = _held_past_their_time(keys)
    outputs = []
    for alert_id in ids if action == "show" else ids[:1]:
        argv = ["store", action, "--partner", "COL"] + ([alert_id] if action == "show" else [])
        args = build_parser().parse_args(argv)
        assert args.func(args) == 0
        outputs.append(capsys.readouterr())
    out = "".join(o.out for o in outputs)
    assert "SECRET-TEXT" not in out and "RETENTION-PASSED-TEXT" not in out and '"payload"' not in out
    assert " held" not in out and "purged" in out
    assert "purged 2 alert(s)" in outputs[0].err and "1 past their expiry and 1 past the agreement's" in outputs[0].err
    with PartnerStore.open(default_store_path(keys, "COL"), "COL") as after:
        assert (after.counts().held, after.counts().purged) == (0, 2)


FORGED_ROW = "SENAFRONT:X\n2026-12-05 10:00  SENAFRONT:BD-2025-9999  BORDER_EVENT  9  COMBIFRON  -  -  recalled (error)"


@pytest.mark.parametrize("action", ["list", "show"])
def test_an_id_holding_a_line_feed_prints_on_its_own_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], action: str) -> None:
    """Every field `store list` and `store show` print stays on its line (``one_line``): an alert id or agreement
    holding a line feed (a store written before the subscriber refused such ids) forges no row of its own."""
    keys = tmp_path / "keys"
    monkeypatch.setattr(store, "settings", lambda args: SimpleNamespace(keys=keys, policy_dir=None))
    view = _view()
    delivery = Delivery.of(view, "t.feed.COL:0:0", "COMBIFRON")
    with PartnerStore.open(default_store_path(keys, "COL"), "COL") as held:
        held.apply(replace(delivery, alert_id=FORGED_ROW, agreement="COMBIFRON\nX"), datetime.now(UTC))
    args = build_parser().parse_args(["store", action, "--partner", "COL"] + ([FORGED_ROW] if action == "show" else []))
    assert args.func(args) == 0
    out = capsys.readouterr().out
    if action == "list":
        assert len(out.splitlines()) == 2  # the header and one row
    else:
        escaped = FORGED_ROW.replace("\n", "\\n")
        assert out.splitlines()[0] == f"alert      {escaped} (BORDER_EVENT), version 1"
        assert "agreement  COMBIFRON\\nX" in out
    lines = out.splitlines()
    assert "SENAFRONT:X\\n2026-12-05" in out and not any(line.startswith("2026-12-05 10:00") for line in lines)


@pytest.mark.parametrize("action", ["list", "purge"])
def test_a_clock_running_ahead_purges_nothing_past_what_kafka_vouched_for(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], action: str) -> None:
    """`store list` and `store purge` reach no Kafka: the last time Kafka vouched for, which the store keeps, is 200
    days behind this host's clock (that clock runs ahead, or the subscriber has not run since). Nothing past it and
    the skew is purged, for good, by this clock alone: both alerts stay held, and one line says so, naming the clock
    to check and the run of `puente subscribe` that has Kafka vouch for the time. `purge` then exits 5, not 0: not
    everything it was asked to do was done (`list` only reads)."""
    keys = tmp_path / "keys"
    monkeypatch.setattr(store, "settings", lambda args: SimpleNamespace(keys=keys, policy_dir=None))
    _held_past_their_time(keys, vouched=timedelta(days=200))
    args = build_parser().parse_args(["store", action, "--partner", "COL"])
    assert args.func(args) == (5 if action == "purge" else 0)
    err = capsys.readouterr().err
    note = next(line for line in err.splitlines() if "were not purged" in line)
    assert "2 alert(s)" in note and "last time Kafka vouched for" in note and "NTP" in note
    assert "a run of `puente subscribe --partner COL` has Kafka vouch for the time" in note
    assert "purged 2" not in err
    with PartnerStore.open(default_store_path(keys, "COL"), "COL") as after:
        assert (after.counts().held, after.counts().purged) == (2, 0)


def test_a_purge_holding_nothing_back_exits_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`store purge` with Kafka's time recent purges both alerts past their time and exits 0: nothing held back."""
    keys = tmp_path / "keys"
    monkeypatch.setattr(store, "settings", lambda args: SimpleNamespace(keys=keys, policy_dir=None))
    _held_past_their_time(keys)
    args = build_parser().parse_args(["store", "purge", "--partner", "COL"])
    assert args.func(args) == 0
    with PartnerStore.open(default_store_path(keys, "COL"), "COL") as after:
        assert (after.counts().held, after.counts().purged) == (0, 2)


@pytest.mark.parametrize("vouched", [timedelta(days=200), None])
def test_a_partner_cut_off_from_kafka_purges_by_its_host_clock_when_told(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        vouched: timedelta | None) -> None:
    """`store purge --by-host-clock` (a partner that can no longer reach Kafka: its last vouched-for time 200 days
    old, or none kept) purges both alerts past their time by this host's clock alone, says so in one line with the
    time used, exits 0, and leaves the time Kafka vouched for as it was."""
    keys = tmp_path / "keys"
    monkeypatch.setattr(store, "settings", lambda args: SimpleNamespace(keys=keys, policy_dir=None))
    _held_past_their_time(keys, vouched=vouched or timedelta(0))
    path = default_store_path(keys, "COL")
    if vouched is None:
        with PartnerStore.open(path, "COL") as held, held.transaction():
            held._conn.execute("DELETE FROM meta WHERE key = 'kafka-time'")
    with PartnerStore.open(path, "COL") as before:
        kept = before.kafka_time()
    assert (kept is None) is (vouched is None)
    args = build_parser().parse_args(["store", "purge", "--partner", "COL", "--by-host-clock"])
    assert args.func(args) == 0
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if "host's clock alone" in line]
    assert len(said) == 1 and re.search(r"as of \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", said[0])
    assert "were not purged" not in err
    with PartnerStore.open(path, "COL") as after:
        assert (after.counts().held, after.counts().purged) == (0, 2) and after.kafka_time() == kept


def test_show_prints_no_text_of_an_alert_a_purge_held_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`store show` of an alert past its retention by this host's clock that the purge held back (Kafka's time 200
    days old) prints none of its text: one line saying what settles it, exit 5."""
    keys = tmp_path / "keys"
    monkeypatch.setattr(store, "settings", lambda args: SimpleNamespace(keys=keys, policy_dir=None))
    _, kept_too_long = _held_past_their_time(keys, vouched=timedelta(days=200))
    args = build_parser().parse_args(["store", "show", "--partner", "COL", kept_too_long])
    assert args.func(args) == 5
    said = capsys.readouterr()
    assert "RETENTION-PASSED-TEXT" not in said.out and '"payload"' not in said.out
    line = next(line for line in said.err.splitlines() if "its text is not shown" in line)
    assert "puente subscribe --partner COL" in line and "--by-host-clock" in line
