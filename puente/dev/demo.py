"""``puente demo``: the whole path on the local, secured Kafka, with progress, ending in a table a person
can read.

Each party makes its own keys and hands over only public halves; the admin makes the topics, one
Kafka login per party and the ACLs the agreements imply. Then every party works as itself: each
agency's adapter reads the shipped sample files, a larger export made for the run and its corpus
of bad records, and a handful of bad records the broker itself must catch go straight onto the
ingress topics; two broker workers share the ingress partitions; every partner's subscriber reads,
verifies and decrypts its own feed into its own store. Then alerts live on: agency officers
reclassify one alert upwards (pulled back from Colombia), one downwards (newly delivered to Costa
Rica), consent to release an H2 alert to the United States and recall another (the samples'
revision files have already carried corrections and cancellations); the broker re-decides each
for every partner and the partners apply them and acknowledge the recalls. A partner that tries
another's feed is refused by Kafka and the denial reaches the auditor; the auditor verifies every
chain. The table is built from the audit topics, not from the workers' memory, so it shows what an
auditor would find.
"""

from __future__ import annotations

import asyncio
import io
import os
import secrets
import shlex
import time
from collections import Counter
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from adapters.config import make_context
from adapters.lifecycle import Change, change_alert, find_latest, own_mac_lookup, own_originator
from adapters.publisher import IngressPublisher
from adapters.registry import get
from adapters.run import Tally, adapt_paths
from broker.access import (
    AUDITOR,
    BROKER,
    CONSOLE,
    agency_principal,
    parties,
    partner_principal,
    plan,
    quota_changes,
    quota_plan,
    subscriber_group,
)
from broker.audit.recalls import ACKNOWLEDGED, LATE, OUTSTANDING, OVERDUE, RecallBook
from broker.audit.verify import GroupEnds, Retention
from broker.audit_index import AuditIndex, writer_lock
from broker.auditor import (
    AuditTopics,
    LogFilter,
    ack_deadlines,
    audit_topics,
    collect_denials,
    denials_signer,
    group_ends,
    index_topics,
    read_log,
    signature_checks,
    verify_topics,
)
from broker.console_accounts import ConsoleAccounts, default_accounts_path
from broker.credentials import apply_users, party_connection
from broker.crypto import SecretBytes, sign_ingress
from broker.kafka import (
    Admin,
    KafkaConnection,
    apply_topics,
    connection,
    consumer,
    plan_topics,
    running,
    set_user_quotas,
    user_quotas,
)
from broker.kafka.acls import acl_changes, apply_acls, cluster_acls, scram_users
from broker.keystore import Keystore, auditor_path, provision_all
from broker.partner import subscriber_for
from broker.partner_store import PartnerStore
from broker.private_files import private_folder, write_atomic
from broker.service import build_worker, check_topology
from broker.topology import TopicNames
from policies import PolicySet, load_policy_set
from puente import logs
from puente.dev import samplegen
from puente.dev.localkafka import LocalKafka
from puente.dev.synthetic import generate
from puente.errors import ConfigError, KafkaAccessError, KafkaError, KafkaUnavailableError
from puente.settings import PuenteSettings, load_settings
from puente.strict import printable

STEPS = 10


def _step(n: int, text: str) -> None:
    print(f"[{n}/{STEPS}] {text}", flush=True)


DEMO_HOME = Path(".puente/demo")  # the demo's keys, logins and console: nothing of a real deployment's


async def _bad_inputs(cfg: PuenteSettings, conn: KafkaConnection, seed: int) -> list[tuple[str, str]]:
    """Publish one record of each bad kind; return (alert id as its key names it, expected reason) for each."""
    names = TopicNames(cfg.topic_prefix)
    now = datetime.now(UTC)
    good = [a for a in generate(50, seed=seed + 1, now=now) if a["agency"] == "SENAN"][:5]
    for i, alert in enumerate(good):
        alert["alert_id"] = f"SENAN:BAD-{i}"
    mac = Keystore(cfg.keys / "agencies" / "SENAN").load_agency_mac("SENAN")
    expected: list[tuple[str, str]] = []
    async with IngressPublisher(conn, "SENAN", mac.key_id, mac, names) as pub:
        garbage = b"<alerta>no es avro</alerta>"
        await pub.send_raw(b"SENAN:BAD-x", garbage, sign_ingress("SENAN", mac.key_id, mac, garbage, "SENAN:BAD-x"))
        expected.append(("SENAN:BAD-x", "not-avro"))
        key, value, _ = pub.frame(good[0])
        unknown = value[:2] + b"\x13\x37" * 4 + value[10:]
        await pub.send_raw(key, unknown, sign_ingress("SENAN", mac.key_id, mac, unknown, good[0]["alert_id"]))
        expected.append((good[0]["alert_id"], "unknown-schema"))
        forged_key = SecretBytes(b"\x00" * 32, key_id=mac.key_id)
        key, value, _ = pub.frame(good[1])
        await pub.send_raw(key, value, sign_ingress("SENAN", mac.key_id, forged_key, value, good[1]["alert_id"]))
        expected.append((good[1]["alert_id"], "origin"))
        far = {**good[2], "location": {**(good[2]["location"] or {}), "latitude": 123.0}}
        await pub.send_raw(*pub.frame(far))
        expected.append((far["alert_id"], "invalid"))
        key, value, headers = pub.frame(good[3])
        await pub.send_raw(key, value, headers)
        await pub.send_raw(key, value, headers)  # the same record twice: the second is a replay
        expected.append((good[3]["alert_id"], "replay"))
        key, value, _ = pub.frame(good[4])
        old = int((now - timedelta(days=cfg.replay_window_days + 1)).timestamp() * 1000)
        await pub.send_raw(key, value, sign_ingress("SENAN", mac.key_id, mac, value, good[4]["alert_id"], old))
        expected.append((good[4]["alert_id"], "stale"))  # published longer ago than the replay window
    return expected


ADAPTERS = ("senafront", "senan", "pn", "snm", "combifron")
SAMPLES = Path(__file__).resolve().parents[2] / "samples"  # the repository's; the demo runs from a clone


async def _adapt_all(cfg: PuenteSettings, alerts: int, run_id: str) -> dict[str, Any]:
    """Each agency's adapter reads its shipped samples, a larger export made for this run, and its bad corpus."""
    folder = DEMO_HOME / "input" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    base = now.astimezone(ZoneInfo("America/Panama")).replace(tzinfo=None) - timedelta(hours=1)
    tallies: dict[str, Any] = {}
    for name in ADAPTERS:
        export = folder / f"{samplegen.FILE_NAMES[name]}-{run_id}{samplegen.SUFFIX[name]}"
        with open(export, "wb") as out:
            stamp = run_id.replace("-", "")
            samplegen.write(name, out, max(1, alerts // len(ADAPTERS)), seed=int(stamp) % 10_000, base=base,
                            prefix="D" + stamp)
        files = [*sorted(p for p in (SAMPLES / name).iterdir() if p.is_file()), export]
        files += sorted(p for p in (SAMPLES / "bad" / name).iterdir() if p.is_file())
        adapter = get(name)
        login = party_connection(cfg.login_root, agency_principal(adapter.agency))
        results = await adapt_paths(cfg, login, adapter, make_context(adapter.agency, now), [str(f) for f in files],
                                    err=io.StringIO())
        total = Tally()
        for _, tally in results:
            total.add(tally)
        tallies[name] = total
        print(f"      {name:<10} {len(files)} files: {total.line()}", flush=True)
    return tallies


async def _broker(cfg: PuenteSettings, conn: KafkaConnection, workers: int, total: int) -> list[Any]:
    policy_set = load_policy_set(cfg.policy_dir)
    forever = await check_topology(cfg, conn, policy_set)
    built = [build_worker(cfg, conn, client_suffix=f"-demo{i}", policy_set=policy_set, audit_kept_forever=forever)
             for i in range(workers)]
    tasks = [asyncio.create_task(w.run(topics, idle_exit_s=6.0)) for w, topics, _ in built]
    last = -1
    while not all(t.done() for t in tasks):
        await asyncio.sleep(1.0)
        done = sum(w.metrics.inputs for w, _, _ in built)
        if done != last:
            print(f"      broker: {done}/{total} input records processed by {workers} workers", flush=True)
            last = done
    for t in tasks:
        t.result()
    return [w for w, _, _ in built]


async def _subscribers(cfg: PuenteSettings, stores: Path) -> dict[str, Any]:
    """Every partner's subscriber, as its own login, into its own store (and a JSON-lines copy)."""
    partners = load_policy_set(cfg.policy_dir).partners
    errors: list[str] = []

    async def one(pid: str) -> Any:
        partner = partners[pid]
        key_file = cfg.keys / "partners" / pid / f"{partner.encryption_key_id}.json"
        sub = subscriber_for(cfg, party_connection(cfg.login_root, partner_principal(pid)), pid, key_file,
                             store_path=stores / f"{pid}.sqlite")
        sub.on_error = errors.append
        sub.on_note = lambda note: None  # the table reports what the stores hold
        try:
            return await sub.run(None, idle_exit_s=4.0)  # the store only: a copy elsewhere could not be recalled
        finally:
            sub.close()

    results = await asyncio.gather(*(one(pid) for pid in sorted(partners)))
    for line in errors[:5]:
        print(f"      {line}")
    return dict(zip(sorted(partners), results, strict=True))


def _only(rows: list[dict[str, Any]], partner: str, phrases: tuple[str, ...], taken: set[str]) -> str:
    """An alert withheld from ``partner`` only for reasons that each say one of ``phrases``."""
    for row in rows:
        reasons = row.get("reasons") or []
        if (row["partner"] == partner and row["decision"] == "WITHHOLD" and reasons and row["alert_id"] not in taken
                and all(any(phrase in str(r) for phrase in phrases) for r in reasons)):
            taken.add(row["alert_id"])
            return str(row["alert_id"])
    raise ConfigError(f"the demo found no alert withheld from {partner} only because {' or '.join(phrases)}")


async def _latest(cfg: PuenteSettings, policy: PolicySet, alert_id: str) -> dict[str, Any]:
    """The alert as its agency's officer sees it: its latest version on the agency's own ingress topic."""
    agency = alert_id.split(":", 1)[0]
    keystore = Keystore(cfg.keys / "agencies" / agency)
    found = await find_latest(party_connection(cfg.login_root, agency_principal(agency)),
                              TopicNames(cfg.topic_prefix).ingress(agency), alert_id, agency,
                              own_mac_lookup(keystore, agency), own_originator(cfg, agency, policy.home_country))
    if found.alert is None:
        raise ConfigError(f"the demo could not read {alert_id} back from its agency's ingress topic")
    return found.alert


async def _officers(cfg: PuenteSettings, auditor: KafkaConnection, policy: PolicySet) -> list[str]:
    """Agency officers change four alerts the audit shows: each as the agency that published it."""
    found = await audit_topics(auditor, cfg.topic_prefix)
    rows = [d async for d in read_log(auditor, found.roles, LogFilter(kinds=frozenset({"DECISION"})),
                                      signature_checks(auditor_path(cfg.keys), None), owners=found.owners)]
    # Alerts the samples' revision files have already changed are left to them.
    taken = {str(row["alert_id"]) for row in rows if row.get("version", 1) > 1}
    delivered: dict[str, set[str]] = {}
    for row in rows:
        if row["decision"] in ("DELIVER", "DELIVER_REDACTED") and row["alert_id"] not in taken:
            delivered.setdefault(row["alert_id"], set()).add(row["partner"])
    top = policy.scale[-1]
    upgrade = next(a for a, ps in sorted(delivered.items()) if "COL" in ps)
    recall = next(a for a, ps in sorted(delivered.items()) if len(ps) >= 2 and a != upgrade)
    taken |= {upgrade, recall}  # and the two below take theirs
    # Costa Rica: classified above its clearance and not releasable to it, nothing else in the way.
    downgrade = _only(rows, "CRI", ("above CRI's clearance", "omits CRI", "PAN-CRI allows up to"), taken)
    # An H2 alert (handling code: release needs its originator's consent), held back from USA for that alone.
    consent = _only(rows, "USA", ("H2 needs the originator's consent for USA",), taken)
    lowest_for_cri = policy.agreements["PAN-CRI"].max_classification
    releasable = sorted({*(await _latest(cfg, policy, downgrade))["markings"]["releasable_to"], "CRI"})
    changes = [
        (upgrade, Change("RECLASSIFY", markings={"classification": top}), f"raised to {top}"),
        (downgrade, Change("RECLASSIFY", markings={"classification": lowest_for_cri, "releasable_to": releasable}),
         f"lowered to {lowest_for_cri}, releasable to {', '.join(releasable)}"),
        (consent, Change("CONSENT", partners=("USA",)), "H2: consent to release to USA"),
        (recall, Change("RECALL", reason="ERROR"), "recalled: raised in error"),
    ]
    lines = []
    for alert_id, change, what in changes:
        agency = alert_id.split(":", 1)[0]
        done = await change_alert(cfg, party_connection(cfg.login_root, agency_principal(agency)), alert_id, change)
        lines.append(f"{agency} officer: {alert_id} {what} (version {done.version})")
    return lines


def _sum_stats(a: Any, b: Any) -> Any:
    return type(a)(received=a.received + b.received, rejected=a.rejected + b.rejected,
                   reasons=dict(Counter(a.reasons) + Counter(b.reasons)),
                   outcomes=dict(Counter(a.outcomes) + Counter(b.outcomes)), purged=a.purged + b.purged)


async def _recalls(cfg: PuenteSettings, conn: KafkaConnection, found: AuditTopics, policy: PolicySet) -> list[Any]:
    check = signature_checks(auditor_path(cfg.keys), None)
    book = RecallBook()
    async for doc in read_log(conn, found.roles, LogFilter(kinds=frozenset({"DECISION", "RECEIPT"})), check,
                              owners=found.owners, receipts_cut=book.receipts_cut):  # the cuts before any decision
        book.add(doc)
    return book.status(ack_deadlines(policy), datetime.now(UTC))


async def _audit_counts(cfg: PuenteSettings, conn: KafkaConnection, found: AuditTopics,
                        ) -> tuple[Counter[tuple[str, str]], Counter[str], Counter[tuple[str, str]],
                                   list[dict[str, Any]], Counter[str], set[tuple[str, str]]]:
    """Decisions by partner and outcome, dead letters by reason, receipts by partner and status, the
    denials, the later versions by lifecycle action, and the (alert id, reason) of each dead letter."""
    decisions: Counter[tuple[str, str]] = Counter()
    dead: Counter[str] = Counter()
    receipts: Counter[tuple[str, str]] = Counter()
    versions: dict[tuple[str, int], str] = {}
    denials: list[dict[str, Any]] = []
    caught: set[tuple[str, str]] = set()
    check = signature_checks(auditor_path(cfg.keys), None)
    async for doc in read_log(conn, found.roles, LogFilter(), check, owners=found.owners):
        if doc["kind"] == "DENIAL":
            denials.append(doc)
        elif doc["kind"] == "DECISION":
            decisions[(doc["partner"], doc["decision"])] += 1
            if doc.get("version", 1) > 1:
                versions[(doc["alert_id"], doc["version"])] = str(doc.get("action"))
        elif doc["kind"] == "DEAD_LETTER":
            dead[doc["reason"]] += 1
            caught.add((str(doc.get("alert_id")), str(doc["reason"])))
        elif doc["kind"] == "RECEIPT":
            receipts[(doc["partner"], str(doc.get("status")))] += 1
    return decisions, dead, receipts, denials, Counter(versions.values()), caught


_TRESPASS_WAIT_MS = 3000  # how long the trespasser's read waits for Kafka's answer
TRESPASSER, TRESPASSED = "COL", "USA"  # the partner that asks for another's feed, and whose feed it asks for


async def _trespass(cfg: PuenteSettings, policy: PolicySet) -> str:
    """COL's subscriber login asks for USA's feed, in COL's own subscriber group: the line Kafka refused it with.

    The group is one COL's ACLs grant, so that the topic's ACL is the only thing that can refuse it: a refusal of the
    group, a timeout or an unreachable Kafka shows nothing about who may read a feed. Anything but Kafka refusing
    the topic itself (``TopicAuthorizationFailedError``) within the wait, a read that is let through among them, is a
    ConfigError in one line: the demo does not claim a refusal it did not see, nor a read it did not see."""
    login = party_connection(cfg.login_root, partner_principal(TRESPASSER), timeout_s=10)
    names = TopicNames(cfg.topic_prefix)
    feed = names.feed(policy.partners[TRESPASSED].feed_topic)
    own_group = subscriber_group(names.feed(policy.partners[TRESPASSER].feed_topic))
    try:
        async with running(consumer(login, "puente-demo-trespass", feed, group_id=own_group,
                                    enable_auto_commit=False), login, f"reading {feed}") as intruder:
            fetched = await intruder.getmany(timeout_ms=_TRESPASS_WAIT_MS)
    except KafkaError as refused:
        if not (isinstance(refused, KafkaAccessError) and refused.resource == "TOPIC"):
            raise ConfigError(f"{login.principal} asking for {feed} in its own group {own_group} was not refused by "
                              f"the topic's ACL, so the demo shows no such refusal: {refused}") from refused
        return str(refused)
    if any(fetched.values()):
        raise ConfigError(f"{login.principal} read {feed}: the ACLs let a partner read another's feed")
    raise ConfigError(f"{login.principal} asking for {feed} in its own group {own_group} was not refused within "
                      f"{_TRESPASS_WAIT_MS / 1000:g} s, so the demo shows no such refusal: check the feed's ACLs")


def uncaught(expected: list[tuple[str, str]], caught: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """The bad records the broker was to catch (alert id, reason) that the audit holds no dead letter of, of that
    id for that reason: each kind the demo says the broker catches is shown caught by its own record, not by a
    total that adds up."""
    return [bad for bad in expected if bad not in caught]


def trespass_denials(denials: list[dict[str, Any]], principal: str, feed: str) -> list[dict[str, Any]]:
    """The collected DENIAL entries that show ``principal`` (a login, as ``partner_principal`` names it) refused
    ``feed``: READ or DESCRIBE on the topic of that exact name, read whole from Kafka's log. Any other denial (of
    a group, of another topic or login, an ``unparsed`` line) shows nothing about the feed's ACL."""
    return [d for d in denials
            if not d.get("unparsed") and d.get("principal") == f"User:{principal}"
            and d.get("operation") in ("READ", "DESCRIBE") and d.get("resource") == f"Topic:{feed}"]


async def _collect(cfg: PuenteSettings, conn: KafkaConnection, policy: PolicySet, since: datetime) -> int:
    signer, sign = denials_signer(Keystore(cfg.keys / "broker"))
    local = LocalKafka("single")
    authorizer_logs = [node.folder / "logs" / "authorizer.log" for node in local.nodes]
    names = TopicNames(cfg.topic_prefix)
    return await collect_denials(conn, names, [p for p in authorizer_logs if p.exists()],
                                 frozenset(parties(policy, cfg.agencies)), signer, sign,
                                 signature_checks(cfg.keys / "broker", None, signer=True), since,
                                 keep_days=cfg.audit_retention_days,
                                 planned=plan(policy, names, cfg.agencies, cfg.broker_group))


def _only_local(cfg: PuenteSettings, local: LocalKafka, keys_named: bool) -> None:
    """Refuse any Kafka but the local one (``puente kafka up``), and keys or logins outside ``DEMO_HOME``, before
    anything is made: the demo makes keys, topics, logins with passwords, ACLs and console accounts, and publishes
    made-up alerts, which have no place on a ministry's cluster, or in its keystore, that PUENTE_BOOTSTRAP or
    PUENTE_KEYS happened to name in the shell it ran from. ``keys_named``: PUENTE_KEYS is set."""
    named = []
    if cfg.bootstrap is not None and cfg.bootstrap != local.bootstrap:
        named.append(f"PUENTE_BOOTSTRAP names {printable(cfg.bootstrap)}")
    if cfg.client_config is not None and cfg.client_config.resolve() != local.admin_config.resolve():
        named.append(f"PUENTE_CLIENT_CONFIG names {printable(str(cfg.client_config))}")
    home = DEMO_HOME.resolve()
    for setting, path in (("PUENTE_KEYS", cfg.keys if keys_named else None), ("PUENTE_LOGINS", cfg.logins)):
        if path is not None and not path.resolve().is_relative_to(home):
            named.append(f"{setting} names {printable(str(path))}")
    if named:
        raise ConfigError(f"puente demo runs on the local Kafka ({local.bootstrap}, `puente kafka up`) with keys and "
                          f"logins under {DEMO_HOME} only, but {' and '.join(named)}: it makes keys, logins, ACLs and "
                          "console accounts and publishes made-up alerts; unset PUENTE_BOOTSTRAP, "
                          "PUENTE_CLIENT_CONFIG, PUENTE_KEYS and PUENTE_LOGINS (or run `make demo`)")


async def demo(alerts: int, workers: int, seed: int) -> int:
    logs.configure("critical")  # the demo prints its own progress and checks the result; logs would drown it
    started = time.monotonic()
    began = datetime.now(UTC)
    run_id = began.strftime("%Y%m%d-%H%M%S")
    base = load_settings()
    local = LocalKafka("single")
    _only_local(base, local, "PUENTE_KEYS" in os.environ)
    if not local.admin_config.exists():  # never started here: its admin's login is made at its first start
        raise KafkaUnavailableError(f"the local Kafka is not running here (no {local.admin_config}): start it with "
                                    "`puente kafka up`, or run `make demo`, which starts it")
    # the local Kafka, as its admin (as make demo runs)
    base = base.model_copy(update={"bootstrap": local.bootstrap, "client_config": local.admin_config})
    keys = base.keys if "PUENTE_KEYS" in os.environ else DEMO_HOME / "keys"
    cfg = base.model_copy(update={"topic_prefix": f"demo-{run_id}", "keys": keys})
    admin = connection(cfg, "puente-demo")
    policy = load_policy_set(cfg.policy_dir)
    print(f"Puente demo {run_id}: Kafka at {admin.bootstrap} (TLS, SCRAM logins, ACLs), topics under "
          f"'{cfg.topic_prefix}.*'")
    _step(1, f"keys: each party makes its own and hands over only public halves (in {cfg.keys}/<party>/)")
    provision_all(cfg)
    _step(2, f"Kafka, as {admin.principal}: topics, one login per party, the ACLs the agreements imply")
    applied = await apply_topics(Admin(admin), plan_topics(cfg, policy))
    failed = [r for r in applied if not r.ok]
    if failed:
        raise ConfigError(f"topics apply failed for {failed[0].spec.name}: {failed[0].detail}")
    names = TopicNames(cfg.topic_prefix)
    logins = await apply_users(Admin(admin), cfg.login_root, parties(policy, cfg.agencies))
    wanted = plan(policy, names, cfg.agencies, cfg.broker_group)
    current, _ = await cluster_acls(Admin(admin))
    changes = acl_changes(current, wanted, names, parties(policy, cfg.agencies), admin=admin.username,
                          observers=cfg.acl_observers)
    problems_acl = await apply_acls(Admin(admin), changes)
    if problems_acl:
        raise ConfigError(f"acls apply failed: {problems_acl[0]}")
    # As `acls apply` does: each party's quotas in force, so the demo runs as a deployment would.
    quotas = quota_plan(policy, cfg.agencies, logins=await scram_users(Admin(admin)))
    refused = await set_user_quotas(admin, quota_changes(await user_quotas(admin), quotas,
                                                         parties(policy, cfg.agencies)).requests())
    if refused:
        raise ConfigError(f"acls apply failed: the quotas of {min(refused)}: {refused[min(refused)]}")
    print(f"      {len(applied)} topics, {len(logins)} logins, {len(wanted)} ACL rules; nothing else is allowed; "
          f"{len(quotas)} logins' client quotas bound what each may cost the node")
    _step(3, "adapters, each as its agency, turn their own files (samples, a fresh export, a bad corpus) into "
             "signed alerts")
    tallies = await _adapt_all(cfg, alerts, run_id)
    bad = await _bad_inputs(cfg, party_connection(cfg.login_root, agency_principal("SENAN")), seed)
    print(f"      and straight onto the ingress topics, one bad record of each kind the broker must catch: "
          f"{', '.join(reason for _, reason in bad)}")
    published = sum(t.published for t in tallies.values())
    total = published + len(bad) + 1  # the replay was sent twice
    _step(4, f"broker, as its own login: {workers} workers in one consumer group, exactly-once into feeds and audit")
    await _broker(cfg, party_connection(cfg.login_root, BROKER), workers, total)
    _step(5, "partners, each as its own login: verify, decrypt and decode their feed into their own store, "
             "and send signed receipts")
    stores = DEMO_HOME / "stores" / run_id
    first = await _subscribers(cfg, stores)
    _step(6, "alerts live on: officers reclassify, consent and recall; the broker re-decides every version for "
             "every partner; partners apply it and acknowledge recalls")
    auditor = party_connection(cfg.login_root, AUDITOR)
    for line in await _officers(cfg, auditor, policy):
        print(f"      {line}")
    await _broker(cfg, party_connection(cfg.login_root, BROKER), workers, 4)
    second = await _subscribers(cfg, stores)
    stats = {p: _sum_stats(first[p], second[p]) for p in first}
    _step(7, "a partner asks Kafka for another's feed, and is refused; the broker collects the denial for auditors")
    refusal = await _trespass(cfg, policy)
    print(f"      {refusal}")
    collected = await _collect(cfg, party_connection(cfg.login_root, BROKER), policy, began)
    print(f"      {collected} denial(s) collected from the authorizer's log into {names.denials}")
    _step(8, "auditor, as its own login: verify every hash chain and every signature")
    found = await audit_topics(auditor, cfg.topic_prefix)
    ends = await group_ends(auditor, cfg.topic_prefix, cfg.broker_group, found.feeds, cfg.policy_dir)
    reports = await verify_topics(auditor, found.roles, signature_checks(auditor_path(cfg.keys), None), found.owners,
                                  ends.ingress, ends.feeds,
                                  retention=Retention.now(cfg.audit_retention_days))
    problems = [f for r in reports for f in r.findings]
    _step(9, "result, from the audit topics")
    decisions, dead, receipts, denials, actions, caught = await _audit_counts(cfg, auditor, found)
    recalls = await _recalls(cfg, auditor, found, policy)
    rejected = sum(t.rejected for t in tallies.values())
    print(f"\n  records read by adapters     {sum(t.read for t in tallies.values()):>7}")
    print(f"  rejected at the adapters     {rejected:>7}   (dead-lettered with file, line and reason)")
    ok = _table(total + 4, decisions, dead, receipts, stats, reports, problems, stores, recalls, actions)
    missed = uncaught(bad, caught)
    for alert_id, reason in missed:
        print(f"  NOT caught: {printable(alert_id)} was to be dead-lettered as {reason}, and the audit holds no such "
              "dead letter")
    ok = ok and not missed
    trespass = TopicNames(cfg.topic_prefix).feed(policy.partners[TRESPASSED].feed_topic)
    shown = trespass_denials(denials, partner_principal(TRESPASSER), trespass)
    for d in shown[:3]:
        print(f"  denied at the Kafka layer: {d.get('at')} {d.get('principal')} {d.get('operation')} "
              f"{d.get('resource')}")
    if not shown:
        print(f"  NO denial of {partner_principal(TRESPASSER)} reading {trespass} was collected from the authorizer's "
              f"log ({len(denials)} other denial(s))")
    ok = ok and bool(shown)
    print()
    _step(10, "auditors' console: index the audit (verifying every chain again) and make two console accounts")
    indexed, lines = await _console(cfg, auditor, found, policy, run_id, ends)
    for line in lines:
        print(f"      {line}")
    ok = ok and indexed
    print(f"Finished in {time.monotonic() - started:.0f}s.")
    return 0 if ok else 1


CONSOLE_ENV = DEMO_HOME / "console.env"  # what `make console` serves: the last demo run's audit
CONSOLE_PASSWORDS = DEMO_HOME / "console-passwords"  # the last run's console sign-ins, 0600: never printed


async def _console(cfg: PuenteSettings, auditor: KafkaConnection, found: AuditTopics, policy: PolicySet,
                   run_id: str, ends: GroupEnds) -> tuple[bool, list[str]]:
    """Index this run's audit as the auditor, give the console a national auditor and a USA joint-oversight
    auditor with fresh passwords (``console_accounts``: written to ``CONSOLE_PASSWORDS``, never printed), and
    write what `make console` needs to serve it. True when the index found no problem and checked every chain's
    end, as `audit verify` did."""
    index_path = DEMO_HOME / "console" / run_id / "index.sqlite"
    index_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with writer_lock(index_path), AuditIndex(index_path) as index:
        done = await index_topics(auditor, found.roles, signature_checks(auditor_path(cfg.keys), None), index,
                                  found.owners, ends=ends,
                                  retention=Retention.now(cfg.audit_retention_days))
    reached = sum(1 for r in done.ends.reports if r.end is not None and r.end.checked and not r.end.short)
    sign_ins = console_accounts(default_accounts_path(cfg.keys), sorted(policy.partners), run_id, CONSOLE_PASSWORDS)
    CONSOLE_ENV.write_text("".join(f"export {k}={shlex.quote(str(v))}\n" for k, v in {
        "PUENTE_TOPIC_PREFIX": cfg.topic_prefix, "PUENTE_KEYS": cfg.keys.resolve(),
        # The console serves as its own login: the only one that may append to the auditors' query log.
        "PUENTE_CLIENT_CONFIG": Path(party_connection(cfg.login_root, CONSOLE).source).resolve(),
        "PUENTE_AUDIT_INDEX": index_path.resolve()}.items()),
        encoding="utf-8")
    ok = done.problems == 0 and done.ends.all_checked
    return ok, [
            f"{done.rows} audit rows indexed from {done.records} records, {done.problems} problem(s), in {index_path}",
            f"chain ends the index checked against their groups' committed offsets: {reached} of "
            f"{len(done.ends.reports)} reach them" + (f" ({'; '.join(done.ends.why)})" if done.ends.why else ""),
            *sign_ins]


# The demo's console accounts: name -> (scope, what it sees).
_CONSOLE_LOGINS = {"auditor": ("national", "national: everything"),
                   "usa-oversight": ("USA", "joint oversight: only what concerns USA")}


def console_accounts(accounts_path: Path, partners: Collection[str], run_id: str, passwords_file: Path) -> list[str]:
    """Give the console at ``accounts_path`` a national auditor and a USA joint-oversight auditor with fresh
    passwords (an earlier run's accounts of those names replaced), the passwords written to ``passwords_file``
    alone (0600, in a folder of this user's: ``write_atomic``); the lines to print: who may sign in, and where
    their passwords are. Never the passwords themselves: a demo's output is kept where others read it (a CI log, a
    shared terminal's scrollback), and no other command prints a secret."""
    passwords = {name: secrets.token_urlsafe(12) for name in _CONSOLE_LOGINS}
    private_folder(passwords_file.parent)
    write_atomic(passwords_file, (
        f"# Puente demo {run_id}: the auditors' console sign-ins (`make console`, http://127.0.0.1:8443/); each demo "
        "run makes new ones\n"
        + "".join(f"{name:<14} {passwords[name]}   {seen}\n" for name, (_, seen) in _CONSOLE_LOGINS.items())
    ).encode("utf-8"), 0o600)
    with ConsoleAccounts.open(accounts_path, partners, create=True) as accounts:
        known = {a.name for a in accounts.list()}
        for name, (scope, _) in _CONSOLE_LOGINS.items():
            if name in known:
                accounts.remove(name)
            accounts.add(name, scope, passwords[name])
    return ["browse it: `make console`, then open http://127.0.0.1:8443/ and sign in as",
            *(f"  {name:<14} ({seen})" for name, (_, seen) in _CONSOLE_LOGINS.items()),
            f"  with the passwords in {passwords_file} (readable by you only; each run makes new ones)"]


def _table(total: int, decisions: Counter[tuple[str, str]], dead: Counter[str],
           receipts: Counter[tuple[str, str]], stats: dict[str, Any], reports: list[Any], problems: list[Any],
           stores: Path, recalls: list[Any], actions: Counter[str]) -> bool:
    partners = sorted({p for p, _ in decisions})
    decided = {p: sum(n for (q, _), n in decisions.items() if q == p) for p in partners}
    inputs_decided = max(decided.values(), default=0)
    print(f"  input records published      {total:>7}   (first versions and later ones: corrections, "
          "reclassifications, consents, recalls)")
    print(f"  decided (every partner)      {inputs_decided:>7}   of which later versions: {sum(actions.values())} ("
          + ", ".join(f"{a.lower()} {n}" for a, n in sorted(actions.items())) + ")")
    print(f"  dead-lettered                {sum(dead.values()):>7}   "
          + ", ".join(f"{r}: {n}" for r, n in sorted(dead.items())))
    adds_up = inputs_decided + sum(dead.values()) == total and len(set(decided.values())) <= 1
    print(f"  adds up                      {'yes' if adds_up else 'NO'}")
    print()
    print(f"  {'partner':<8} {'delivered':>9} {'redacted':>9} {'withheld':>9} {'recalled':>9} {'opened':>7} "
          f"{'receipts':>9} {'acks':>5} {'held':>6} {'tombst.':>7}")
    consistent = True
    for p in partners:
        d, r, w, n = (decisions[(p, k)] for k in ("DELIVER", "DELIVER_REDACTED", "WITHHOLD", "RECALL"))
        got = stats[p].received if p in stats else 0
        signed = sum(c for (q, _), c in receipts.items() if q == p)
        acks = receipts[(p, "RECALLED")]
        store = PartnerStore.open(stores / f"{p}.sqlite", p, create=False)
        try:
            counts = store.counts()
        finally:
            store.close()
        consistent &= (got == d + r + n and signed == got and acks == n and stats[p].rejected == 0)
        print(f"  {p:<8} {d:>9} {r:>9} {w:>9} {n:>9} {got:>7} {signed:>9} {acks:>5} {counts.held:>6} "
              f"{counts.recalled:>7}")
    chains = sum(r.chains for r in reports)  # a receipts partition holds a chain per subscriber instance
    records = sum(r.records for r in reports)
    checkpoints = sum(r.checkpoints for r in reports)
    print()
    states = Counter(r.state for r in recalls)
    print(f"  recalls: {len(recalls)} notice(s) sent, {states[ACKNOWLEDGED]} acknowledged, "
          f"{states[LATE]} acknowledged late, {states[OUTSTANDING]} outstanding, {states[OVERDUE]} overdue")
    ends = [r.end for r in reports if r.end is not None]
    ends_ok = all(any(e.of_receipts == r for e in ends) for r in (False, True)) and all(
        e.checked and not e.short for e in ends)
    print(f"  audit verify: {records} records in {chains} chains, {checkpoints} of them signed, "
          + ("no problems" if not problems else f"{sum(r.problems for r in reports)} PROBLEM(S)"))
    for of_receipts, what in ((False, "decision chains reaching the broker group's committed ingress offsets"),
                              (True, "feed partitions whose receipts reach the partner's committed offset")):
        these = [e for e in ends if e.of_receipts == of_receipts]
        print(f"    {what}: {sum(e.checked and not e.short for e in these)} of {len(these)}")
    for f in problems[:10]:
        print(f"    {f.topic}[{f.partition}] offset {f.offset}: {f.problem}")
    print(f"  partner stores in {stores}/<partner>.sqlite (`puente store list --partner P --store FILE`)")
    return adds_up and consistent and not problems and ends_ok and states[ACKNOWLEDGED] == len(recalls) > 0
