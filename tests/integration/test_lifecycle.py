"""The alert lifecycle on the real Kafka: corrections, recalls, reclassification and consent re-decided
for every partner, exactly once, with the audit linking each version to what it supersedes."""

from __future__ import annotations

import asyncio
import copy
import json
import re
import signal
import socket
import subprocess
import urllib.request
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from puente_testing import Env, audit_docs, cli, open_feed, own_ids, publish, read_topic, reference, run_broker

from adapters.publisher import IngressPublisher
from broker.auditor import verify_topics
from broker.keystore import Keystore
from broker.lifecycle import AlertState, is_outbox
from policies import decide
from puente.dev.synthetic import generate

pytestmark = pytest.mark.kafka

Change = Callable[[dict[str, Any]], None]


def _later(alert: dict[str, Any], action: str, change: Change | None = None, **life: Any) -> dict[str, Any]:
    out = copy.deepcopy(alert)
    out["version"] = alert["version"] + 1
    out["lifecycle"] = {"action": action, "reason": life.get("reason"), "partners": life.get("partners", [])}
    if change is not None:
        change(out)
    return out


def _pick(env: Env, pool: list[dict[str, Any]], taken: set[str], partner: str, before: bool, change: Change,
          after: bool) -> dict[str, Any]:
    """An alert the policy gives ``partner`` (or not: ``before``) and, once changed, does not (``after``)."""
    now = datetime.now(UTC)
    for alert in pool:
        if alert["alert_id"] in taken:
            continue
        changed = copy.deepcopy(alert)
        change(changed)
        if decide(alert, partner, env.policy, now).delivers == before and \
                decide(changed, partner, env.policy, now).delivers == after:
            taken.add(alert["alert_id"])
            return alert
    raise AssertionError(f"no synthetic alert fits for {partner}")


def _views(feed: list[dict[str, Any]], alert_id: str) -> list[tuple[int, str]]:
    return [(v["version"], (v["lifecycle"] or {}).get("action") or "PUBLISH")
            for v in feed if v["alert_id"] == alert_id]


async def test_every_lifecycle_path_reaches_the_partners_it_should(env: Env) -> None:
    """A correction and then a recall, an upgrade that pulls an alert back from COL, a downgrade that newly
    delivers to CRI, a consent that releases an H2 alert to USA: each partner's feed shows exactly what its
    entitlement before and after implies, and the audit links every version to what it supersedes."""
    pool = list(generate(600, seed=77, now=datetime.now(UTC)))
    top = env.policy.scale[-1]
    taken: set[str] = set()

    def upgrade(a: dict[str, Any]) -> None:
        a["markings"]["classification"] = top

    def raise_one(a: dict[str, Any]) -> None:
        a["markings"]["classification"] = env.policy.scale[env.policy.scale.index(a["markings"]["classification"]) + 1]

    def consent(a: dict[str, Any]) -> None:
        a["markings"]["originator_consent"] = sorted({*a["markings"]["originator_consent"], "USA"})

    def no_change(a: dict[str, Any]) -> None:
        return None

    corrected = _pick(env, pool, taken, "COL", True, no_change, True)
    upgraded = _pick(env, pool, taken, "COL", True, upgrade, False)
    # Costa Rica receives few alerts: one it would receive, first published one level higher.
    lowered = _pick(env, [a for a in pool if a["markings"]["classification"] != top], taken, "CRI", True,
                    raise_one, False)
    downgraded = copy.deepcopy(lowered)
    raise_one(downgraded)

    def downgrade(a: dict[str, Any]) -> None:
        a["markings"]["classification"] = lowered["markings"]["classification"]

    consented = _pick(env, [a for a in pool if a["markings"]["handling_code"] == "H2"], taken, "USA", False,
                      consent, True)
    await publish(env, [corrected, upgraded, downgraded, consented])
    await run_broker(env)

    def fix(a: dict[str, Any]) -> None:
        a["summary"] = "corrected"

    correction = _later(corrected, "UPDATE", fix)
    recall = _later(correction, "RECALL", reason="ERROR")
    await publish(env, [correction, _later(upgraded, "RECLASSIFY", upgrade),
                        _later(downgraded, "RECLASSIFY", downgrade),
                        _later(consented, "CONSENT", consent, partners=["USA"])])
    await publish(env, [recall])
    await run_broker(env)

    col, cri, usa = [await open_feed(env, p) for p in ("COL", "CRI", "USA")]

    def ref(partner: str, alert: dict[str, Any]) -> str:  # the alert as the partner knows it, every version
        return reference(env, partner, alert["alert_id"])

    assert _views(col, ref("COL", corrected)) == [(1, "PUBLISH"), (2, "UPDATE"), (3, "RECALL")]
    assert [v["summary"] for v in col if v["alert_id"] == ref("COL", corrected)][1] in ("corrected", None)
    assert _views(col, ref("COL", upgraded)) == [(1, "PUBLISH"), (2, "RECALL")]
    notice = next(v for v in col if v["alert_id"] == ref("COL", upgraded) and v["version"] == 2)
    assert notice["markings"]["classification"] == "" and notice["location"] is None and notice["summary"] is None
    assert _views(cri, ref("CRI", downgraded)) == [(2, "UPDATE")]  # a first copy: no history of what CRI was refused
    assert _views(usa, ref("USA", consented)) == [(2, "UPDATE")]  # the same
    own = {a["alert_id"] for a in (corrected, upgraded, downgraded, consented)}
    assert not {v["alert_id"] for feed in (col, cri, usa) for v in feed} & own

    rows = [d for d in await audit_docs(env) if d["kind"] == "DECISION"]
    by = {(d["alert_id"], d.get("version", 1), d["partner"]): d for d in rows}
    assert len(by) == len(rows), "an (alert, version, partner) was decided twice"
    # Every version sent a partner, the recall notices too, names the alert by the partner's one reference.
    assert all(d["ref"] == reference(env, d["partner"], d["alert_id"]) for d in rows if d["decision"] != "WITHHOLD")
    assert by[(corrected["alert_id"], 2, "COL")]["supersedes"] == 1
    assert by[(corrected["alert_id"], 3, "COL")]["decision"] == "RECALL"
    assert by[(corrected["alert_id"], 3, "COL")]["recalls"] == 2
    assert by[(upgraded["alert_id"], 2, "COL")]["decision"] == "RECALL"
    assert by[(downgraded["alert_id"], 2, "CRI")]["decision"] != "WITHHOLD"
    assert "supersedes" not in by[(downgraded["alert_id"], 2, "CRI")]

    states = {r.key.decode(): AlertState.decode(r.key.decode(), r.value)
              for r in await read_topic(env.conn, env.names.lifecycle) if not is_outbox(r.key)}
    # COL was fed it, on a feed the worker found with the partitions the settings make a feed with.
    assert states[corrected["alert_id"]] == AlertState(3, {}, recalled=True,
                                                       originator=corrected["markings"]["originator"]["agency"],
                                                       counts={"COL": env.cfg.feed_partitions},
                                                       alert_type=corrected["alert_type"],
                                                       consent=frozenset(corrected["markings"]["originator_consent"]))
    assert "COL" not in states[upgraded["alert_id"]].holders
    assert states[downgraded["alert_id"]].holders.get("CRI") == 2
    assert states[consented["alert_id"]].holders.get("USA") == 2
    reports = await verify_topics(env.login("auditor"), {env.names.decisions: "decisions"}, env.checks())
    assert [f for r in reports for f in r.findings] == []


async def test_versions_out_of_turn_are_refused_and_a_lifecycle_message_must_prove_its_agency(env: Env) -> None:
    """The same version again is a replay, an older one stale, anything after a recall refused; a recall of an
    SNM alert signed with SENAN's key is dead-lettered as to its origin, and SNM's subscribers lose nothing."""
    first = next(a for a in generate(50, seed=5, now=datetime.now(UTC)) if a["agency"] == "SNM")
    two = _later(first, "UPDATE")
    three = _later(two, "UPDATE")  # versions need not follow one another: v2 is skipped at first
    four = _later(three, "RECALL", reason="LEGAL")
    await publish(env, [first, three])
    await run_broker(env)
    await publish(env, [three, two, four, _later(four, "UPDATE")])  # a replay, a stale one, the recall, one after
    senan = Keystore(env.cfg.keys / "agencies" / "SENAN").load_agency_mac("SENAN")
    forged = _later(three, "RECALL", reason="ERROR")
    forged["version"] = 9
    async with IngressPublisher(env.conn, "SENAN", senan.key_id, senan, env.names) as pub:
        pub.topic = env.names.ingress("SNM")  # only an admin's login could even write there
        key, value, headers = pub.frame(forged)
        await pub.send_raw(key, value, headers)
    await run_broker(env)
    dead = [d for d in await audit_docs(env) if d["kind"] == "DEAD_LETTER"]
    assert Counter(d["reason"] for d in dead) == Counter({"replay": 1, "stale": 1, "recalled": 1, "origin": 1})
    versions = Counter(d.get("version", 1) for d in await audit_docs(env)
                       if d["kind"] == "DECISION" and d["alert_id"] == first["alert_id"])
    assert set(versions) == {1, 3, 4}


def _metric(port: int, name: str) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
            text = answer.read().decode()
    except OSError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


async def test_sigkill_while_processing_lifecycle_messages_leaves_each_outcome_once(env: Env) -> None:
    """A worker killed with SIGKILL while it works through updates and recalls, and restarted, leaves every
    (alert, version, partner) decided once, and every feed record (alert, version) once per partner."""
    alerts = list(generate(1500, seed=123, now=datetime.now(UTC)))
    await publish(env, alerts)
    await run_broker(env)
    later = [_later(a, "RECALL", reason="SUPERSEDED") if i % 5 == 0 else _later(a, "UPDATE")
             for i, a in enumerate(alerts)]
    await publish(env, later)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Small batches: many commits, so that the kill lands between two of them.
    first = subprocess.Popen(cli("broker", "run", "--exit-when-idle", "30", "--metrics-port", str(port)),
                             env={**env.env_vars("broker"), "PUENTE_MAX_BATCH": "10"},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        done = 0.0
        for _ in range(3000):
            await asyncio.sleep(0.02)
            done = _metric(port, "puente_decisions_total")
            if done >= len(later):  # about a quarter of the 1500 x 4 decisions
                break
        assert 0 < done < len(later) * len(env.policy.partners), f"not caught mid-stream ({done} decisions)"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    second = subprocess.run(cli("broker", "run", "--exit-when-idle", "1"), env=env.env_vars("broker"),
                            capture_output=True, text=True, timeout=240, check=False)
    assert second.returncode == 0, second.stderr[-2000:]

    rows = [d for d in await audit_docs(env) if d["kind"] == "DECISION"]
    per = Counter((d["alert_id"], d.get("version", 1), d["partner"]) for d in rows)
    assert set(per.values()) == {1} and len(per) == 2 * len(alerts) * len(env.policy.partners)
    refs = own_ids(rows)
    for partner in env.policy.partners:
        feed = await open_feed(env, partner)
        seen = Counter((v["alert_id"], v["version"]) for v in feed)
        assert set(seen.values()) <= {1}, f"{partner} received a version twice"
        assert {ref for ref, _ in seen} <= set(refs), f"{partner} holds an alert id the audit does not name"
        expected = {(d["alert_id"], d.get("version", 1)) for d in rows
                    if d["partner"] == partner and d["decision"] != "WITHHOLD" and d.get("sent") is not False}
        assert {(refs[ref], version) for ref, version in seen} == expected
    reports = await verify_topics(env.login("auditor"), {env.names.decisions: "decisions"}, env.checks())
    assert [f for r in reports for f in r.findings] == []


def _subscribe(env: Env, store: Path) -> subprocess.CompletedProcess[str]:
    args = cli("subscribe", "--partner", "COL", "--key", str(env.key_file("COL")), "--store", str(store),
               "--exit-when-idle", "1")  # reads what the feed holds, then ends (caught up and quiet)
    return subprocess.run(args, env=env.env_vars("partner-COL"), capture_output=True, text=True, timeout=180,
                          check=False)


def _recalls(env: Env) -> tuple[int, list[dict[str, Any]]]:
    done = subprocess.run(cli("audit", "recalls", "--json"), env=env.env_vars("auditor"), capture_output=True,
                          text=True, timeout=180, check=False)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()]


async def test_a_recall_waits_for_an_offline_partner_and_its_plaintext_is_gone_once_it_acknowledges(
        env: Env, tmp_path: Path) -> None:
    """COL's subscriber is offline when its alert is recalled: the recall stays outstanding for the auditors,
    and once the subscriber runs again it deletes the alert from its store (the text is gone from the file) and
    acknowledges with a signed receipt, which `audit recalls` then shows."""
    now = datetime.now(UTC)
    alert = next(a for a in generate(300, seed=41, now=now)
                 if a["alert_type"] == "WATCHLIST_HIT" and decide(a, "COL", env.policy, now).delivers
                 and a["payload"]["person"]["surnames"])
    await publish(env, [alert])
    await run_broker(env)
    store = tmp_path / "col.sqlite"
    first = _subscribe(env, store)
    assert first.returncode == 0, first.stderr
    ref = reference(env, "COL", alert["alert_id"])  # COL knows the alert by its reference, not the agency's id
    shown = subprocess.run(cli("store", "show", ref, "--partner", "COL", "--store", str(store)),
                           env=env.env_vars("partner-COL"), capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0 and ref in shown.stdout, shown.stderr
    assert alert["alert_id"] not in shown.stdout
    assert alert["alert_id"].encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("col.sqlite*"))
    # What COL holds of the alert: a distinctive value of its view, to look for in the files afterwards.
    held = next(v for v in await open_feed(env, "COL") if v["alert_id"] == ref)
    marker = held["payload"]["person"]["surnames"] or held["payload"]["list_name"]
    assert marker and marker.encode() in b"".join(p.read_bytes() for p in tmp_path.glob("col.sqlite*"))

    await publish(env, [_later(alert, "RECALL", reason="ERROR")])
    await run_broker(env)
    code, rows = _recalls(env)
    assert code == 0 and [(r["alert_id"], r["partner"], r["state"]) for r in rows] == [
        (alert["alert_id"], "COL", "outstanding")]
    [holder] = rows[0]["waiting_on"]  # the store that holds it, named by its receipts
    assert re.fullmatch("[0-9a-f]{32}", holder), rows

    second = _subscribe(env, store)
    assert second.returncode == 0, second.stderr
    code, rows = _recalls(env)
    assert code == 0 and [(r["alert_id"], r["state"], r["version"]) for r in rows] == [
        (alert["alert_id"], "acknowledged", 2)]
    assert rows[0]["acknowledged_at"] is not None and rows[0]["waiting_on"] == []
    assert marker.encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("col.sqlite*"))
    tomb = subprocess.run(cli("store", "show", ref, "--partner", "COL", "--store", str(store)),
                          env=env.env_vars("partner-COL"), capture_output=True, text=True, timeout=60, check=False)
    assert "RECALL" in tomb.stdout.upper() and marker not in tomb.stdout
    log = subprocess.run(cli("audit", "log", "--alert", alert["alert_id"]), env=env.env_vars("auditor"),
                         capture_output=True, text=True, timeout=120, check=False)
    assert log.returncode == 0 and "RECALL" in log.stdout and "RECALLED" in log.stdout, log.stdout + log.stderr
