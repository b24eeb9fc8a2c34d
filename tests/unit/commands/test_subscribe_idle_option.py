"""`puente subscribe --exit-when-idle SECONDS`: the quiet time a run without --follow ends after, once caught up;
a positive number of seconds, never with --follow, 2 s when not given; the subscriber runs with what was parsed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import puente.commands.subscribe as subscribe
from broker.partner import IDLE_EXIT_S
from puente.cli import build_parser

BASE = ["subscribe", "--partner", "COL", "--key", "k"]


class _Sub:
    """A subscriber as ``_follow`` runs it: the quiet time it was given."""

    partner = "COL"

    def __init__(self) -> None:
        self.idle: Any = "not run"

    def stop(self) -> None: ...

    async def run(self, out: Any, *, idle_exit_s: float | None) -> None:
        self.idle = idle_exit_s


@pytest.mark.parametrize(("extra", "idle"), [([], IDLE_EXIT_S), (["--exit-when-idle", "1"], 1.0),
                                             (["--exit-when-idle", "0.5"], 0.5), (["--follow"], None)],
                         ids=["default", "one", "half", "follow"])
def test_the_run_gets_the_quiet_time_parsed(extra: list[str], idle: float | None,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The default is 2 s; --exit-when-idle gives its own; --follow reads until stopped (None)."""
    monkeypatch.setattr(subscribe, "on_stop_signals", lambda *args: None)
    args = build_parser().parse_args([*BASE, *extra])
    sub = _Sub()
    asyncio.run(subscribe._follow(sub, None, None if args.follow else args.exit_when_idle))  # type: ignore[arg-type]
    assert IDLE_EXIT_S == 2.0 and sub.idle == idle


@pytest.mark.parametrize("extra", [["--exit-when-idle", "0"], ["--exit-when-idle", "-1"], ["--exit-when-idle", "nan"],
                                   ["--exit-when-idle", "inf"], ["--exit-when-idle", "soon"],
                                   ["--follow", "--exit-when-idle", "1"]],
                         ids=["zero", "negative", "nan", "inf", "word", "with-follow"])
def test_a_quiet_time_that_makes_no_sense_is_a_usage_error(extra: list[str],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Not a positive number of seconds, or given with --follow: exit 2 with argparse's line, nothing run."""
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([*BASE, *extra])
    err = capsys.readouterr().err
    assert done.value.code == 2 and ("seconds" in err or "not allowed with argument --follow" in err), err
