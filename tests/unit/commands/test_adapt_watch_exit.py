"""`puente adapt --watch`'s exit status: a file left unfinished is never an exit 0, and a rejection already on the
dead-letter topic still counts as one."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from adapters.registry import get
from adapters.run import Tally
from puente.cli import build_parser
from puente.commands import adapt
from puente.errors import EXIT_CONFIG


def _watched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, total: Tally) -> int:
    """Run `puente adapt snm --watch DIR --exit-when-idle 0` with a watch that ends with ``total``, without Kafka."""

    class _Run:
        def __init__(self, *args: Any) -> None:
            pass

        async def __aenter__(self) -> _Run:
            return self

        async def __aexit__(self, *exc: Any) -> None:
            return None

    async def watching(*args: Any, **kwargs: Any) -> Tally:
        return total

    monkeypatch.setattr(adapt, "settings", lambda args: SimpleNamespace(log_level="INFO", log_format="text"))
    monkeypatch.setattr(adapt, "_context", lambda args, cfg: (get("snm"), None))
    monkeypatch.setattr(adapt, "kafka", lambda cfg, name: None)
    monkeypatch.setattr(adapt.logs, "configure", lambda *args: None)
    monkeypatch.setattr(adapt, "on_stop_signals", lambda *args: None)
    monkeypatch.setattr(adapt, "AdapterRun", _Run)
    monkeypatch.setattr(adapt, "watching", watching)
    args = build_parser().parse_args(["adapt", "snm", "--watch", str(tmp_path), "--exit-when-idle", "0"])
    return int(args.func(args))


def test_a_watch_that_left_a_file_unfinished_exits_3_saying_what_to_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A file whose read failed partway and still failed at the stop: exit 3 (input not all read, as `puente adapt
    FILE` on a file failing mid-read), the total naming it, and the operator told what to do. Before, exit 0."""
    total = Tally(read=3, published=3, unfinished=1)
    assert _watched(tmp_path, monkeypatch, total) == EXIT_CONFIG
    out, err = capsys.readouterr()
    assert "files left unfinished 1 (reading failed partway)" in out
    assert "1 file(s) in" in err and "left unfinished" in err and "run the watcher again" in err
    assert "Do what each one's line above says" in err and "Check the folder's disk or share" not in err


@pytest.mark.parametrize(("total", "status"), [(Tally(read=2, published=2), 0),
                                               (Tally(read=2, published=1, rejected=1), 1),
                                               (Tally(read=2, published=1, already_rejected=1), 1)])
def test_a_watch_exits_1_for_a_rejection_new_or_already_on_the_topic(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, total: Tally, status: int) -> None:
    """All published: 0; a bad record, whether this run dead-lettered it or an earlier one had: 1."""
    assert _watched(tmp_path, monkeypatch, total) == status
