"""The audit index on the real Kafka: built from the broker's and a subscriber's chains, then caught up."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from puente_testing import Env, audit_docs, cli, run_broker

from broker.audit import ChainWriter
from broker.audit_index import AuditIndex, Query, Scope
from broker.partner import Subscriber, opener_for, receipt_signer
from puente.dev.synthetic import publish_synthetic
from schemas import alert_codec

pytestmark = pytest.mark.kafka


def _run(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli("audit", *args), env=env.env_vars("auditor"), capture_output=True, text=True,
                          check=False, timeout=300)


async def test_audit_index_builds_catches_up_and_matches_the_log(env: Env, tmp_path: Path) -> None:
    """`audit index` indexes what `audit log` lists; a second run reads nothing new; a forged receipt is a problem
    the index reports (exit 1) without indexing it; a rebuild gives the same index."""
    await publish_synthetic(env.cfg, env.conn, 150, seed=41)
    await run_broker(env)
    docs = [d for d in await audit_docs(env) if d["kind"] == "DECISION"]
    partner = Counter(d["partner"] for d in docs if d["decision"] != "WITHHOLD").most_common(1)[0][0]
    stats = await Subscriber(env.login(f"partner-{partner}"), partner, env.feed(partner), env.names.receipts(partner),
                             opener_for(partner, env.key_file(partner), None), alert_codec(),
                             signer=receipt_signer(partner, env.key_file(partner), None)).run(io.StringIO(),
                                                                                              idle_exit_s=3)
    path = tmp_path / "audit" / "index.sqlite"
    path.parent.mkdir(mode=0o700)  # a named index's folder must be there

    first = _run(env, "index", "--index", str(path))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "no problems" in first.stdout
    again = _run(env, "index", "--index", str(path))
    assert again.returncode == 0 and " 0 new record(s)" in again.stdout, again.stdout + again.stderr

    log = _run(env, "log", "--json")
    rows = [json.loads(line) for line in log.stdout.splitlines()]
    kinds = Counter(r["kind"] for r in rows)
    with AuditIndex(path, readonly=True) as index:
        national = Scope()
        assert index.search(national, Query()).total == kinds["DECISION"] == len(docs)
        assert index.summary(national)["receipts"] == kinds["RECEIPT"] == stats.received
        assert index.summary(national)["dead_letters"] == kinds.get("DEAD_LETTER", 0)
        mine = index.search(Scope(partner), Query())
        assert mine.total == sum(1 for d in docs if d["partner"] == partner)
        assert {r["partner"] for r in mine.rows} == {partner}
        # The partner's auditor reads its references (aliases while never sent), never an alert's own id; the
        # national auditor finds the alert by the reference its partner's receipts name.
        assert all(r["alert_id"].startswith(("ref-", "withheld-")) for r in mine.rows)
        sent = next(r for r in index.export(national, Query(partner=partner)) if r["ref"] is not None)
        assert {r["alert_id"] for r in index.search(national, Query(alert=sent["ref"])).rows} == {sent["alert_id"]}
        assert index.search(Scope(partner), Query(alert=sent["ref"])).total >= 1
        assert index.search(Scope(partner), Query(alert=sent["alert_id"])).total == 0

    producer = AIOKafkaProducer(**env.conn.aiokafka())  # the admin may write anywhere: a forger with its power
    await producer.start()
    try:
        forged = ChainWriter(env.names.receipts(partner), 0, checkpoint_every=1 << 62, chain=partner).append(
            "RECEIPT", {"partner": partner, "alert_id": "forged", "status": "RECEIVED"})
        await producer.send_and_wait(env.names.receipts(partner), forged, partition=0)
    finally:
        await producer.stop()
    caught_up = _run(env, "index", "--index", str(path))
    assert caught_up.returncode == 1 and " 1 new record(s)" in caught_up.stdout, caught_up.stdout + caught_up.stderr
    with AuditIndex(path, readonly=True) as index:
        assert index.summary(Scope())["receipts"] == stats.received
        assert index.problems() >= 1

    def dump(file: Path) -> dict[str, list[tuple[object, ...]]]:
        conn = sqlite3.connect(file)
        out = {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr)  # noqa: S608 - table names
               for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'meta' "
                                        "AND name NOT LIKE 'sqlite_stat%'")}  # the planner's samples differ
        conn.close()
        return out

    before = dump(path)
    rebuilt = _run(env, "index", "--index", str(path), "--rebuild")
    assert rebuilt.returncode == 1, rebuilt.stdout + rebuilt.stderr
    assert dump(path) == before
