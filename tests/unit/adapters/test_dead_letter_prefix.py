"""Dead letters keyed by the file up to their record: a file read again keeps its keys, and a known key is counted
already rejected, not rejected anew."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from adapter_fakes import Pipe

from adapters.watch import watch

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
LINES = (SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl").read_bytes().splitlines(keepends=True)[:6]
BAD = b'{"id_control":"BAD"}\n'


def test_an_archived_file_read_again_dead_letters_its_bad_record_once(
        tmp_path: Path, offline: Callable[..., tuple[Any, Any]], ticks: Any) -> None:
    """An export with one bad record, archived, then grown and moved back: read twice, its bad record has one dead
    letter, and the totals count it rejected once and already rejected once. Before, it was written and counted
    twice (its key held a digest of the whole file)."""
    adapter_run, kafka = offline("snm")
    (tmp_path / "hits.jsonl").write_bytes(LINES[0] + BAD + LINES[1])
    archived = tmp_path / "done" / "hits.jsonl"
    grown: list[float] = []

    def grow_once_archived(now: float) -> None:  # the exporter writes on once the file is archived, as a poll ends
        if archived.exists() and not grown:
            assert len(kafka.dead) == 1
            grown.append(now)
            with archived.open("ab") as exporter:
                exporter.write(LINES[2])

    clock = ticks(grow_once_archived)

    async def go() -> Any:
        return await watch(adapter_run, tmp_path, interval=0.05, idle_exit=1.0, clock=clock, out=io.StringIO())

    total = asyncio.run(go())
    assert grown and len(kafka.dead) == 1 and [h["puente-dlq-line"] for h in kafka.headers] == [b"2"]
    assert (total.read, total.published, total.duplicates, total.rejected, total.already_rejected) == (7, 3, 2, 1, 1)
    assert total.read == total.published + total.duplicates + total.rejected + total.already_rejected + total.held
    assert "rejected 1 (missing-field 1), already rejected 1 (in the dead-letter topic before)" in total.line()


@pytest.mark.parametrize("pipe", [False, True])
def test_a_continued_file_keeps_its_keys_another_export_gets_its_own(
        pipe: bool, offline: Callable[..., tuple[Any, Any]]) -> None:
    """A file cut short then completed keeps its bad record's key (already rejected); an export of the same name
    that differs before the bad record gets a dead letter of its own; read from a file or a pipe alike."""
    adapter_run, kafka = offline("snm")

    async def read(data: bytes) -> Any:
        stream: Any = io.BufferedReader(Pipe(data)) if pipe else io.BytesIO(data)
        return await adapter_run.run(stream, "/in/hits.jsonl")

    async def go() -> list[tuple[int, int]]:
        counts = []
        for data in (LINES[0] + BAD, LINES[0] + BAD + LINES[1] + LINES[2], LINES[3] + BAD):
            tally = await read(data)
            counts.append((tally.rejected, tally.already_rejected))
        return counts

    assert asyncio.run(go()) == [(1, 0), (0, 1), (1, 0)]
    assert len(kafka.dead) == len(set(kafka.dead)) == 2
