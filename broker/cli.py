"""Service commands: ``keys init``, ``topics apply``, ``broker run``, ``publish``, ``subscribe``, ``audit``."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from puente.errors import ConfigError, KeyMaterialError
from puente.settings import PuenteSettings

KEY_GENERATION = "2026a"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="create and inspect keys").add_subparsers(dest="verb", required=True)
    init = keys.add_parser("init", help="create every key the policy names (kept if present)")
    init.set_defaults(func=_keys_init)

    topics = sub.add_parser("topics", help="Puente's Kafka topics").add_subparsers(dest="verb", required=True)
    apply = topics.add_parser("apply", help="create or update every topic, idempotently")
    apply.set_defaults(func=_topics_apply)

    broker = sub.add_parser("broker", help="the policy routing service").add_subparsers(dest="verb", required=True)
    run = broker.add_parser("run", help="consume ingress, decide, deliver feeds and audit (SIGTERM stops cleanly)")
    run.add_argument("--workers", type=int, default=1, help="workers in this process (one consumer group)")
    run.add_argument("--exit-when-idle", type=float, metavar="SECONDS", help="stop after this long without input")
    run.add_argument("--metrics-port", type=int, help="serve /metrics on 127.0.0.1:PORT")
    run.set_defaults(func=_broker_run)

    pub = sub.add_parser("publish", help="publish synthetic alerts from the built-in generator")
    pub.add_argument("--count", type=int, default=1000)
    pub.add_argument("--seed", type=int, default=7)
    pub.set_defaults(func=_publish)

    subs = sub.add_parser("subscribe", help="read a partner's feed: verify, decrypt, print JSON lines, send receipts")
    subs.add_argument("--partner", required=True)
    subs.add_argument("--key", required=True, type=Path, help="the partner's private key file")
    subs.add_argument("--verify-key", type=Path, help="the broker's public signing key (default: beside --key)")
    subs.add_argument("--sign-key", type=Path,
                      help="the partner's receipt-signing key file (default: the current one beside --key)")
    subs.add_argument("--out", type=Path, help="write JSON lines here instead of standard output")
    subs.add_argument("--follow", action="store_true", help="keep reading; default: stop when idle for 5 s")
    subs.add_argument("--instance", default="main",
                      help="this subscriber's name (default main): subscribers of one partner that run at once "
                           "need different names; starting one with a name in use stops the other")
    subs.set_defaults(func=_subscribe)

    audit = sub.add_parser("audit", help="for auditors").add_subparsers(dest="verb", required=True)
    verify = audit.add_parser("verify", help="check every audit chain for gaps, edits, reordering, bad signatures")
    verify.add_argument("--verify-key", type=Path, action="append",
                        help="a public signing key file: the broker's, or a partner's receipt key; repeat for "
                             "several (default: every signing key in the broker's keystore)")
    verify.set_defaults(func=_audit_verify)
    log = audit.add_parser("log", help="list decisions, dead letters and receipts")
    log.add_argument("--partner")
    log.add_argument("--alert")
    log.add_argument("--agreement")
    log.add_argument("--since", type=_when)
    log.add_argument("--until", type=_when)
    log.add_argument("--kind", choices=["decision", "dead-letter", "receipt"], action="append")
    log.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    log.add_argument("--verify-key", type=Path, action="append",
                     help="as for `audit verify`: what is not soundly signed is left out of the log")
    log.set_defaults(func=_audit_log)


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def settings() -> PuenteSettings:
    try:
        return PuenteSettings()
    except ValueError as exc:
        raise ConfigError(f"invalid PUENTE_* setting: {exc}") from exc


# ---- keys and topics -----------------------------------------------------------------------
def init_keys(cfg: PuenteSettings) -> Any:
    from broker.crypto import Keystore
    from policies import load_policy_set

    ps = load_policy_set(cfg.policy_dir)
    return Keystore.generate_demo(cfg.keys, partners=sorted(ps.partners), agencies=cfg.agencies,
                                  agreements=sorted(ps.agreements), generation=KEY_GENERATION)


def _keys_init(args: argparse.Namespace) -> int:
    cfg = settings()
    made = init_keys(cfg)
    print(f"keys ready under {made.root}: broker/ (signing, partner public keys, agency MAC, pseudonym keys), "
          "partners/<id>/ (each partner's decryption and receipt-signing keys), "
          "agencies/<code>/ (each agency's MAC key)")
    return 0


async def apply_all(cfg: PuenteSettings) -> list[tuple[Any, str]]:
    from broker.service import feed_retention
    from broker.topics import TopicNames, apply_topics, plan_topics
    from policies import load_policy_set

    names = TopicNames(cfg.topic_prefix)
    specs = plan_topics(cfg, feed_retention(load_policy_set(cfg.policy_dir), names))
    return await apply_topics(cfg.bootstrap, specs)


def _topics_apply(args: argparse.Namespace) -> int:
    cfg = settings()
    done = asyncio.run(apply_all(cfg))
    print(f"{'topic':<32} {'role':<12} {'parts':>5} {'rf':>3} {'retention':>10}  action")
    for spec, action in done:
        days = int(spec.config.get("retention.ms", "0")) // 86_400_000
        print(f"{spec.name:<32} {spec.role:<12} {spec.partitions:>5} {spec.replication:>3} {days:>8} d  {action}")
    return 0


# ---- the broker ----------------------------------------------------------------------------
def _stop_all(workers: list[Any]) -> None:
    for worker in workers:
        worker.stop()


async def run_workers(cfg: PuenteSettings, workers: int, exit_when_idle: float | None,
                      metrics_port: int | None = None) -> list[Any]:
    from broker.logging import configure_logging
    from broker.metrics import serve_metrics
    from broker.service import build_worker

    log = configure_logging()
    built = [build_worker(cfg, client_suffix=f"-{i}") for i in range(workers)]
    for problem in built[0][2]:
        log.warning("partner key problem", problem=problem)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _stop_all, [w for w, _, _ in built])
    server = None
    if metrics_port:
        server = await serve_metrics(built[0][0].metrics, metrics_port)
        for w, _, _ in built[1:]:
            w.metrics = built[0][0].metrics
    log.info("broker starting", workers=workers, group=cfg.broker_group, bootstrap=cfg.bootstrap)
    try:
        await asyncio.gather(*(w.run(topics, idle_exit_s=exit_when_idle) for w, topics, _ in built))
    finally:
        if server:
            server.close()
    log.info("broker stopped", inputs=sum(w.metrics.inputs for w, _, _ in built))
    return [w for w, _, _ in built]


def _broker_run(args: argparse.Namespace) -> int:
    cfg = settings()
    asyncio.run(run_workers(cfg, args.workers, args.exit_when_idle, args.metrics_port or cfg.metrics_port))
    return 0


# ---- publishing synthetic alerts ---------------------------------------------------------
async def publish_synthetic(cfg: PuenteSettings, count: int, seed: int) -> Counter[str]:
    from adapters.publisher import IngressPublisher
    from adapters.synthetic import generate
    from broker.crypto import Keystore
    from broker.topics import TopicNames

    by_agency: dict[str, list[dict[str, Any]]] = {}
    for alert in generate(count, seed=seed, now=datetime.now(UTC)):
        by_agency.setdefault(alert["agency"], []).append(alert)
    sent: Counter[str] = Counter()
    for agency, alerts in sorted(by_agency.items()):
        mac = Keystore(cfg.keys / "agencies" / agency).load_agency_mac(agency)
        async with IngressPublisher(cfg.bootstrap, agency, mac.key_id, mac, TopicNames(cfg.topic_prefix)) as pub:
            sent[agency] += await pub.publish(alerts)
    return sent


def _publish(args: argparse.Namespace) -> int:
    sent = asyncio.run(publish_synthetic(settings(), args.count, args.seed))
    for agency, n in sorted(sent.items()):
        print(f"{agency:<10} {n:>7} alerts published")
    return 0


# ---- the partner side ----------------------------------------------------------------------
def make_opener(partner: str, key_file: Path, verify_file: Path | None, expected_key_id: str | None = None) -> Any:
    """The partner's feed opener, after checking that the key is the partner's own.

    A subscriber started with another partner's key would reject every record; checking at
    start turns that into one clear error before anything is read. ``expected_key_id`` is the
    encryption key the policy names for the partner, when the subscriber knows the policy.
    """
    from broker.crypto import FeedOpener, KeyKind, Keystore, load_key_file

    record = load_key_file(key_file)
    if record.kind is not KeyKind.PARTNER_ENCRYPTION or record.owner != partner:
        raise KeyMaterialError(f"key {record.key_id} ({record.kind}) is not a decryption key of {partner}; "
                               f"pass {partner}'s own key with --key")
    if expected_key_id is not None and record.key_id != expected_key_id:
        raise KeyMaterialError(f"key {record.key_id} is not the one the policy names for {partner} "
                               f"({expected_key_id}): the broker encrypts {partner}'s feed for that key")
    if verify_file is not None:
        verify = load_key_file(verify_file).ed25519_public()
    else:
        try:
            verify = Keystore(key_file.parent).current("broker", KeyKind.BROKER_SIGNING).ed25519_public()
        except KeyMaterialError as exc:
            raise KeyMaterialError(f"{exc}; pass the broker's public key with --verify-key") from exc
    return FeedOpener(partner, record.x25519_private(), verify)


def receipt_signer(partner: str, key_file: Path, sign_file: Path | None) -> Any:
    """The partner's receipt signer: ``sign_file``, or the current receipt key beside ``key_file``;
    it verifies with every generation of the partner's receipt keys in that key's folder."""
    from broker.crypto import KeyKind, Keystore, load_key_file, parse_key_id, sign_checkpoint
    from broker.service import checker
    from broker.subscriber import ReceiptSigner

    if sign_file is not None:
        record = load_key_file(sign_file)
    else:
        try:
            record = Keystore(key_file.parent).load_receipt_key(partner)
        except KeyMaterialError as exc:
            raise KeyMaterialError(f"{exc}; pass the partner's receipt-signing key with --sign-key") from exc
    if record.kind is not KeyKind.PARTNER_SIGNING or record.owner != partner:
        raise KeyMaterialError(f"key {record.key_id} is not {partner}'s receipt-signing key")
    private = record.ed25519_private()
    folder = Keystore((sign_file or key_file).parent)
    own = {k: folder.load(k).ed25519_public() for k in folder.key_ids()
           if (parsed := parse_key_id(k)).kind is KeyKind.PARTNER_SIGNING and parsed.owner == partner}
    own[record.key_id] = private.public_key()

    def sign(payload: bytes) -> bytes:
        return sign_checkpoint(private, payload)

    return ReceiptSigner(record.key_id, sign, checker(own))


def _subscribe(args: argparse.Namespace) -> int:
    from broker.subscriber import Subscriber
    from broker.topics import TopicNames
    from policies import load_policy_set
    from schemas import alert_codec

    cfg = settings()
    ps = load_policy_set(cfg.policy_dir)
    partner = ps.partners.get(args.partner)
    if partner is None:
        raise ConfigError(f"unknown partner {args.partner!r}; known: {', '.join(sorted(ps.partners))}")
    names = TopicNames(cfg.topic_prefix)
    opener = make_opener(partner.id, args.key, args.verify_key, partner.encryption_key_id)
    if not args.instance or len(args.instance) > 64 or not all(c.isalnum() or c in "-_." for c in args.instance):
        raise ConfigError("--instance must be 1-64 letters, digits, '-', '_' or '.'")
    sub = Subscriber(cfg.bootstrap, partner.id, names.feed(partner.feed_topic), names.access, opener, alert_codec(),
                     instance=args.instance, signer=receipt_signer(partner.id, args.key, args.sign_key))
    out = open(args.out, "a", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115 - closed below
    try:
        asyncio.run(sub.run(out, idle_exit_s=None if args.follow else 5.0))
    finally:
        if args.out:
            out.close()
        print(f"{partner.id}: {sub.stats.received} alerts received"
              + (f", stopped at a record it could not open ({sub.stats.rejected})" if sub.stats.rejected else ""),
              file=sys.stderr)
    return 0


# ---- audit ----------------------------------------------------------------------------------
def verifier(cfg: PuenteSettings, verify_files: list[Path] | Path | None) -> Any:
    """Signature checks for ``audit verify``: the given public key files, or every signing key
    (the broker's and the partners' receipt keys) in the broker's keystore."""
    from broker.crypto import KeyKind, Keystore, load_key_file
    from broker.service import checker, signature_check

    if not verify_files:
        return signature_check(Keystore(cfg.keys / "broker"), KeyKind.BROKER_SIGNING, KeyKind.PARTNER_SIGNING)
    records = [load_key_file(p) for p in ([verify_files] if isinstance(verify_files, Path) else verify_files)]
    return checker({rec.key_id: rec.ed25519_public() for rec in records})


def _audit_verify(args: argparse.Namespace) -> int:
    from broker.audit.store import verify_topics
    from broker.topics import TopicNames

    cfg = settings()
    names = TopicNames(cfg.topic_prefix)
    reports = asyncio.run(verify_topics(cfg.bootstrap, names.audit_roles(), verifier(cfg, args.verify_key)))
    bad = [f for r in reports for f in r.findings]
    total = sum(r.records for r in reports)
    print(f"{'topic':<28} {'part':>4} {'records':>8} {'signed':>11} {'unsigned tail':>13}  state")
    for r in reports:
        if r.records:
            state = "ok" if r.ok else f"{len(r.findings)} problem(s)"
            print(f"{r.topic:<28} {r.partition:>4} {r.records:>8} {r.checkpoints:>11} {r.unsigned_tail:>13}  {state}")
    for f in bad:
        print(f"PROBLEM {f.topic}[{f.partition}] offset {f.offset}: {f.problem}")
    print(f"audit verify: {total} records in {sum(1 for r in reports if r.records)} chains, "
          f"{'no problems' if not bad else f'{len(bad)} problem(s)'}")
    return 1 if bad else 0


def _audit_log(args: argparse.Namespace) -> int:
    from broker.audit.store import LogFilter, read_log
    from broker.topics import TopicNames

    cfg = settings()
    names = TopicNames(cfg.topic_prefix)
    kinds = {"decision": "DECISION", "dead-letter": "DEAD_LETTER", "receipt": "RECEIPT"}
    flt = LogFilter(args.partner, args.alert, args.agreement, args.since, args.until,
                    frozenset(kinds[k] for k in args.kind) if args.kind else LogFilter.kinds)

    left_out: list[int] = []

    async def collect() -> list[dict[str, Any]]:
        return [doc async for doc in read_log(cfg.bootstrap, names.audit_roles(), flt, verifier(cfg, args.verify_key),
                                              left_out)]

    docs = sorted(asyncio.run(collect()), key=lambda d: str(d.get("at", "")))
    unsound = sum(left_out)
    note = f"{unsound} audit record(s) left out as unsound: run `puente audit verify`" if unsound else ""
    if args.json:
        for doc in docs:
            print(json.dumps(doc, ensure_ascii=False))
        if note:
            print(note, file=sys.stderr)
        return 0
    print(f"{'time (UTC)':<24} {'kind':<11} {'alert':<26} {'partner':<7} {'decision / status':<18} {'agreement':<18} "
          "redacted / reason")
    for d in docs:
        status = d.get("decision") or d.get("status") or d.get("reason", "")
        redacted = d.get("redacted")
        extra = ", ".join(f"{r.get('field')}:{r.get('action')}" for r in redacted if isinstance(r, dict)) \
            if isinstance(redacted, list) else ""
        extra = extra or d.get("detail", "")
        print(f"{str(d.get('at', ''))[:23]:<24} {str(d.get('kind', ''))[:11]:<11} "
              f"{str(d.get('alert_id') or '-')[:26]:<26} {str(d.get('partner') or '-')[:7]:<7} "
              f"{str(status)[:18]:<18} {str(d.get('agreement') or '-')[:18]:<18} {str(extra)[:80]}")
    print(f"{len(docs)} record(s)" + (f"; {note}" if note else ""), file=sys.stderr)
    return 0
