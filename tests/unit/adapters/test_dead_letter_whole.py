"""A file refused before any record is keyed by all its bytes: two different exports of one name refused so each get
a dead letter, the same export read again none."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from adapter_fakes import Pipe

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
SNM = (SAMPLES / "snm" / "alertas-migratorias-2026-11.jsonl").read_bytes().splitlines(keepends=True)


def _utf16(lines: list[bytes]) -> bytes:
    return b"".join(lines).decode().encode("utf-16")


def _cr_only(lines: list[bytes]) -> bytes:
    return b"".join(line.rstrip(b"\r\n") + b"\r" for line in lines)


def _far(lines: list[bytes]) -> bytes:  # differs only past 64 KiB: beyond what a reader's first look takes
    return _utf16(lines) + "x".encode("utf-16-le") * (1 << 17)


@pytest.mark.parametrize("pipe", [False, True])
@pytest.mark.parametrize("export", [_utf16, _cr_only, _far])
def test_two_exports_refused_as_a_whole_each_get_their_dead_letter(
        pipe: bool, export: Callable[[list[bytes]], bytes], offline: Callable[..., tuple[Any, Any]]) -> None:
    """Two different SNM exports of one name, each refused before any record (the same fixed detail, no record
    bytes): two dead letters, each counted rejected; each read again adds none (already rejected), from a file or a
    pipe alike. Before, the second shared the first's key: counted already rejected, never dead-lettered."""
    adapter_run, kafka = offline("snm")
    a, b = export(SNM[:3]), export(SNM[3:7])
    assert a != b

    async def read(data: bytes) -> tuple[int, int]:
        stream: Any = io.BufferedReader(Pipe(data)) if pipe else io.BytesIO(data)
        tally = await adapter_run.run(stream, "/in/hits.jsonl")
        assert tally.read == 1 and tally.published == 0
        return tally.rejected, tally.already_rejected

    async def go() -> list[tuple[int, int]]:
        return [await read(data) for data in (a, b, a, b)]

    assert asyncio.run(go()) == [(1, 0), (1, 0), (0, 1), (0, 1)]
    assert len(kafka.dead) == len(set(kafka.dead)) == 2


def test_a_bad_header_keys_by_the_whole_file(offline: Callable[..., tuple[Any, Any]]) -> None:
    """Two SENAFRONT exports with the same bad header and different rows are refused as a whole, each with its own
    dead letter; the same bytes from a file and from a pipe share a key."""
    adapter_run, kafka = offline("senafront")
    a = b"bad,header\n1,2\n"
    b = b"bad,header\n3,4\n"

    async def go() -> list[int]:
        counts = []
        for data, pipe in ((a, False), (b, False), (a, True), (b, True)):
            stream: Any = io.BufferedReader(Pipe(data)) if pipe else io.BytesIO(data)
            counts.append((await adapter_run.run(stream, "/in/eventos.csv")).rejected)
        return counts

    assert asyncio.run(go()) == [1, 1, 0, 0]
    assert len(kafka.dead) == 2


def test_a_refused_file_whose_rest_cannot_be_read_is_not_dead_lettered(
        offline: Callable[..., tuple[Any, Any]]) -> None:
    """A refusal whose whole-file key cannot be made (the file fails after the reader's look) is neither
    dead-lettered nor counted: the read fails unfinished, to be tried again."""
    from adapters.run import UnfinishedRead

    class _Failing(io.RawIOBase):
        def __init__(self) -> None:
            super().__init__()
            self._data = io.BytesIO(_utf16(SNM[:3]))

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            n = self._data.readinto(buffer)
            if n == 0:
                raise OSError(5, "Input/output error")
            return n

    adapter_run, kafka = offline("snm")

    async def go() -> Any:
        with pytest.raises(UnfinishedRead) as caught:
            await adapter_run.run(io.BufferedReader(_Failing()), "/in/hits.jsonl")
        return caught.value.tally

    tally = asyncio.run(go())
    assert (tally.read, tally.rejected, tally.already_rejected) == (0, 0, 0) and kafka.dead == []
