"""The adapters against the real Kafka: publish once, never twice, dead-letter the bad, satisfy the broker."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Coroutine, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from puente_testing import Env, adapter_dead_letters, audit_docs, read_topic, run_broker

from adapters.config import make_context
from adapters.core import convert
from adapters.publisher import IngressPublisher
from adapters.registry import ADAPTERS, get
from adapters.run import Tally, adapt_paths
from broker.keystore import Keystore
from schemas import AlertCodec, alert_codec, releases

pytestmark = pytest.mark.kafka
T = TypeVar("T")

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
BAD = SAMPLES / "bad"
EXPECTED: dict[str, dict[str, dict[int, str]]] = yaml.safe_load((BAD / "expected.yaml").read_text("utf-8"))
# SNM's default markings, which the first sample hit (no marcado) takes, stated as a later revision must state them.
SNM_MARKED = {"clasificacion": "RESTRINGIDO", "difusion": ["COL", "USA", "CRI", "FEAN"], "advertencias": ["PII"],
              "manejo": "H0", "calificacion": "A2"}
# The CLI as the lead will wire it (puente/cli.py does not register `adapt` yet).
async def _adapt(env: Env, name: str, paths: list[Path]) -> Tally:
    adapter = get(name)
    ctx = make_context(adapter.agency, datetime.now(UTC))
    total = Tally()
    login = env.login(f"agency-{adapter.agency}")
    for _, tally in await adapt_paths(env.cfg, login, adapter, ctx, [str(p) for p in paths]):
        total.add(tally)
    return total


async def _side_by_side(runs: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """The results of ``runs``, run side by side, in order. The first to fail cancels the others (a TaskGroup), so
    its error is the one raised, in an ExceptionGroup, rather than left behind runs that still wait on Kafka."""
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(run) for run in runs]
    return [task.result() for task in tasks]


def _samples(name: str) -> list[Path]:
    return sorted(p for p in (SAMPLES / name).iterdir() if p.is_file())


async def test_samples_publish_once_then_nothing_and_the_broker_accepts_them(env: Env) -> None:
    """Each adapter publishes its N sample alerts; a second run publishes 0 (N duplicates); the broker refuses none."""

    async def twice(name: str) -> tuple[str, int]:
        first = await _adapt(env, name, _samples(name))
        assert first.rejected == 0 and first.duplicates == 0 and first.published == first.read >= 8, (name, first)
        again = await _adapt(env, name, _samples(name))
        assert (again.published, again.duplicates, again.rejected) == (0, first.read, 0), (name, again)
        return get(name).agency, first.published

    # Each adapter publishes for its own agency (its own login, ingress topic and producer): run side by side.
    published = dict(await _side_by_side(twice(name) for name in ADAPTERS))
    for agency, n in published.items():
        records = await read_topic(env.conn, env.names.ingress(agency))
        assert len(records) == n and all(r.key == r.header("puente-alert-id") for r in records)
    await run_broker(env)
    dead = await adapter_dead_letters(env)
    assert [(r.header("puente-dlq-reason"), r.header("puente-dlq-detail")) for r in dead] == []
    docs = await audit_docs(env)
    decided = Counter(d["alert_id"].split(":", 1)[0] for d in docs if d["kind"] == "DECISION")
    partners = len(env.policy.partners)
    assert decided == Counter({agency: n * partners for agency, n in published.items()})


async def test_bad_records_land_in_the_dead_letter_topic_with_file_line_and_reason(env: Env) -> None:
    """Every refused record of the bad corpus is one dead letter with its raw bytes and headers; a re-run adds none."""
    want: Counter[tuple[str, str, str]] = Counter()

    async def bad(name: str) -> Tally:
        return await _adapt(env, name, [BAD / name / f for f in sorted(EXPECTED[name])])

    # One adapter per agency, each with its own producer: the corpus of each is adapted side by side.
    good = sum(tally.published for tally in await _side_by_side(bad(name) for name in EXPECTED))
    for name, files in EXPECTED.items():
        for file, records in files.items():
            want.update((name, file, reason) for reason in records.values() if reason != "ok")
    assert good == sum(r == "ok" for files in EXPECTED.values() for recs in files.values() for r in recs.values())
    dead = await adapter_dead_letters(env)

    def header(record: object, name: str) -> str:
        return (record.header(name) or b"").decode()  # type: ignore[attr-defined]

    got = Counter((header(r, "puente-dlq-adapter"), Path(header(r, "puente-dlq-file")).name,
                   header(r, "puente-dlq-reason")) for r in dead)
    assert got == want
    for r in dead:
        name, file = header(r, "puente-dlq-adapter"), Path(header(r, "puente-dlq-file"))
        line, number = int(header(r, "puente-dlq-line")), int(header(r, "puente-dlq-record"))
        assert header(r, "puente-dlq-detail") and header(r, "puente-agency") == ADAPTERS[name][1]
        assert header(r, "puente-dlq-source") == f"adapter:{name}:{file.name}:{line}"
        assert EXPECTED[name][file.name][number] == header(r, "puente-dlq-reason")
        if number:  # a record's dead letter carries its raw bytes, which are in the file
            assert r.value[:200] in file.read_bytes()
    await _side_by_side(bad(name) for name in EXPECTED)
    assert len(await adapter_dead_letters(env)) == len(dead)


async def test_a_version_is_published_once_and_a_changed_one_is_a_conflict(env: Env, tmp_path: Path) -> None:
    """Same (id, version), other content: dead-lettered as a conflict (a correction needs a higher revision);
    revision 2 of the id is published; both files read again publish nothing; nothing follows a recall."""
    line = _samples("snm")[0].read_bytes().splitlines()[0]
    doc = json.loads(line)
    changed = {**doc, "riesgo": "bajo" if doc["riesgo"] != "bajo" else "alto"}
    files = {"first": line.decode(), "changed": json.dumps(changed, ensure_ascii=False),
             "revised": json.dumps({**changed, "revision": 2, "marcado": SNM_MARKED}, ensure_ascii=False),
             "recalled": json.dumps({**changed, "revision": 3, "estado": "ANULADO", "motivo_anulacion": "LEGAL"},
                                    ensure_ascii=False),
             "after": json.dumps({**changed, "revision": 4, "marcado": SNM_MARKED}, ensure_ascii=False)}
    for name, text in files.items():
        (tmp_path / f"{name}.jsonl").write_text(text + "\n", "utf-8")
    assert (await _adapt(env, "snm", [tmp_path / "first.jsonl"])).published == 1
    conflict = await _adapt(env, "snm", [tmp_path / "changed.jsonl"])
    assert (conflict.published, conflict.rejected, dict(conflict.reasons)) == (0, 1, {"conflict": 1})
    assert (await _adapt(env, "snm", [tmp_path / "revised.jsonl"])).published == 1
    again = await _adapt(env, "snm", [tmp_path / "first.jsonl", tmp_path / "revised.jsonl"])
    assert (again.published, again.duplicates, again.rejected) == (0, 2, 0)
    assert (await _adapt(env, "snm", [tmp_path / "recalled.jsonl"])).published == 1
    after = await _adapt(env, "snm", [tmp_path / "after.jsonl"])
    assert (after.published, after.rejected, dict(after.reasons)) == (0, 1, {"conflict": 1})
    codec = alert_codec()
    versions = [codec.decode(r.value)["version"] for r in await read_topic(env.conn, env.names.ingress("SNM"))]
    assert versions == [1, 2, 3]
    details = [(r.header("puente-dlq-detail") or b"").decode() for r in await adapter_dead_letters(env)]
    assert any("higher revision" in d for d in details) and any("recalled in version 3" in d for d in details)
    assert not any(doc["id_control"] in d for d in details)


async def test_a_record_written_before_versions_is_still_a_duplicate(env: Env, tmp_path: Path) -> None:
    """An alert on the ingress topic in the first schema's bytes (no version) reads back as version 1: its export
    read again is a duplicate, not a conflict, and its revision 2 is published after it; the broker decides both."""
    line = _samples("snm")[0].read_bytes().splitlines()[0]
    (tmp_path / "first.jsonl").write_bytes(line + b"\n")
    (tmp_path / "revised.jsonl").write_text(json.dumps({**json.loads(line), "revision": 2, "riesgo": "medio",
                                                        "marcado": SNM_MARKED}, ensure_ascii=False) + "\n", "utf-8")
    adapter = get("snm")
    [result] = list(convert(adapter, io.BytesIO(line), make_context("SNM", datetime.now(UTC))))
    assert result.alert is not None
    old = AlertCodec(releases()[0]).encode({k: v for k, v in result.alert.items()
                                            if k not in ("version", "lifecycle")})
    mac = Keystore(env.cfg.keys / "agencies" / "SNM").load_agency_mac("SNM")
    async with IngressPublisher(env.login("agency-SNM"), "SNM", mac.key_id, mac, env.names) as publisher:
        key, headers = publisher.sign(result.alert["alert_id"], old)
        sent = await publisher.send_framed(key, old, headers)
        await publisher.flush()
        await sent
    again = await _adapt(env, "snm", [tmp_path / "first.jsonl"])
    assert (again.published, again.duplicates, again.rejected) == (0, 1, 0)
    assert (await _adapt(env, "snm", [tmp_path / "revised.jsonl"])).published == 1
    # The broker reads the first schema's bytes too: version 1 decided for every partner, then revision 2 over it,
    # and a partner entitled to it receives version 1 in the current schema's view.
    await run_broker(env)
    alert_id = result.alert["alert_id"]
    decided = Counter((d.get("version", 1), d["partner"]) for d in await audit_docs(env)
                      if d["kind"] == "DECISION" and d["alert_id"] == alert_id)
    assert set(decided.values()) == {1}
    assert {p for v, p in decided if v == 1} == set(env.policy.partners) == {p for v, p in decided if v == 2}
    assert not await read_topic(env.conn, env.names.deadletter)


def test_cli_reads_stdin_and_watches_a_folder(env: Env, tmp_path: Path) -> None:
    """`adapt snm -` reads standard input; `adapt pn --watch DIR` adapts a dropped file and moves it to done/."""
    sample = _samples("snm")[0]
    cmd = [sys.executable, "-m", "puente.cli"]
    drop = tmp_path / "drop"
    drop.mkdir()
    pn = _samples("pn")[0]
    (drop / pn.name).write_bytes(pn.read_bytes())
    (drop / "todavia-copiando.txt.part").write_bytes(b"S")
    # PN's watcher runs beside SNM's two runs: other agencies, other logins and producers.
    watcher = subprocess.Popen([*cmd, "adapt", "pn", "--watch", str(drop), "--interval", "0.3",
                                "--exit-when-idle", "2"], env=env.env_vars("agency-PN"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        first = subprocess.run([*cmd, "adapt", "snm", "-"], input=sample.read_bytes(),
                               env=env.env_vars("agency-SNM"), capture_output=True, timeout=120, check=False)
        bad = subprocess.run([*cmd, "adapt", "snm", str(BAD / "snm" / "json-invalido.jsonl")],
                             env=env.env_vars("agency-SNM"), capture_output=True, timeout=120, check=False)
        watched_out, watched_err = watcher.communicate(timeout=120)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert first.returncode == 0, first.stderr.decode()[-2000:]
    assert b"snm <stdin>: read 40, published 40, duplicates 0, rejected 0" in first.stdout
    assert watcher.returncode == 0, watched_err.decode()[-2000:]
    assert f"pn {pn.name}: read 40, published 40".encode() in watched_out
    assert (drop / "done" / pn.name).exists() and (drop / "todavia-copiando.txt.part").exists()
    assert bad.returncode == 1 and b"rejected 5" in bad.stdout and b"Traceback" not in bad.stderr
    assert b"json-invalido.jsonl:1: truncated" in bad.stderr
