"""compose.yaml describes the same secured Kafka as the local runner, in the cluster shape, and
mounts into each service only what that service is.

No container runs here (the test machine has no container engine): the files `puente kafka
compose-files` writes are checked against what compose.yaml mounts, and their security against
the local runner's, which the integration tests exercise on a real Kafka.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from cryptography import x509

from broker.kafka.acls import SCRAM_ITERATIONS
from broker.metrics import metrics_token
from puente.cli import build_parser
from puente.dev import compose
from puente.dev.localkafka import KAFKA_VERSION, LocalKafka
from puente.dev.localkafka._fetch import fetch_kafka
from puente.dev.localkafka._nodeconf import (
    NodeConf,
    format_logins_argfile,
    password_problem,
    regex_literal,
    render,
    secured_properties,
)
from puente.errors import ConfigError, KafkaSetupError

ROOT = Path(__file__).resolve().parents[2]
NODES = ["kafka-1", "kafka-2", "kafka-3"]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def _properties(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def _mapped(rules: str, dn: str) -> str | None:
    """The short principal ``ssl.principal.mapping.rules`` (one rule, then DEFAULT) gives the certificate name ``dn``
    (RFC 2253, as Kafka gives it), or None when it keeps its whole name; Python's ``re`` standing in for Java's, the
    rules using nothing the two read otherwise."""
    pattern, replacement = re.fullmatch(r"RULE:(.*)/(.*)/,DEFAULT", rules).groups()  # type: ignore[union-attr]
    found = re.search(pattern, dn)
    return found.expand(replacement.replace("$1", r"\1")) if found else None


def _mounts(service: dict) -> dict[str, tuple[str, str]]:
    """Container path -> (host path, mode) of a service's bind mounts."""
    found = {}
    for spec in service.get("volumes", []):
        parts = spec.split(":")
        found[parts[1]] = (parts[0], parts[2] if len(parts) > 2 else "rw")
    return found


def _host_path(mounts: dict[str, tuple[str, str]], container: str, deploy: Path) -> Path | None:
    """Where a container path lands on the host (``./deploy`` replaced by ``deploy``), or None if unmounted."""
    for inside, (outside, _) in sorted(mounts.items(), key=lambda m: -len(m[0])):
        if container == inside or container.startswith(inside.rstrip("/") + "/"):
            rest = container[len(inside):].lstrip("/")
            base = deploy / outside.removeprefix("./deploy/") if outside.startswith("./deploy/") else Path(outside)
            return base / rest if rest else base
    return None


@pytest.fixture(scope="module")
def deploy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files `puente kafka compose-files` writes, made through the command line."""
    out = tmp_path_factory.mktemp("compose") / "deploy"
    done = subprocess.run([sys.executable, "-m", "puente.cli", "kafka", "compose-files", "--out", str(out)],
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "docker compose up" in done.stdout
    return out


def test_compose_parses_and_has_three_kafka_nodes_each_with_its_own_storage() -> None:
    services = _compose()["services"]
    nodes = [name for name in services if name.startswith("kafka-")]
    assert nodes == NODES
    data = {_mounts(services[n])["/var/lib/kafka/data"][0] for n in nodes}
    assert data == {f"./deploy/{n}/data" for n in nodes}


def test_compose_pins_the_local_kafka_version() -> None:
    """Every Kafka service runs the official image at the version `puente kafka` fetches."""
    services = _compose()["services"]
    assert {services[n]["image"] for n in NODES} == {f"apache/kafka:{KAFKA_VERSION}"}


def test_the_nodes_form_a_kraft_quorum_with_replication_three(deploy: Path) -> None:
    ids = set()
    for name in NODES:
        props = _properties(deploy / name / "config" / "server.properties")
        assert props["process.roles"] == "broker,controller"
        assert props["controller.quorum.voters"] == "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"
        assert props["default.replication.factor"] == "3" and props["min.insync.replicas"] == "2"
        assert props["transaction.state.log.min.isr"] == "2"
        assert props["advertised.listeners"] == f"CLIENT://{name}:9092,INTERNAL://{name}:9094"
        ids.add(props["node.id"])
    assert ids == {"1", "2", "3"}


def test_the_nodes_take_only_authenticated_encrypted_connections(deploy: Path) -> None:
    """No listener in clear, an authorizer that refuses what no ACL names, and the same security
    settings as the local Kafka the tests run against."""
    local = LocalKafka("cluster")
    local_props = dict(line.split("=", 1) for line in local._properties(local.nodes[0]).splitlines())
    placeholder = NodeConf(0, "", "", "", "", "", "", 3, 2)
    prefixes = ("ssl.", "sasl.", "listener.", "authorizer", "allow.", "super.", "inter.", "controller.l",
                "connections.")
    security = [k for k in secured_properties(placeholder) if k.startswith(prefixes)]
    for name in NODES:
        props = _properties(deploy / name / "config" / "server.properties")
        assert "PLAINTEXT" not in props["listener.security.protocol.map"]
        assert props["listener.security.protocol.map"] == "CLIENT:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL"
        assert props["inter.broker.listener.name"] == "INTERNAL"
        assert props["listener.name.internal.ssl.client.auth"] == "required"
        # The nodes (a super user) log in by certificate only: no password of theirs in any file, nor on Kafka.
        assert "username" not in props["listener.name.client.scram-sha-512.sasl.jaas.config"]
        assert props["allow.everyone.if.no.acl.found"] == "false"
        assert props["listener.name.controller.ssl.client.auth"] == "required"
        # A login lasts on a connection an hour at most: a rotated or deleted password shuts its holder out.
        assert 0 < int(props["connections.max.reauth.ms"]) <= 3_600_000
        for key in security:
            if key.endswith(("location", "jaas.config")):
                continue  # paths and passwords differ by design
            assert props[key] == local_props[key], key


def test_each_node_mounts_its_own_config_and_its_certificate_names_it(deploy: Path) -> None:
    services = _compose()["services"]
    for name in NODES:
        service = services[name]
        mounts = _mounts(service)
        assert {host for host, _ in mounts.values()} == {f"./deploy/{name}/config", f"./deploy/{name}/data",
                                                           f"./deploy/{name}/logs"}
        assert mounts["/etc/puente-kafka"][1] == "ro"
        props = _properties(deploy / name / "config" / "server.properties")
        for key in ("ssl.keystore.location", "ssl.truststore.location"):
            assert (_host_path(mounts, props[key], deploy) or Path("/missing")).is_file(), key
        assert service["command"] == ["/etc/puente-kafka/start.sh"]
        start = _host_path(mounts, service["command"][0], deploy)
        assert start is not None and os.access(start, os.X_OK)
        pem = (deploy / name / "config" / "node.pem").read_bytes()
        cert = x509.load_pem_x509_certificates(pem[pem.index(b"-----BEGIN CERTIFICATE"):])[0]
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert names.get_values_for_type(x509.DNSName) == [service["hostname"]] == [name]
        assert "kafka-node" in cert.subject.rfc4514_string()
        assert _mapped(props["ssl.principal.mapping.rules"], cert.subject.rfc4514_string()) == "kafka-node"
        health = " ".join(service["healthcheck"]["test"])
        assert f"--bootstrap-server {name}:9094" in health and "--command-config" in health
        client = _properties(deploy / name / "config" / "node-client.properties")
        assert client["security.protocol"] == "SSL" and client["bootstrap.servers"] == f"{name}:9094"
        assert _host_path(mounts, client["ssl.keystore.location"], deploy) == deploy / name / "config" / "node.pem"
        assert not any("sasl" in key or "password" in key for key in client)
        logs = _mounts(service)["/var/log/kafka"][0]
        assert service["environment"]["LOG_DIR"] == "/var/log/kafka" and logs == f"./deploy/{name}/logs"


def test_only_setup_holds_the_admin_login_and_the_broker_only_its_own_folder(deploy: Path) -> None:
    services = _compose()["services"]
    holders = [name for name, s in services.items() if any("admin" in host for host, _ in _mounts(s).values())]
    assert holders == ["setup"]
    assert services["setup"]["environment"]["PUENTE_CLIENT_CONFIG"] == compose.ADMIN_CONFIG
    admin = _properties(deploy / "admin" / "admin.properties")
    setup = _mounts(services["setup"])
    assert _host_path(setup, compose.ADMIN_CONFIG, deploy) == deploy / "admin" / "admin.properties"
    assert _host_path(setup, admin["ssl.truststore.location"], deploy) == deploy / "tls" / "ca.pem"
    assert admin["bootstrap.servers"] == "kafka-1:9092,kafka-2:9092,kafka-3:9092"
    assert admin["security.protocol"] == "SASL_SSL"

    # setup writes every party's login, and reaches no one's keys: the logins live apart from the keystore
    assert {host for host, _ in setup.values()} == {"./deploy/admin", "./deploy/tls/ca.pem", "./logins"}
    assert _host_path(setup, services["setup"]["environment"]["PUENTE_LOGINS"], deploy) == Path("./logins")

    broker = services["broker"]
    mounts = _mounts(broker)
    assert {host for host, _ in mounts.values()} == {"./keys/broker", "./logins/broker", "./deploy/tls/ca.pem"}
    assert all(mode == "ro" for _, mode in mounts.values())
    config = broker["environment"]["PUENTE_CLIENT_CONFIG"]
    assert _host_path(mounts, config, deploy) == Path("./logins/broker/client.properties")
    # the login `setup` writes names the CA where the broker finds it
    assert _host_path(mounts, admin["ssl.truststore.location"], deploy) == deploy / "tls" / "ca.pem"
    for name, service in services.items():
        hosts = [host for host, _ in _mounts(service).values()]
        assert not any("ca-key" in host for host in hosts), name
        # a keys mount is one party's own folder, never the keystore or another party's folder
        assert all(host == "./keys/broker" for host in hosts if host.startswith("./keys")), name
        assert "password" not in json.dumps(service).lower(), name


def test_each_broker_replica_is_a_static_member_named_after_its_container() -> None:
    """The broker's command, as compose and then sh expand it, gives `broker run` a group.instance.id taken
    from the container's host name: one per replica, the same across the restart policy's restarts."""
    command = _compose()["services"]["broker"]["command"]
    assert command[:2] == ["sh", "-c"]
    assert "$$(cat /etc/hostname)" in command[2]  # compose's escape for a literal $; a lone $ it refuses
    script = command[2].replace("$$", "$")
    assert script.startswith(compose.ROOT_GUARD + "; ")
    script = script.removeprefix(compose.ROOT_GUARD + "; ")
    assert script.startswith("exec puente ")
    argv = {}
    for host in ("c0ffee", "d00d"):
        probe = script.replace("exec puente ", "printf '%s\\n' ", 1).replace("cat /etc/hostname", f"echo {host}")
        out = subprocess.run(["sh", "-c", probe], capture_output=True, text=True, check=True).stdout
        argv[host] = build_parser().parse_args(out.splitlines())
    assert argv["c0ffee"].group_instance_id == "broker-c0ffee"
    assert argv["d00d"].group_instance_id == "broker-d00d"
    assert argv["c0ffee"].metrics_port == 9464


def test_no_service_serves_the_metrics_off_loopback_without_a_token() -> None:
    """A service that serves /metrics (--metrics-port) binds it to loopback, where its own health check asks, or
    names the token file that guards it (``broker.metrics.metrics_token``): the broker would refuse to start
    otherwise, and any container on the network would read each partner's decision counts."""
    served = 0
    for name, service in _compose()["services"].items():
        if "--metrics-port" not in " ".join(service.get("command") or []):
            continue
        served += 1
        env = service.get("environment") or {}
        address = env.get("PUENTE_METRICS_ADDRESS", "127.0.0.1")
        token = env.get("PUENTE_METRICS_TOKEN_FILE")
        assert token or metrics_token(SimpleNamespace(metrics_token_file=None, metrics_address=address)) is None, name
        assert "127.0.0.1:9464/readyz" in " ".join(service["healthcheck"]["test"]), name
    assert served


def test_every_container_is_confined_and_named_user_set() -> None:
    """Every container runs as the user named by PUENTE_UID/PUENTE_GID (compose stops when either is unset, rather
    than guess a user who may not own the 0600 files), on a read-only root file system with only a private /tmp
    in memory to write besides its mounts, with no Linux capabilities and no privilege gained through set-uid
    programs."""
    for name, service in _compose()["services"].items():
        uid, gid = service["user"].split("}:")
        assert uid.startswith("${PUENTE_UID:?") and gid.startswith("${PUENTE_GID:?") and gid.endswith("}"), name
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"] and "cap_add" not in service, name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert not service.get("privileged") and "pid" not in service and "network_mode" not in service, name
        assert [t.split(":")[0] for t in service["tmpfs"]] == ["/tmp"], name  # noqa: S108 (the container's own)


def _fake_bin(folder: Path, uid: str | None, gid: str) -> dict[str, str]:
    """A PATH holding only ``sh`` and what the scripts call: an ``id`` saying ``uid`` (-u) and ``gid`` (-g), or
    none when ``uid`` is None, and ``puente`` and Kafka scripts that only say they ran."""
    folder.mkdir(exist_ok=True)
    tools = {"puente": 'echo "RAN puente $*"', "cat": 'echo c0ffee', "sleep": 'echo "RAN sleep $*"', "echo": None,
             "sh": None}
    if uid is not None:
        tools["id"] = f'[ "$1" = -g ] && echo {gid} || echo {uid}'
    for tool, body in tools.items():
        if body is None:
            (folder / tool).symlink_to(shutil.which(tool) or f"/bin/{tool}")
            continue
        (folder / tool).write_text(f"#!/bin/sh\n{body}\n")
        (folder / tool).chmod(0o755)
    return {**os.environ, "PATH": str(folder)}


@pytest.mark.parametrize(("uid", "gid", "runs"), [("0", "1000", False), ("1000", "0", False), ("0", "0", False),
                                                  (None, "1000", False), ("", "", False), ("1000", "1000", True)],
                         ids=["root-user", "root-group", "root", "no-id", "id-says-nothing", "a-user"])
def test_every_container_refuses_to_run_as_root_before_anything(deploy: Path, tmp_path: Path, uid: str | None,
                                                                gid: str, runs: bool) -> None:
    """PUENTE_UID or PUENTE_GID 0 would run Kafka and Puente as root, or in root's group: each container's first
    step stops with one line naming both, before a Kafka node formats its storage or a Puente command runs, and so
    it does when it cannot tell who it runs as; as any other user and group each goes on."""
    env = _fake_bin(tmp_path / "bin", uid, gid)
    scripts = {}
    for name, service in _compose()["services"].items():
        command = service["command"]
        if command == ["/etc/puente-kafka/start.sh"]:
            config = deploy / name / "config"
            scripts[name] = ((config / "start.sh").read_text().replace(compose.NODE_DATA, str(tmp_path / name))
                             .replace("/opt/kafka/bin/kafka-storage.sh", "echo RAN storage")
                             .replace("/opt/kafka/bin/kafka-server-start.sh", "echo RAN kafka"))
        else:
            assert command[:2] == ["sh", "-c"], name
            scripts[name] = command[2].replace("$$", "$")
    assert set(scripts) == {*NODES, "setup", "broker", "denials"}
    for name, script in scripts.items():
        done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env, check=False,
                              timeout=30)
        if not runs:
            assert done.returncode == 78, (name, done.stderr)
            assert "RAN" not in done.stdout, name
            assert "refusing to run as root" in done.stderr and "PUENTE_GID" in done.stderr, name
            assert len(done.stderr.splitlines()) == 1, name
        else:
            assert done.returncode == 0 and "RAN" in done.stdout and not done.stderr, (name, done.stderr)


def test_secrets_are_private_and_kept_when_written_again(deploy: Path) -> None:
    secret_files = [deploy / "secrets.json", deploy / "admin" / "admin.properties", deploy / "tls" / "ca-key.pem",
                    *(deploy / n / "config" / f for n in NODES for f in ("server.properties", "node.pem",
                                                                          "node-client.properties", "start.sh",
                                                                          compose.FORMAT_LOGINS))]
    for path in secret_files:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    for folder in [deploy, deploy / "admin", deploy / "tls", *(deploy / n / "config" for n in NODES)]:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    before = {p: p.read_bytes() for p in secret_files}
    compose.write(deploy)
    assert {p: p.read_bytes() for p in secret_files} == before


def test_the_first_logins_reach_the_storage_tool_through_a_private_file_not_its_arguments(
        deploy: Path, tmp_path: Path) -> None:
    """Kafka's storage tool takes the first SCRAM logins only as arguments, which any user of the host can
    read (``ps``) while it runs. The start script hands it ``@file`` instead, a 0600 file the tool reads itself:
    the script names no password, and Kafka's own storage tool, run here on the node's real server.properties,
    writes the admin's and the nodes' SCRAM credentials from that file, each the one for its password."""
    passwords = json.loads((deploy / "secrets.json").read_text())
    config = deploy / NODES[0] / "config"
    script = (config / "start.sh").read_text()
    assert not any(password in script for password in passwords.values())
    assert stat.S_IMODE((config / compose.FORMAT_LOGINS).stat().st_mode) == 0o600
    line = next(x for x in script.splitlines() if "kafka-storage.sh" in x)
    args = shlex.split(line.replace(">/dev/null", ""))[1:]
    assert not any(password in arg for arg in args for password in passwords.values())
    data = tmp_path / "data"
    props = tmp_path / "server.properties"
    props.write_text((config / "server.properties").read_text().replace(compose.NODE_DATA, str(data)))
    args = [str(props) if a == f"{compose.NODE_CONFIG}/server.properties"
            else a.replace(compose.NODE_CONFIG, str(config)) for a in args]
    classpath = fetch_kafka(KAFKA_VERSION)
    subprocess.run(["java", "-cp", f"{classpath}/*", "kafka.tools.StorageTool", *args], check=True,
                   capture_output=True, text=True, timeout=120)
    dump = subprocess.run(["java", "-cp", f"{classpath}/*", "kafka.tools.DumpLogSegments",
                           "--cluster-metadata-decoder", "--files", str(data / "bootstrap.checkpoint")],
                          check=True, capture_output=True, text=True, timeout=120).stdout
    made = {(d := json.loads(x.split("payload: ", 1)[1])["data"])["name"]: d for x in dump.splitlines()
            if "USER_SCRAM_CREDENTIAL_RECORD" in x}
    assert set(made) == set(passwords) == {"admin"}  # the nodes log in by certificate: no SCRAM login
    for name, record in made.items():  # SCRAM (RFC 5802): StoredKey = H(HMAC(SaltedPassword, "Client Key"))
        salted = hashlib.pbkdf2_hmac("sha512", passwords[name].encode(), base64.b64decode(record["salt"]),
                                     record["iterations"])
        client_key = hmac.new(salted, b"Client Key", hashlib.sha512).digest()
        assert base64.b64decode(record["storedKey"]) == hashlib.sha512(client_key).digest(), name
        assert record["iterations"] == SCRAM_ITERATIONS == 8192, name  # the parties' count, not Kafka's 4096


def test_the_first_logins_file_goes_once_the_node_is_formatted(deploy: Path) -> None:
    """The argument file carries the admin's password: written again after a node's first start (its storage
    holds meta.properties), it is removed instead, and never written back for that node."""
    assert all((deploy / n / "config" / compose.FORMAT_LOGINS).exists() for n in NODES)
    (deploy / NODES[0] / "data" / "meta.properties").write_text("version=1\n")
    compose.write(deploy)
    assert not (deploy / NODES[0] / "config" / compose.FORMAT_LOGINS).exists()
    assert all((deploy / n / "config" / compose.FORMAT_LOGINS).exists() for n in NODES[1:])
    compose.write(deploy)
    assert not (deploy / NODES[0] / "config" / compose.FORMAT_LOGINS).exists()


def test_a_password_the_argument_file_cannot_carry_is_refused_by_name(tmp_path: Path) -> None:
    compose.write(tmp_path / "d")
    secrets_file = tmp_path / "d" / "secrets.json"
    secrets_file.write_text(json.dumps({"admin": "has space", "kafka-node": "fine-1"}))
    with pytest.raises(ConfigError, match="'admin' password") as caught:
        compose.write(tmp_path / "d")
    assert "has space" not in str(caught.value) and str(secrets_file) in str(caught.value)


@pytest.mark.parametrize("formatted", [False, True], ids=["first-start", "restart"])
def test_the_storage_tool_with_the_passwords_runs_only_on_the_first_start(deploy: Path, tmp_path: Path,
                                                                          formatted: bool) -> None:
    """The start script formats the storage (with the first SCRAM logins) only while the node's storage holds
    no meta.properties."""
    script = (deploy / NODES[0] / "config" / "start.sh").read_text()
    data = tmp_path / "data"
    data.mkdir()
    if formatted:
        (data / "meta.properties").write_text("version=1\n")
    probe = (script.replace(compose.NODE_DATA, str(data)).replace("$(id -u)", "1000").replace("$(id -g)", "1000")
             .replace("/opt/kafka/bin/kafka-storage.sh", "echo FORMAT")
             .replace("exec /opt/kafka/bin/kafka-server-start.sh", "echo START"))
    probe = probe.replace(" >/dev/null", "")
    out = subprocess.run(["sh", "-c", probe], capture_output=True, text=True, check=True).stdout
    assert ("FORMAT" in out) is not formatted and "START" in out


def test_the_local_runner_formats_through_a_private_file_it_removes(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`puente kafka up` formats a new node the same way: the storage tool's command line names ``@file``,
    never a password, and the file is gone once the tool has run, also when running it fails; one a killed
    format left behind is removed at the next start."""
    local = LocalKafka("cluster", root=tmp_path)
    seen: list[tuple[list[str], str]] = []
    monkeypatch.setattr("puente.dev.localkafka._cluster.fetch_kafka", lambda version: tmp_path / "classpath")

    def run(cmd: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        argfile = Path(next(a for a in cmd if a.startswith("@"))[1:])
        assert stat.S_IMODE(argfile.stat().st_mode) == 0o600
        seen.append((cmd, argfile.read_text()))
        if len(seen) == 2:
            raise OSError("java: not found")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr("puente.dev.localkafka._cluster.subprocess.run", run)
    with pytest.raises(OSError):
        local._prepare()
    assert not list(tmp_path.rglob("format-logins.args"))
    leftover = tmp_path / "cluster" / "node1" / "format-logins.args"
    leftover.write_text("--add-scram\n")
    (tmp_path / "cluster" / "node1" / "data").mkdir()
    (tmp_path / "cluster" / "node1" / "data" / "meta.properties").write_text("version=1\n")
    local._prepare()
    assert not list(tmp_path.rglob("format-logins.args"))
    passwords = json.loads((tmp_path / "cluster" / "secrets.json").read_text())
    assert len(seen) == 4  # node 1, node 2 (failed); then nodes 2 and 3 (node 1 formatted)
    for cmd, text in seen:
        assert not any(password in arg for arg in cmd for password in passwords.values())
        assert all(f"name={name},password={password},iterations={SCRAM_ITERATIONS}]" in text
                   for name, password in passwords.items())


@pytest.mark.parametrize("password", ["has space", "line\nbreak", "a,b", "x]", "q\"", "", "back\\slash", "caf\u00e9"])
def test_a_password_the_argument_file_cannot_carry_is_refused_naming_only_the_login(password: str) -> None:
    with pytest.raises(KafkaSetupError, match="'admin' password") as caught:
        format_logins_argfile({"admin": password, "kafka-node": "fine-1"})
    assert not password or password not in str(caught.value)
    assert "name=admin,password=a!b~#@$%" in format_logins_argfile({"admin": "a!b~#@$%", "kafka-node": "k"})


def test_only_a_node_certificates_whole_name_maps_to_the_node_principal() -> None:
    """The controller listener's principal comes from the client certificate's name (RFC 2253, as Kafka gives
    it): CN=kafka-node with the O the local CA puts in every certificate it makes is the super user; a CN=kafka-node
    certificate of any other organisation is not (the same CA may be made to sign one), nor a name the same CA
    signed with kafka-node as a later CN, or inside another attribute (a greedy rule took the last CN), and no
    other CN becomes a short name (CN=admin was the admin)."""
    rule = secured_properties(NodeConf(0, "", "", "", "", "", "", 3, 2))["ssl.principal.mapping.rules"]
    assert "\\" not in rule  # a properties file would read a backslash as an escape

    def principal(dn: str) -> str | None:
        return _mapped(rule, dn)

    assert principal("CN=kafka-node,O=Puente (local)") == "kafka-node"
    for hostile in ("CN=kafka-node,O=Ministry", "CN=kafka-node,O=Puente (local)x", "CN=kafka-node,O=Puente xlocalx",
                    "CN=kafka-node,O=Puente local", "CN=kafka-node,O=Puente (local),O=Ministry",
                    "CN=alice,CN=kafka-node,O=Ministry", "CN=alice,OU=ACN=kafka-node,O=Ministry",
                    "CN=alice,O=Ministry,CN=kafka-node", "OU=x,CN=kafka-node,O=Ministry", "CN=admin,O=Ministry",
                    "CN=broker,O=Ministry"):
        assert principal(hostile) is None, hostile  # its whole name, then: no ACL names it


def test_the_node_rule_matches_the_certificates_the_local_ca_issues(tmp_path: Path) -> None:
    """The organisation the rule pins is the one the project's CA writes: a node certificate it issues (as the local
    runner and `puente kafka compose-files` do) maps to kafka-node."""
    from puente.dev import pki

    rule = secured_properties(NodeConf(0, "", "", "", "", "", "", 3, 2))["ssl.principal.mapping.rules"]
    pem = pki.issue(tmp_path, "node1", ["127.0.0.1"], common="kafka-node").read_bytes()
    cert = x509.load_pem_x509_certificates(pem[pem.index(b"-----BEGIN CERTIFICATE"):])[0]
    assert _mapped(rule, cert.subject.rfc4514_string()) == "kafka-node"


@pytest.mark.parametrize(("text", "regex"), [("Puente (local)", "Puente [(]local[)]"), ("a.b*c", "a[.]b[*]c"),
                                             ("kafka-node_1", "kafka-node_1"), ("x$|y?", "x[$][|]y[?]")])
def test_a_regex_literal_matches_only_its_text_and_holds_no_backslash(text: str, regex: str) -> None:
    """Each regular-expression character becomes a one-character class, never a backslash escape."""
    assert regex_literal(text) == regex
    assert re.fullmatch(regex, text)
    assert not re.fullmatch(regex, "".join(c if c.isalnum() or c in "-_ " else "x" for c in text)) or regex == text


@pytest.mark.parametrize("text", ["a/b", "a\\b", "a,b", "a[b", "a^b", "caf\u00e9", "a\nb"])
def test_a_regex_literal_refuses_what_it_cannot_write_as_itself(text: str) -> None:
    """A rule's end ("/"), a backslash, what RFC 2253 escapes in a name, a class's own syntax, control and non-ASCII
    characters are refused, never written into a rule that would match something else."""
    with pytest.raises(KafkaSetupError, match="cannot be matched by a principal mapping rule"):
        regex_literal(text)


def _puente_steps(lines: list[str]) -> list[list[str]]:
    """The puente command lines among ``lines`` (those starting ``puente`` or ``VAR=value puente``; the prose between
    them left out), their ``VAR=value`` prefixes and ``#`` comments dropped."""
    steps = []
    for line in lines:
        if not re.match(r"\s*([A-Z_]+=\S*\s+)*puente\s", line):
            continue
        words = shlex.split(line, comments=True)
        while words and "=" in words[0] and not words[0].startswith("-"):
            words = words[1:]
        if words and words[0] == "puente":
            steps.append(words[1:])
    return steps


def _check_key_steps(steps: list[list[str]], where: str) -> None:
    """Every step parses with Puente's own parser; no step makes another party's private keys on the broker's host:
    no `keys init`, and `keys generate` only for the broker; public halves are imported, with their fingerprint,
    into the folder the broker service mounts."""
    mounted = {Path(host) for host, _ in _mounts(_compose()["services"]["broker"]).values() if "keys" in host}
    keys = [step for step in steps if step[0] == "keys"]
    for step in steps:
        build_parser(step).parse_args(step)  # a verb or flag the command line does not have exits here
    assert keys and all(step[1] != "init" for step in keys), f"{where}: `keys init` makes every party's keys"
    generated = [step for step in keys if step[1] == "generate"]
    assert generated and all(build_parser(s).parse_args(s).holder == "broker" for s in generated), where
    imports = [build_parser(s).parse_args(s) for s in keys if s[1] == "import-public"]
    assert imports and all(a.fingerprint and Path(a.dir) in mounted for a in imports), where


def test_the_compose_steps_make_only_the_brokers_keys_and_import_public_halves(tmp_path: Path) -> None:
    """compose.yaml's steps and `kafka compose-files`' next steps keep every party's private keys on its own side:
    the broker generates its own, and imports the public halves it is handed, each held to its fingerprint."""
    header = []
    for line in (ROOT / "compose.yaml").read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line.removeprefix("#"))
    _check_key_steps(_puente_steps(header), "compose.yaml")
    done = subprocess.run([sys.executable, "-m", "puente.cli", "kafka", "compose-files", "--out",
                           str(tmp_path / "deploy")], capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    _check_key_steps(_puente_steps(done.stdout.split("next:", 1)[1].splitlines()), "compose-files")


def _ignored(patterns: list[str], path: str) -> bool:
    """Whether Docker leaves ``path`` (relative to the context) out under .dockerignore ``patterns``: the last
    pattern matching the path or one of its folders decides, ``!`` taking it back in; ``*`` stays within a name,
    ``**`` crosses folders."""
    def matches(pattern: str) -> bool:
        regex = "".join(".*" if part == "**" else "[^/]*" if part == "*" else "[^/]" if part == "?" else
                        re.escape(part) if not part.startswith("[") else part
                        for part in re.split(r"(\*\*|\*|\?|\[[^]]*\])", pattern.strip("/")) if part)
        parts = path.split("/")
        return any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1))
    ignored = False
    for pattern in patterns:
        if matches(pattern.removeprefix("!")):
            ignored = not pattern.startswith("!")
    return ignored


def test_the_build_context_holds_what_the_dockerfile_copies_and_no_secret() -> None:
    """compose builds the service image from this folder, beside ./deploy, ./keys, ./logins and .puente/: the
    .dockerignore is an allow-list, so every file the Dockerfile's COPY lines take is in the context (those git
    tracks, every one) and the secrets, the virtualenv, git and the test trees are not, nor a secret a command
    left inside a copied package."""
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    copied = [word for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")
              for word in line.split()[1:-1]]
    assert copied and all(not _ignored(patterns, source) for source in copied), copied
    tracked = subprocess.run(["git", "ls-files", *copied], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    assert tracked and [path for path in tracked if _ignored(patterns, path) and not path.startswith("puente/dev/")] \
        == []
    # The development tools are left out of the context, not deleted in a later layer (which would keep them).
    assert all(_ignored(patterns, path) for path in tracked if path.startswith("puente/dev/"))
    assert "puente/dev" not in (ROOT / "Dockerfile").read_text().split("RUN", 1)[1].split("\n", 1)[0]
    for secret in ("deploy/tls/ca-key.pem", "deploy/kafka-1/config/format-logins.args", "keys/broker/x.json",
                   "logins/broker/client.properties", ".puente/kafka/single/secrets.json", ".venv/bin/python",
                   ".git/config", "tests/unit/test_compose.py", "bench/RESULTS.md", "samples/pn/x.csv",
                   "compose.yaml", "broker/.puente/keys/broker/k.json", "puente/tls/ca.pem",
                   "policies/client.properties", "broker/__pycache__/access.cpython-311.pyc",
                   "adapters/index.sqlite", "puente/dev/secrets.json"):
        assert _ignored(patterns, secret), secret


HAND_SET = ['abc"LEAKEDTAIL', "abc\\LEAKEDTAIL", "abc\u00e9LEAKEDTAIL", "abc\tLEAKEDTAIL", "abc LEAKEDTAIL"]


@pytest.mark.parametrize("formatted", [False, True], ids=["unformatted", "formatted"])
@pytest.mark.parametrize("password", HAND_SET)
def test_a_hand_set_password_no_properties_file_carries_is_refused_on_every_run(tmp_path: Path, password: str,
                                                                                 formatted: bool) -> None:
    """The reviewer's probe: a password set by hand to abc"LEAKEDTAIL (or with a backslash, a non-ASCII
    character, white space) reached server.properties as abc\\"LEAKEDTAIL, which Java reads back as abc"LEAKEDTAIL
    and the JAAS parser logged the tail of. compose-files refuses it on every run, formatted or not, naming the file
    and the login and never the value, and rewrites no file with it."""
    deploy = tmp_path / "deploy"
    compose.write(deploy, nodes=1)
    if formatted:
        (deploy / "kafka-1" / "data" / "meta.properties").write_text("version=1\n")
    before = {p: p.read_bytes() for p in deploy.rglob("*.properties")}
    (deploy / "secrets.json").write_text(json.dumps({"admin": password}))
    with pytest.raises(ConfigError) as caught:
        compose.write(deploy, nodes=1)
    message = str(caught.value)
    assert "'admin' password" in message and str(deploy / "secrets.json") in message
    assert "LEAKEDTAIL" not in message and "\n" not in message
    assert {p: p.read_bytes() for p in deploy.rglob("*.properties")} == before


@pytest.mark.parametrize("password", HAND_SET)
def test_the_local_kafka_refuses_a_hand_set_password_no_properties_file_carries(
        tmp_path: Path, password: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`puente kafka up` on a formatted node refuses the same hand-set passwords before writing server.properties
    (the storage tool, which checked them before, no longer runs for a formatted node)."""
    local = LocalKafka("single", root=tmp_path)
    monkeypatch.setattr("puente.dev.localkafka._cluster.fetch_kafka", lambda version: tmp_path / "classpath")
    monkeypatch.setattr("puente.dev.localkafka._cluster.subprocess.run",
                        lambda cmd, **_: subprocess.CompletedProcess(cmd, 0, "", ""))
    local._prepare()
    (local.nodes[0].folder / "data").mkdir(exist_ok=True)
    (local.nodes[0].folder / "data" / "meta.properties").write_text("version=1\n")
    props = local.nodes[0].folder / "server.properties"
    before = props.read_bytes()
    (local.folder / "secrets.json").write_text(json.dumps({"admin": password, "kafka-node": "fine-1"}))
    with pytest.raises(ConfigError, match="'admin' password") as caught:
        local._prepare()
    assert "LEAKEDTAIL" not in str(caught.value) and props.read_bytes() == before


@pytest.mark.parametrize("value", ['x\\"y', "a\nb=c", "caf\u00e9", " lead", "tab\tin"])
def test_every_value_written_into_server_properties_is_checked_as_client_files_are(value: str) -> None:
    """render refuses a value Java's Properties reader would read otherwise (a backslash escape, a line break
    starting a setting of its own, ISO-8859-1, white space it drops), naming the setting, never the value."""
    with pytest.raises(KafkaSetupError, match=r"log\.dirs") as caught:
        render({"node.id": "1", "log.dirs": value})
    assert value.strip() not in str(caught.value)
    conf = NodeConf(node_id=1, listeners="CLIENT://:9092", advertised="CLIENT://h:9092", voters="1@h:9093",
                    keystore="/k.pem", truststore="/ca.pem", log_dirs=value, replication=1, min_insync=1)
    with pytest.raises(KafkaSetupError, match=r"log\.dirs"):
        render(secured_properties(conf))
    assert password_problem("abc-DEF_123.~!") is None


def test_the_nodes_offer_only_aead_suites_with_forward_secrecy(deploy: Path) -> None:
    """server.properties names its cipher suites: TLS 1.3's and, for TLS 1.2, ECDHE with the node's ECDSA key and
    AES-GCM or ChaCha20-Poly1305; never Java's default list, which holds CBC suites with SHA-1 MACs."""
    props = _properties(deploy / NODES[0] / "config" / "server.properties")
    suites = props["ssl.cipher.suites"].split(",")
    assert props["ssl.enabled.protocols"] == "TLSv1.3,TLSv1.2"
    assert {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"} <= set(suites)
    for suite in suites:
        assert suite.endswith(("_GCM_SHA256", "_GCM_SHA384", "_POLY1305_SHA256")), suite
        assert suite.startswith(("TLS_AES_", "TLS_CHACHA20_", "TLS_ECDHE_ECDSA_WITH_")), suite


def test_a_kept_node_password_is_dropped_with_a_note_saying_how_to_delete_its_login(tmp_path: Path) -> None:
    """A deployment formatted when the nodes logged in by password kept kafka-node's in secrets.json: compose-files
    removes it from the file (0600 still, the admin's kept), and says once, in one line, to restart every node
    together and then delete that SCRAM login with Kafka's tool over the internal port by the nodes' certificate."""
    deploy = tmp_path / "deploy"
    assert compose.write(deploy).notes == ()
    secrets_file = deploy / "secrets.json"
    kept = json.loads(secrets_file.read_text())
    secrets_file.write_text(json.dumps({**kept, "kafka-node": "old-node-password-1"}))
    for n in NODES:
        (deploy / n / "data" / "meta.properties").write_text("version=1\n")
    notes = compose.write(deploy).notes
    assert json.loads(secrets_file.read_text()) == kept
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert len(notes) == 1 and "\n" not in notes[0] and "old-node-password-1" not in notes[0]
    assert "docker compose stop kafka-1 kafka-2 kafka-3" in notes[0] and "not one at a time" in notes[0]
    assert ("docker compose exec kafka-1 /opt/kafka/bin/kafka-configs.sh --bootstrap-server kafka-1:9094 "
            "--command-config /etc/puente-kafka/node-client.properties --alter --entity-type users "
            "--entity-name kafka-node --delete-config SCRAM-SHA-512") in notes[0]
    assert compose.write(deploy).notes == ()
