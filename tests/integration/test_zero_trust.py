"""Zero trust at the Kafka layer, on the real secured Kafka: each party may do its own work and nothing else."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaClient, AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)
from aiokafka.protocol.transaction import InitProducerIdRequest
from aiokafka.structs import OffsetAndMetadata
from puente_testing import Env, audit_docs, cli, read_topic, run_broker

from broker.access import Acl, subscriber_group, subscriber_transaction
from broker.kafka import Admin, KafkaConnection, connection_from_properties, reader, start
from broker.kafka.acls import AclChanges, apply_acls, cluster_acls
from puente.dev import pki
from puente.dev.localkafka import KAFKA_VERSION, LocalKafka, fetch_kafka
from puente.dev.synthetic import publish_synthetic
from puente.errors import KafkaAuthError

pytestmark = pytest.mark.kafka


async def _refused(conn: KafkaConnection, attempt: str, **kw: str) -> BaseException:
    """Run one attempt as ``conn`` and return what refused it (the test fails if nothing did)."""
    try:
        if attempt == "read":
            consumer = AIOKafkaConsumer(kw["topic"], **conn.aiokafka(), group_id=kw.get("group"),
                                        auto_offset_reset="earliest", enable_auto_commit=False)
            await consumer.start()
            try:
                await consumer.getmany(timeout_ms=5000)
            finally:
                await consumer.stop()
        elif attempt == "write":
            producer = AIOKafkaProducer(**conn.aiokafka(), transactional_id=kw.get("txn"))
            await producer.start()
            try:
                if kw.get("txn"):
                    async with producer.transaction():
                        await producer.send_and_wait(kw["topic"], b"x")
                else:
                    await producer.send_and_wait(kw["topic"], b"x")
            finally:
                await producer.stop()
        elif attempt == "commit":
            consumer = AIOKafkaConsumer(**conn.aiokafka(), group_id=kw["group"], enable_auto_commit=False)
            await consumer.start()
            try:
                tp = TopicPartition(kw["topic"], 0)
                consumer.assign([tp])
                await consumer.commit({tp: OffsetAndMetadata(0, "")})
            finally:
                await consumer.stop()
    except (KafkaError, OSError) as exc:
        return exc
    raise AssertionError(f"{conn.principal} was allowed to {attempt} {kw}")


async def test_a_partner_cannot_read_another_partners_feed_nor_learn_it_exists(env: Env) -> None:
    """COL's login is refused USA's feed (by topic, and by USA's group), and the cluster's metadata does not even
    list USA's topics to it; its own feed it reads."""
    col, feed_usa = env.login("partner-COL"), env.feed("USA")
    refused = await _refused(col, "read", topic=feed_usa, group=subscriber_group(feed_usa))
    assert isinstance(refused, (TopicAuthorizationFailedError, GroupAuthorizationFailedError)), refused
    refused = await _refused(col, "read", topic=feed_usa, group=subscriber_group(env.feed("COL")))
    assert isinstance(refused, TopicAuthorizationFailedError), refused
    async with _reading(col) as consumer:
        visible = await consumer.topics()
    assert env.feed("COL") in visible and env.names.receipts("COL") in visible
    assert not {t for t in visible if "USA" in t or "CRI" in t or "FEAN" in t}
    assert not {t for t in visible if t.startswith(env.cfg.topic_prefix + ".ingress")}


class _reading:
    def __init__(self, conn: KafkaConnection) -> None:
        self.conn, self.consumer = conn, reader(conn, "probe")

    async def __aenter__(self) -> AIOKafkaConsumer:
        return await start(self.consumer, self.conn, "probing")

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()


async def test_a_partner_cannot_write_ingress_audit_or_another_partners_receipts(env: Env) -> None:
    """COL's login may not write any ingress topic, the decisions, USA's receipts, or a feed."""
    col = env.login("partner-COL")
    for topic in (env.names.ingress("SNM"), env.names.decisions, env.names.receipts("USA"), env.feed("COL"),
                  env.names.deadletter):
        refused = await _refused(col, "write", topic=topic)
        assert isinstance(refused, TopicAuthorizationFailedError), (topic, refused)


async def test_a_partner_cannot_commit_in_anothers_group_or_use_its_transactional_id(env: Env) -> None:
    """COL's login may not commit offsets in USA's consumer group, even for COL's own feed, nor open a transaction
    under USA's ids."""
    col = env.login("partner-COL")
    refused = await _refused(col, "commit", group=subscriber_group(env.feed("USA")), topic=env.feed("COL"))
    assert isinstance(refused, GroupAuthorizationFailedError), refused
    usa_txn = subscriber_transaction(env.names.receipts("USA"), "USA", "main")
    refused = await _refused(col, "write", topic=env.names.receipts("COL"), txn=usa_txn)
    assert isinstance(refused, TransactionalIdAuthorizationFailed), refused


async def test_a_partner_may_make_the_transactional_ids_of_its_named_instances_only(env: Env, tmp_path: Path) -> None:
    """Kafka keeps every transactional id made for days, in its coordinators' memory: COL's login may make those of
    the subscriber instances partners.yaml names for it (main, standby), and is refused InitProducerId for any
    other, under what was once its prefix too. A subscriber whose policy names an instance the cluster's ACLs do not
    grant stops in one line naming `instances` in partners.yaml."""
    col, receipts = env.login("partner-COL"), env.names.receipts("COL")
    for instance in ("main", "standby"):
        named = AIOKafkaProducer(**col.aiokafka(), transactional_id=subscriber_transaction(receipts, "COL", instance))
        await named.start()  # FindCoordinator and InitProducerId: the id is made
        await named.stop()
    client = AIOKafkaClient(**col.aiokafka())
    await client.bootstrap()
    try:
        main = subscriber_transaction(receipts, "COL", "main")
        for tid in (subscriber_transaction(receipts, "COL", "flood-1"), f"{main}/flood-2", f"{main}flood-3",
                    subscriber_transaction(receipts, "COL", "standby") + "x"):
            # As the reviewer's probe asks, to any node: Kafka checks the id's ACL before whether it coordinates it.
            answer = await client.send(client.get_random_node(), InitProducerIdRequest(tid, 60000))
            assert answer.error_code == TransactionalIdAuthorizationFailed.errno, (tid, answer)
    finally:
        await client.close()

    policy = tmp_path / "policy"
    shutil.copytree(env.policy.root, policy)
    partners = (policy / "partners.yaml").read_text(encoding="utf-8")
    (policy / "partners.yaml").write_text(partners.replace("    instances: [main, standby]\n",
                                                           "    instances: [main, standby, site-c]\n", 1),
                                          encoding="utf-8")
    done = subprocess.run(cli("subscribe", "--partner", "COL", "--key", str(env.key_file("COL")),
                              "--instance", "site-c"),
                          env={**env.env_vars("partner-COL"), "PUENTE_POLICY_DIR": str(policy)},
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 3, (done.stdout, done.stderr)
    [line] = [line for line in done.stderr.splitlines() if line.startswith("puente: error:")]
    assert "Traceback" not in done.stderr and "the transactional id of subscriber instance 'site-c'" in line, line
    assert "COL's `instances` in partners.yaml names it" in line and "`puente acls apply`" in line, line


async def test_only_the_console_may_record_what_auditors_looked_at(env: Env) -> None:
    """The auditor's login reads the audit but may not append to the console's query log (a forged "who looked at
    what"), nor write any audit topic; the console's login may write only that log."""
    auditor, console = env.login("auditor"), env.login("console")
    for topic in (env.names.queries, env.names.decisions, env.names.denials, env.names.receipts("USA")):
        refused = await _refused(auditor, "write", topic=topic)
        assert isinstance(refused, TopicAuthorizationFailedError), (topic, refused)
    for topic in (env.names.decisions, env.names.denials, env.feed("USA")):
        refused = await _refused(console, "write", topic=topic)
        assert isinstance(refused, TopicAuthorizationFailedError), (topic, refused)


async def test_an_agency_cannot_write_another_agencys_ingress(env: Env) -> None:
    """SENAN's adapter login may write its own ingress but not SNM's, nor the broker's feeds."""
    senan = env.login("agency-SENAN")
    for topic in (env.names.ingress("SNM"), env.feed("USA")):
        refused = await _refused(senan, "write", topic=topic)
        assert isinstance(refused, TopicAuthorizationFailedError), (topic, refused)


async def test_plaintext_anonymous_and_wrong_password_connections_are_refused(env: Env) -> None:
    """No plaintext listener exists; TLS without a login, and a wrong password, are refused; the CLI says so in one
    line naming the principal and what to check, never the password."""
    plain = KafkaConnection(bootstrap=env.conn.bootstrap, timeout_s=5)
    refused = await _refused(plain, "read", topic=env.feed("COL"))
    assert isinstance(refused, (KafkaConnectionError, OSError, KafkaError)), refused
    anonymous = KafkaConnection(bootstrap=env.conn.bootstrap, security_protocol="SSL", ca_file=env.conn.ca_file,
                                timeout_s=5)
    refused = await _refused(anonymous, "read", topic=env.feed("COL"))
    assert isinstance(refused, (KafkaConnectionError, OSError, KafkaError)), refused
    wrong = Path(env.config("partner-COL")).read_text()
    password = wrong.split('password="', 1)[1].split('"', 1)[0]
    bad = env.config("partner-COL").with_name("wrong.properties")
    bad.write_text(wrong.replace(password, "not-the-password"))
    bad.chmod(0o600)
    done = subprocess.run(cli("subscribe", "--partner", "COL", "--key", str(env.key_file("COL"))),
                          env={**env.env_vars(), "PUENTE_CLIENT_CONFIG": str(bad), "PUENTE_KAFKA_TIMEOUT_S": "5"},
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 3, done.stderr
    line = [x for x in done.stderr.splitlines() if x.startswith("puente: error:")]
    assert len(line) == 1 and "User:partner-COL" in line[0] and "credentials" in line[0]
    assert "not-the-password" not in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("command", [("users", "plan"), ("users", "plan"), ("users", "plan"), ("users", "apply"),
                                     ("acls", "plan"), ("acls", "apply"), ("topics", "plan"), ("topics", "apply")])
def test_an_administration_command_with_a_partys_login_is_one_line_naming_it(env: Env,
                                                                               command: tuple[str, ...]) -> None:
    """Every administration command run with a partner's login exits 3 with one line naming that login and the admin's
    client.properties: never librdkafka's abort on a refused SCRAM listing (134; users plan three times, as it hit
    about 3 runs in 4), nor a plan drawn from what the authorizer hid (every topic to create, no ACL to remove)."""
    done = subprocess.run(cli(*command), env=env.env_vars("partner-COL"), capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 3, (done.returncode, done.stdout, done.stderr)
    [line] = done.stderr.splitlines()
    assert line.startswith("puente: error: User:partner-COL") and str(env.config("partner-COL")) in line, line
    assert "may not administer" in line and "the admin's client.properties" in line, line
    assert done.stdout == ""


@pytest.mark.parametrize(("login", "command", "party"), [
    ("partner-COL", ("broker", "run", "--exit-when-idle", "1"), "User:broker"),
    ("broker", ("audit", "verify"), "User:auditor or User:console"),
    ("partner-COL", ("subscribe", "--partner", "USA", "--key", "{key}"), "User:partner-USA"),
])
def test_a_service_run_with_another_partys_login_names_both(env: Env, login: str, command: tuple[str, ...],
                                                            party: str) -> None:
    """A service run with another party's login exits 3 with one line naming the party it runs as and the login,
    and prints nothing else: not "topics do not exist, run `puente topics apply`" (what the broker saw of a
    partner's metadata), nor audit problems, nor "USA: 0 feed record(s) opened"."""
    args = [part.format(key=env.key_file("USA")) for part in command]
    done = subprocess.run(cli(*args), env=env.env_vars(login), capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 3, (done.stdout, done.stderr)
    [line] = done.stderr.splitlines()
    assert f"runs as {party}, but the login in {env.config(login)} is User:{login}" in line, line
    assert done.stdout == ""


async def test_an_unknown_ca_is_one_clear_line(env: Env, tmp_path: Path) -> None:
    """A client that trusts another CA gets a one-line error naming the CA file to check."""
    other = tmp_path / "other-ca"
    ca, _ = pki.ensure_ca(other)
    text = env.config("auditor").read_text().replace(str(env.conn.ca_file), str(ca))
    config = tmp_path / "client.properties"
    config.write_text(text)
    config.chmod(0o600)
    done = subprocess.run(cli("audit", "verify"), env={**env.env_vars(), "PUENTE_CLIENT_CONFIG": str(config),
                                                       "PUENTE_KAFKA_TIMEOUT_S": "5"},
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 3, done.stderr
    assert "certificate" in done.stderr and str(ca) in done.stderr and "Traceback" not in done.stderr


@pytest.fixture
def expired_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A TLS server on 127.0.0.1 presenting a certificate that expired yesterday (signed by its own CA)."""
    folder = tmp_path / "expired"
    ca, _ = pki.ensure_ca(folder)
    now = datetime.now(UTC)
    pem = pki.issue(folder, "server", ["127.0.0.1"], common="expired", not_after=now - timedelta(days=1),
                    now=now - timedelta(days=30))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pem))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port, ca
    listener.close()


def test_an_expired_certificate_is_one_clear_line(expired_server: tuple[int, Path], tmp_path: Path) -> None:
    """A broker presenting an expired certificate: the client refuses it, in one line saying to check it."""
    port, ca = expired_server
    config = tmp_path / "client.properties"
    config.write_text(f"bootstrap.servers=127.0.0.1:{port}\nsecurity.protocol=SSL\nssl.truststore.type=PEM\n"
                      f"ssl.truststore.location={ca}\n")
    env = {name: value for name, value in os.environ.items() if name != "PUENTE_BOOTSTRAP"}
    done = subprocess.run(cli("acls", "plan"), env={**env, "PUENTE_CLIENT_CONFIG": str(config),
                                                    "PUENTE_KAFKA_TIMEOUT_S": "5"},
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 3, done.stderr
    assert "certificate" in done.stderr and "expired" in done.stderr and "Traceback" not in done.stderr


async def test_every_party_does_its_own_work_end_to_end(env: Env, tmp_path: Path) -> None:
    """As their own logins: agencies publish, the broker routes, a partner reads its feed and receipts, the auditor
    verifies; no party needed more than its ACLs."""
    await publish_synthetic(env.cfg, env.conn, 150, seed=61)
    workers = await run_broker(env)
    assert sum(w.metrics.inputs for w in workers) == 150
    out = tmp_path / "col.jsonl"
    sub = subprocess.run(cli("subscribe", "--partner", "COL", "--key", str(env.key_file("COL")), "--out", str(out),
                             "--exit-when-idle", "1"),
                         env=env.env_vars("partner-COL"), capture_output=True, text=True, timeout=120, check=False)
    assert sub.returncode == 0, sub.stderr
    assert out.read_text().strip()
    # COL received what was delivered to it, receipted each, and knows each alert by its own reference only.
    decisions = [d for d in await audit_docs(env) if d["kind"] == "DECISION"]
    refs = {d["ref"] for d in decisions if d["partner"] == "COL" and d["decision"] != "WITHHOLD"}
    assert {json.loads(line)["alert_id"] for line in out.read_text().splitlines()} == refs
    receipts = [json.loads(r.value) for r in await read_topic(env.conn, env.names.receipts("COL"))]
    assert {r["alert_id"] for r in receipts if r.get("kind") == "RECEIPT"} == refs
    own = {d["alert_id"] for d in decisions}
    assert not any(alert_id in out.read_text() for alert_id in own)
    verify = subprocess.run(cli("audit", "verify"), env=env.env_vars("auditor"), capture_output=True, text=True,
                            timeout=120, check=False)
    assert verify.returncode == 0 and "no problems" in verify.stdout, verify.stdout + verify.stderr


async def test_denials_reach_the_auditors(env: Env) -> None:
    """Refused attempts (COL asking for USA's feed, SENAN writing SNM's ingress) are collected from Kafka's
    authorizer log into the audit: `audit log --kind denial` shows principal, operation, resource and time, and
    `audit verify` checks it is signed."""
    began = datetime.now(UTC)
    await _refused(env.login("partner-COL"), "read", topic=env.feed("USA"))
    await _refused(env.login("agency-SENAN"), "write", topic=env.names.ingress("SNM"))
    logs = [str(node.folder / "logs" / "authorizer.log") for node in LocalKafka("single").nodes]
    await asyncio.sleep(1.0)  # the log appender flushes each line; give it a moment on a loaded machine
    args = ["audit", "collect-denials", "--since", began.isoformat()] + [f"--log={p}" for p in logs]
    collect = subprocess.run(cli(*args), env=env.env_vars("broker"), capture_output=True, text=True, timeout=120,
                             check=False)
    assert collect.returncode == 0, collect.stderr
    again = subprocess.run(cli(*args), env=env.env_vars("broker"), capture_output=True, text=True, timeout=120,
                           check=False)
    assert "0 new denial(s)" in again.stdout  # collecting twice adds nothing
    log = subprocess.run(cli("audit", "log", "--kind", "denial", "--json"), env=env.env_vars("auditor"),
                         capture_output=True, text=True, timeout=120, check=False)
    rows = [json.loads(line) for line in log.stdout.splitlines()]
    mine = [r for r in rows if r["principal"] == "User:partner-COL" and env.feed("USA") in r["resource"]]
    assert mine and {"at", "operation", "resource", "host", "request"} <= set(mine[0])
    senan = [r for r in rows if r["principal"] == "User:agency-SENAN" and env.names.ingress("SNM") in r["resource"]]
    assert senan and {r["operation"] for r in senan} <= {"WRITE", "DESCRIBE", "IDEMPOTENT_WRITE"}, senan
    verify = subprocess.run(cli("audit", "verify"), env=env.env_vars("auditor"), capture_output=True, text=True,
                            timeout=120, check=False)
    assert verify.returncode == 0 and env.names.denials in verify.stdout, verify.stdout


async def test_the_acl_plan_follows_the_partners(env: Env, tmp_path: Path) -> None:
    """`acls plan` on a cluster that matches the policy shows no change. A partner whose last agreement is gone
    keeps its ACLs (it must still read the recall notices for what it holds, and acknowledge them); a partner
    removed from partners.yaml has them listed for deletion, and after `acls apply` it is refused its feed."""
    same = subprocess.run(cli("acls", "plan"), env=env.env_vars(), capture_output=True, text=True, timeout=120,
                          check=False)
    assert same.returncode == 0 and "no change" in same.stdout, same.stdout + same.stderr
    policy = tmp_path / "policy"
    shutil.copytree(env.policy.root, policy)
    (policy / "agreements" / "pan-cri.yaml").unlink()
    (policy / "agreements" / "pan-cri.tests.yaml").unlink()
    variables = {**env.env_vars(), "PUENTE_POLICY_DIR": str(policy)}
    kept = subprocess.run(cli("acls", "plan"), env=variables, capture_output=True, text=True, timeout=120,
                          check=False)
    assert kept.returncode == 0 and "no change" in kept.stdout, kept.stdout + kept.stderr
    partners = (policy / "partners.yaml").read_text(encoding="utf-8")
    start, end = partners.index("  - id: CRI\n"), partners.index("  - id: FEAN\n")
    (policy / "partners.yaml").write_text(partners[:start] + partners[end:], encoding="utf-8")
    plan = subprocess.run(cli("acls", "plan"), env=variables, capture_output=True, text=True, timeout=120,
                          check=False)
    assert plan.returncode == 1, plan.stdout + plan.stderr
    removed = [line for line in plan.stdout.splitlines() if line.startswith("- ")]
    assert removed and all("User:partner-CRI" in line for line in removed)
    # its login still exists (until `users apply --prune`): its quotas go down to a trickle, not away
    added = sorted(line.split(" (now")[0] for line in plan.stdout.splitlines() if line.startswith("+ "))
    assert added == [f"+ quota User:partner-CRI {quota}" for quota in (
        "consumer_byte_rate=1024", "producer_byte_rate=1024", "request_percentage=1")], plan.stdout
    apply = subprocess.run(cli("acls", "apply"), env=variables, capture_output=True, text=True, timeout=120,
                           check=False)
    assert apply.returncode == 0, apply.stdout + apply.stderr
    after = subprocess.run(cli("acls", "plan"), env=variables, capture_output=True, text=True, timeout=120,
                           check=False)
    assert after.returncode == 0 and "no change" in after.stdout
    refused = await _refused(env.login("partner-CRI"), "read", topic=env.feed("CRI"))
    assert isinstance(refused, TopicAuthorizationFailedError)

    # Its login goes too: with no ACL it could still authenticate, and an id added again must not get it back.
    old_login = tmp_path / "cri-client.properties"
    shutil.copyfile(env.config("partner-CRI"), old_login)
    old_login.chmod(0o600)  # it holds the password: as `users apply` wrote it
    planned = subprocess.run(cli("users", "plan", "--prune"), env=variables, capture_output=True, text=True,
                             timeout=120, check=False)
    assert planned.returncode == 1, planned.stdout + planned.stderr  # a change to make, and none made
    assert [line.split()[:2] for line in planned.stdout.splitlines() if " remove " in line] == [
        ["partner-CRI", "remove"]]
    await Admin(connection_from_properties(old_login, timeout_s=10)).call(
        "logging in", lambda c: c.list_topics(timeout=10))  # the plan changed nothing: it still logs in
    assert env.config("partner-CRI").exists()
    disabled = subprocess.run(cli("users", "apply"), env=variables, capture_output=True, text=True, timeout=120,
                              check=False)
    assert disabled.returncode == 0, disabled.stdout + disabled.stderr  # without --prune it is disabled, not deleted
    assert [line.split()[:2] for line in disabled.stdout.splitlines() if line.startswith("partner-CRI ")] == [
        ["partner-CRI", "disabled"]]
    assert "1 former party not named any more: its login has a new password no one holds" in disabled.stdout
    assert not env.config("partner-CRI").exists()
    assert (env.config("partner-CRI").parent / ".client.properties.former").exists()
    with pytest.raises(KafkaAuthError):  # the password its party holds no longer logs in
        await Admin(connection_from_properties(old_login, timeout_s=10)).call(
            "logging in", lambda c: c.list_topics(timeout=10))
    clean = subprocess.run(cli("users", "plan"), env=variables, capture_output=True, text=True, timeout=120,
                           check=False)  # what apply did is no change left to a plan without --prune
    assert clean.returncode == 0 and "0 to change" in clean.stdout, clean.stdout + clean.stderr
    assert _former(clean.stdout) == ["partner-CRI"]
    users = subprocess.run(cli("users", "apply", "--prune"), env=variables, capture_output=True, text=True,
                           timeout=120, check=False)
    assert users.returncode == 0, users.stdout + users.stderr
    assert [line.split()[:2] for line in users.stdout.splitlines() if "removed" in line] == [["partner-CRI", "removed"]]
    assert not env.config("partner-CRI").exists()
    with pytest.raises(KafkaAuthError):
        await Admin(connection_from_properties(old_login, timeout_s=10)).call(
            "logging in", lambda c: c.list_topics(timeout=10))
    again = subprocess.run(cli("users", "apply"), env=env.env_vars(), capture_output=True, text=True, timeout=120,
                           check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert ["partner-CRI", "created"] in [line.split()[:2] for line in again.stdout.splitlines()]
    settled = subprocess.run(cli("users", "plan"), env=env.env_vars(), capture_output=True, text=True, timeout=120,
                             check=False)
    assert settled.returncode == 0 and "0 to change" in settled.stdout, settled.stdout + settled.stderr
    assert connection_from_properties(env.config("partner-CRI")).password != \
        connection_from_properties(old_login).password
    assert isinstance(await _refused(env.login("partner-CRI"), "read", topic=env.feed("USA")),
                      TopicAuthorizationFailedError)  # it logs in again, with its new password only


def _former(stdout: str) -> list[str]:
    """The logins `users apply` / `users plan` list as former (a line per login: user, action, file)."""
    return [words[0] for words in map(str.split, stdout.splitlines())
            if len(words) == 3 and words[1] == "former" and words[0].startswith(("agency-", "partner-"))]


async def test_a_broad_grant_to_a_party_is_drift_that_apply_removes(env: Env) -> None:
    """A rule that lets a partner read every topic (a wildcard) or describe the cluster is not in the plan:
    `acls plan` exits 1 naming it, `acls apply` removes it, and the partner is refused another's feed again."""
    admin = Admin(env.conn)
    stray = [Acl("partner-COL", "TOPIC", "*", "LITERAL", "READ"),
             Acl("partner-COL", "TOPIC", env.cfg.topic_prefix, "PREFIXED", "READ"),  # every topic of the deployment
             Acl("partner-COL", "CLUSTER", "kafka-cluster", "LITERAL", "DESCRIBE"),
             Acl("partner-COL", "GROUP", "*", "LITERAL", "READ")]
    assert await apply_acls(admin, AclChanges(tuple(stray), ())) == []
    plan = subprocess.run(cli("acls", "plan"), env=env.env_vars(), capture_output=True, text=True, timeout=120,
                          check=False)
    assert plan.returncode == 1, plan.stdout + plan.stderr
    removed = [line for line in plan.stdout.splitlines() if line.startswith("- ")]
    assert len(removed) == len(stray) and all("User:partner-COL" in line for line in removed)
    apply = subprocess.run(cli("acls", "apply"), env=env.env_vars(), capture_output=True, text=True, timeout=120,
                           check=False)
    assert apply.returncode == 0, apply.stdout + apply.stderr
    after = subprocess.run(cli("acls", "plan"), env=env.env_vars(), capture_output=True, text=True, timeout=120,
                           check=False)
    assert after.returncode == 0 and "no change" in after.stdout, after.stdout
    refused = await _refused(env.login("partner-COL"), "read", topic=env.feed("USA"))
    assert isinstance(refused, TopicAuthorizationFailedError)


async def test_a_grant_to_every_user_on_a_feed_alone_is_removed_by_apply(env: Env) -> None:
    """A rule for every user (``User:*``) or for a login no policy names, on this deployment's feed or subscriber
    groups alone: `acls plan` exits 1 naming each to remove, `acls apply` removes them and exits 0, and the partner
    the rule let read another's feed is refused it again."""
    admin = Admin(env.conn)
    feed = env.feed("USA")
    intruders = [Acl("*", "TOPIC", feed, "LITERAL", "READ"),
                 Acl("*", "GROUP", f"{env.cfg.topic_prefix}.feed.", "PREFIXED", "READ"),
                 Acl("eve", "TOPIC", feed, "LITERAL", "READ")]
    assert await apply_acls(admin, AclChanges(tuple(intruders), ())) == []
    plan = subprocess.run(cli("acls", "plan"), env=env.env_vars(), capture_output=True, text=True, timeout=120,
                          check=False)
    assert plan.returncode == 1, plan.stdout + plan.stderr
    for acl in intruders:
        assert f"- {acl} (a login no policy names" in plan.stdout, plan.stdout
    apply = subprocess.run(cli("acls", "apply"), env=env.env_vars(), capture_output=True, text=True, timeout=120,
                           check=False)
    assert apply.returncode == 0, apply.stdout + apply.stderr
    current, _ = await cluster_acls(admin)
    assert not set(intruders) & current
    refused = await _refused(env.login("partner-COL"), "read", topic=feed)
    assert isinstance(refused, TopicAuthorizationFailedError)


def test_kafkas_own_console_tools_take_the_file_puente_writes(env: Env) -> None:
    """The client.properties `puente users apply` wrote for an agency works as it is with Kafka's own console
    producer and consumer (the Java client reads the same names); another party's file is refused that topic."""
    classpath = fetch_kafka(KAFKA_VERSION)
    java = ["java", "-Xmx256m", "-cp", f"{classpath}/*"]
    topic = env.names.adapter_deadletter("SNM")  # one partition: read back by partition, as an agency may (no group)
    produced = subprocess.run(
        [*java, "org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server", env.conn.bootstrap,
         "--topic", topic, "--producer.config", str(env.config("agency-SNM"))],
        input="from the console\n", capture_output=True, text=True, timeout=120, check=False)
    assert produced.returncode == 0, produced.stderr[-2000:]
    consumed = subprocess.run(
        [*java, "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", env.conn.bootstrap,
         "--topic", topic, "--partition", "0", "--offset", "earliest", "--max-messages", "1", "--timeout-ms", "30000",
         "--consumer.config", str(env.config("agency-SNM"))],
        capture_output=True, text=True, timeout=120, check=False)
    assert consumed.returncode == 0, consumed.stderr[-2000:]
    assert "from the console" in consumed.stdout
    refused = subprocess.run(
        [*java, "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", env.conn.bootstrap,
         "--topic", topic, "--partition", "0", "--offset", "earliest", "--max-messages", "1", "--timeout-ms", "10000",
         "--consumer.config", str(env.config("partner-COL"))],
        capture_output=True, text=True, timeout=120, check=False)
    assert "from the console" not in refused.stdout
    assert "TopicAuthorizationException" in refused.stdout + refused.stderr
