"""Policy decisions and partner views per second, on one core, for a realistic mix of alerts.

    python bench/bench_policy.py            # full run (about ten seconds)
    python bench/bench_policy.py --quick    # a few seconds, for a smoke check

The mix starts from the suite fixtures (a Darién sighting, a Paso Canoas
flow, a go-fast seizure, a Tocumen watchlist hit, a Colombian inbound hit)
and varies their markings, places and risk the way a day's traffic would;
each alert is decided for each of the four partners. Timings are the best
of several rounds, with the garbage collector left on. Decisions are
measured three ways: with the policy set's memo of decision objects disabled
(every Decision built anew: the worst case), cleared before each round
(how a fresh process runs), and warm.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # runnable from a checkout without install

import yaml

import schemas
from policies import Decision, PolicySet, build_view, decide, load_policy_set
from policies._compile import DecisionMemo
from policies._source import DEFAULT_DIR, FIXTURES

NOW = datetime(2025, 6, 2, 14, 0, tzinfo=UTC)
KEY = b"bench-pseudonym-key-0123456789ab"
PLACES = [  # (province, border sector, weight): most traffic is on the two land borders
    ("DARIEN", "DARIEN_PALO_DE_LAS_LETRAS", 4), ("DARIEN", "DARIEN_JAQUE", 2), ("GUNA_YALA", "GUNA_YALA_LA_MIEL", 1),
    ("CHIRIQUI", "CHIRIQUI_PASO_CANOAS", 3), ("BOCAS_DEL_TORO", "BOCAS_GUABITO", 1), ("COLON", None, 1),
    ("PANAMA", None, 2),
]  # fmt: skip


def _pick(rng: random.Random, table: list[tuple[Any, int]]) -> Any:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def _vary(base: dict[str, Any], rng: random.Random, n: int) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    doc["alert_id"] = f"{doc['agency']}:BENCH-{n:06d}"
    m = doc["markings"]
    m["classification"] = _pick(rng, [("PUBLICO", 10), ("RESTRINGIDO", 45), ("CONFIDENCIAL", 35), ("SECRETO", 10)])
    rel_to = [(["COL", "USA", "CRI"], 30), (["COL", "USA"], 35), (["USA"], 10), (["CRI"], 10), ([], 15)]
    m["releasable_to"] = _pick(rng, rel_to)
    m["caveats"] = _pick(rng, [([], 70), (["PII"], 15), (["PANAMA_ONLY"], 8), (["ORCON"], 4), (["LES"], 3)])
    m["handling_code"] = _pick(rng, [("H0", 80), ("H1", 10), ("H2", 8), ("H3", 2)])
    m["originator_consent"] = _pick(rng, [([], 85), (["COL"], 5), (["USA"], 5), (["FEAN"], 5)])
    m["source_reliability"] = _pick(rng, [("A", 15), ("B", 40), ("C", 25), ("D", 10), ("F", 10)])
    m["information_credibility"] = _pick(rng, [("1", 15), ("2", 40), ("3", 25), ("4", 10), ("6", 10)])
    if rng.random() < 0.01:  # a marking the policy does not know, as from a misconfigured adapter
        m["caveats"] = [*m["caveats"], "NOFORN"]
    if doc.get("location") is not None and doc["alert_type"] != "WATCHLIST_HIT":
        province, sector = _pick(rng, [((p, s), w) for p, s, w in PLACES])
        doc["location"].update(province=province, border_sector=sector)
    payload = doc["payload"]
    if doc["alert_type"] == "BORDER_EVENT":
        events = [("MIGRANT_FLOW", 40), ("CROSSING", 20), ("ARMED_GROUP_SIGHTING", 20), ("CLASH", 5),
                  ("CLANDESTINE_AIRSTRIP", 5), ("OTHER", 10)]  # fmt: skip
        payload["event_type"] = _pick(rng, events)
    elif doc["alert_type"] == "WATCHLIST_HIT":
        risks = [("LOW", 20), ("MEDIUM", 30), ("HIGH", 35), ("CRITICAL", 10), ("UNKNOWN", 5)]
        payload["risk_level"] = _pick(rng, risks)
    return doc


def make_mix(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` decoded alerts: 40% border events, 35% seizures, 20% watchlist hits, 5% Colombian inbound."""
    fixtures = yaml.safe_load((DEFAULT_DIR / FIXTURES).read_text(encoding="utf-8"))["alerts"]
    kinds = [("darien_sighting", 22), ("paso_canoas_flow", 18), ("gofast_seizure", 35), ("tocumen_hit", 20),
             ("colombia_inbound_hit", 5)]  # fmt: skip
    rng = random.Random(seed)
    codec = schemas.alert_codec()
    return [
        codec.decode(codec.encode(schemas.alert_from_json(_vary(fixtures[_pick(rng, kinds)], rng, n))))
        for n in range(count)
    ]


def _best(rounds: int, run: Callable[[], int]) -> tuple[int, float]:
    best = float("inf")
    done = 0
    for _ in range(rounds):
        started = time.perf_counter()
        done = run()
        best = min(best, time.perf_counter() - started)
    return done, best


class _NoMemo(DecisionMemo):
    """A memo that never remembers: every decision object is built anew."""

    def __setitem__(self, key: tuple[Any, ...], value: Decision) -> None:
        pass


def measure(ps: PolicySet, alerts: list[dict[str, Any]], rounds: int) -> list[tuple[str, int, float]]:
    partners = list(ps.partners)
    pairs = [(a, p) for a in alerts for p in partners]
    now = NOW

    def decisions(policy: PolicySet = ps) -> int:
        for alert, partner in pairs:
            decide(alert, partner, policy, now)
        return len(pairs)

    def cold_decisions() -> int:
        ps.memo.clear()  # equal decisions are shared through a memo; start each round without it
        return decisions()

    forgetful = dataclasses.replace(ps, memo=_NoMemo())

    delivered: list[tuple[dict[str, Any], Decision]] = []
    for alert, partner in pairs:
        d = decide(alert, partner, ps, now)
        if d.delivers:
            delivered.append((alert, d))

    def views() -> int:
        for alert, d in delivered:
            build_view(alert, d, ps, KEY)
        return len(delivered)

    codec = schemas.alert_codec()

    def encoded_views() -> int:
        for alert, d in delivered:
            codec.encode(build_view(alert, d, ps, KEY))
        return len(delivered)

    return [
        ("decisions (no memo)", *_best(rounds, lambda: decisions(forgetful))),
        ("decisions (cold memo)", *_best(rounds, cold_decisions)),
        ("decisions (warm memo)", *_best(rounds, decisions)),
        ("partner views", *_best(rounds, views)),
        ("views + Avro encode", *_best(rounds, encoded_views)),
    ]


def _outcomes(ps: PolicySet, alerts: list[dict[str, Any]]) -> Counter[str]:
    return Counter(decide(a, p, ps, NOW).outcome.value for a in alerts for p in ps.partners)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small run for a smoke check")
    parser.add_argument("--alerts", type=int, help="distinct alerts in the mix (default 5000, quick 500)")
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the target says
    count = args.alerts or (500 if args.quick else 5000)
    rounds = 2 if args.quick else 5
    ps = load_policy_set()
    alerts = make_mix(count)
    outcomes = _outcomes(ps, alerts)
    total = sum(outcomes.values())
    shape = f"{len(alerts)} alerts x {len(ps.partners)} partners, best of {rounds} rounds, one core"
    print(f"policy {ps.version[:19]}…  {shape}")
    print("mix: " + ", ".join(f"{k} {v * 100 / total:.0f}%" for k, v in sorted(outcomes.items())))
    print()
    print(f"{'measure':<24}{'operations':>12}{'seconds':>10}{'per second':>14}{'µs each':>10}")
    for name, ops, seconds in measure(ps, alerts, rounds):
        print(f"{name:<24}{ops:>12,}{seconds:>10.3f}{ops / seconds:>14,.0f}{seconds * 1e6 / ops:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
