"""Every command reports an unreachable Kafka, and other failures, as one line with a documented exit status."""

from __future__ import annotations

import fcntl
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from unreachable import closed_port, unreachable_kafka

from adapters.config import load_config
from broker.credentials import party_folder
from puente.errors import ConfigError
from puente.settings import AGENCY_UNITS, load_settings

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "snm"
TIMEOUT_S = 2
# An unreachable Kafka must be reported within a time PUENTE_KAFKA_TIMEOUT_S controls. The bound is loose on
# purpose (a few waits of the setting, plus interpreter start on a loaded 2-core machine): it catches a command
# that ignores the setting (aiokafka's own default waits are 30-40 s), not a slow one.
BOUND_S = TIMEOUT_S * 3 + 20


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A keystore made by `puente keys init`, with one console account, so that commands get as far as Kafka."""
    root = tmp_path_factory.mktemp("cli") / "keys"
    password = root.parent / "password"
    password.write_text("correct horse battery staple\n")
    password.chmod(0o600)  # refused when others may read it, as every secret file is
    for args in (("keys", "init"), ("audit", "users", "add", "alice", "--scope", "national",
                                    "--password-file", str(password))):
        done = subprocess.run([sys.executable, "-m", "puente.cli", *args], env={**os.environ, "PUENTE_KEYS": str(root)},
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
    return root


def _puente(keys: Path, *args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    """Run a command against a Kafka at a closed port; ``env`` adds variables, or unsets one given None."""
    # No Kafka from the environment: its client configuration or bootstrap would name a live one.
    inherited = {k: v for k, v in os.environ.items() if k not in ("PUENTE_CLIENT_CONFIG", "PUENTE_BOOTSTRAP")}
    (keys.parent / "logins").mkdir(mode=0o700, exist_ok=True)  # a named PUENTE_LOGINS must be there
    variables: dict[str, str | None] = {
        **inherited, **unreachable_kafka(keys.parent), "PUENTE_KAFKA_TIMEOUT_S": str(TIMEOUT_S),
        "PUENTE_KEYS": str(keys), "PUENTE_LOGINS": str(keys.parent / "logins"),
        "PUENTE_AUDIT_INDEX": str(keys.parent / "index.sqlite"), **env}
    # The subprocess timeout only guards against a hang; the bound itself is PUENTE_KAFKA_TIMEOUT_S.
    return subprocess.run([sys.executable, "-m", "puente.cli", *args],
                          env={k: v for k, v in variables.items() if v is not None}, capture_output=True,
                          text=True, timeout=60, check=False)


COMMANDS = [
    ("topics", "apply"),
    ("topics", "plan"),
    ("broker", "run"),
    ("publish", "--count", "3"),
    ("audit", "verify"),
    ("audit", "log"),
    ("adapt", "snm", str(next(SAMPLE.glob("*.jsonl")))),
    ("subscribe", "--partner", "COL", "--key", "{keys}/partners/COL/COL-enc-2026a.json"),
    ("users", "apply"),
    ("users", "plan"),
    ("acls", "plan"),
    ("acls", "apply"),
    ("audit", "index"),
    ("audit", "collect-denials", "--log", "{empty_log}"),
    ("audit", "recalls"),
    # The console opens its query log on Kafka and catches the index up before it serves: Kafka is touched at start.
    ("audit", "serve", "--port", "{free_port}"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_an_unreachable_kafka_is_one_line_and_exit_4(keys: Path, command: tuple[str, ...]) -> None:
    """With Kafka at a closed port, each command prints one `puente: error:` line naming what to check, no
    traceback and no resource warning, and exits 4 (a dependency unavailable) within a bound set by
    PUENTE_KAFKA_TIMEOUT_S."""
    empty_log = keys.parent / "authorizer.log"
    empty_log.touch()
    args = [part.format(keys=keys, empty_log=empty_log, free_port=closed_port()) for part in command]
    started = time.monotonic()
    done = _puente(keys, *args)
    elapsed = time.monotonic() - started
    assert done.returncode == 4, done.stderr
    assert elapsed < BOUND_S, f"{elapsed:.1f}s with PUENTE_KAFKA_TIMEOUT_S={TIMEOUT_S}"
    lines = done.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("puente: error:")]
    assert len(errors) == 1, done.stderr
    assert "could not be reached" in errors[0] and f"check bootstrap.servers in {keys.parent}" in errors[0]
    assert "Traceback" not in done.stderr and "Unclosed" not in done.stderr and "Warning" not in done.stderr


@pytest.mark.parametrize(("env", "args", "code", "words"), [
    ({"PUENTE_REPLICATION": "three"}, ("topics", "apply"), 3, "PUENTE_REPLICATION"),
    ({"PUENTE_CLIENT_CONFIG": None}, ("audit", "verify"), 3, "no Kafka to connect to: set PUENTE_CLIENT_CONFIG"),
    # Only a client configuration may say Kafka has no security: an address alone would connect in clear.
    ({"PUENTE_CLIENT_CONFIG": None, "PUENTE_BOOTSTRAP": "127.0.0.1:9"}, ("audit", "verify"), 3,
     "would reach Kafka in clear and unauthenticated"),
    ({"PUENTE_CLIENT_CONFIG": "/nowhere/client.properties"}, ("audit", "verify"), 3, "/nowhere/client.properties"),
    ({}, ("subscribe", "--partner", "XX", "--key", "k.json"), 3, "unknown partner"),
    ({}, ("audit", "log", "--since", "yesterday"), 2, "ISO 8601"),
    # The instance names a receipt chain: a name no audit walk keeps a chain for is refused before anything opens.
    ({}, ("subscribe", "--partner", "COL", "--key", "k.json", "--instance", "a/b"), 3, "--instance must be 1-64"),
    # Each instance's transactional id is granted by name (partners.yaml's `instances`): another Kafka refuses.
    ({}, ("subscribe", "--partner", "COL", "--key", "k.json", "--instance", "flood-1"), 3,
     "not among those partners.yaml names for COL (main, standby): start with one of them, or add it to COL's "
     "`instances` in partners.yaml"),
    ({}, ("broker", "run", "--group-instance-id", "two words"), 3, "--group-instance-id (PUENTE_GROUP_INSTANCE_ID)"),
    ({}, ("broker", "run", "--group-instance-id", ".."), 3, "--group-instance-id"),
    ({"PUENTE_GROUP_INSTANCE_ID": "x" * 201}, ("broker", "run"), 3, "PUENTE_GROUP_INSTANCE_ID"),
    # A LITERAL * in an ACL is every group; a partner's subscriber group would be the broker's to join.
    ({"PUENTE_GROUP_ID": "*"}, ("acls", "plan"), 3, "PUENTE_GROUP_ID"),
    ({"PUENTE_GROUP_ID": "puente.feed.COL.subscriber"}, ("acls", "apply"), 3, "lies in another party's names"),
    # A misspelt setting would be ignored and its default used (the shipped policy, or COMBIFRON of Panama).
    ({"PUENTE_POLICY_DIRECTORY": "/srv/policy"}, ("policy", "lint"), 3, "did you mean PUENTE_POLICY_DIR?"),
    ({"PUENTE_AGENCY_COUNTRIES": '{"COMBIFRN": "COL"}'}, ("policy", "lint"), 3, "names COMBIFRN, not among"),
    # Plain JSON keeps the last of two: which country an agency's alerts are held to is not a thing to guess.
    ({"PUENTE_AGENCY_COUNTRIES": '{"COMBIFRON": "COL", "COMBIFRON": "PAN"}'}, ("policy", "lint"), 3,
     "names agency COMBIFRON twice"),
    ({"PUENTE_AGENCY_COUNTRIES": '{"COMBIFRON": "col"}'}, ("policy", "lint"), 3,
     "PUENTE_AGENCY_COUNTRIES (key COMBIFRON): String should match"),
    # A batch is one transaction, and a slot pauses its partition only once its queue holds one.
    ({"PUENTE_MAX_BATCH": "10000000"}, ("policy", "lint"), 3, "PUENTE_MAX_BATCH: Input should be less than"),
    ({"PUENTE_STALL_WARNING_S": "1e-300"}, ("policy", "lint"), 3, "PUENTE_STALL_WARNING_S"),
    # An agency names a keystore folder and a login: one that climbs out of its folder, or comes twice, is refused.
    ({"PUENTE_AGENCIES": '["SNM", "../broker"]'}, ("policy", "lint"), 3, "PUENTE_AGENCIES (entry 2)"),
    ({"PUENTE_AGENCIES": '["SNM", "PN", "SNM"]'}, ("policy", "lint"), 3, "names SNM more than once"),
    # Kafka would refuse the second topic (PN.X against PN_X); a folder or login by case alone is one file.
    ({"PUENTE_AGENCIES": '["SNM", "PN.X", "PN_X"]'}, ("policy", "lint"), 3, "names PN.X and PN_X, which differ"),
    ({"PUENTE_AGENCIES": '["SNM", "PN", "pn"]'}, ("policy", "lint"), 3, "names PN and pn, which differ only in case"),
    # Its key-agreement key would be the broker's own (broker-kex-<g>).
    ({"PUENTE_AGENCIES": '["SNM", "Broker"]'}, ("policy", "lint"), 3, "names Broker, the owner of the broker's own"),
])
def test_configuration_and_usage_errors_have_their_own_status(keys: Path, env: dict[str, str], args: tuple[str, ...],
                                                             code: int, words: str) -> None:
    """A bad setting or input exits 3 and a bad command line 2, each in one line naming what to fix."""
    done = _puente(keys, *args, **env)
    assert done.returncode == code, done.stderr
    assert words in done.stderr and "Traceback" not in done.stderr
    assert len([line for line in done.stderr.splitlines() if "error" in line]) == 1, done.stderr


def test_a_metrics_port_in_use_is_one_line(keys: Path) -> None:
    """`broker run --metrics-port` on a port already taken is a configuration error (exit 3) naming the port and
    the settings to change, reported before Kafka is tried: Kafka here is closed, so a 4 means the order is wrong."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _puente(keys, "broker", "run", "--metrics-port", str(port), PUENTE_METRICS_ADDRESS="127.0.0.1")
    assert done.returncode == 3, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("puente: error:") and f"127.0.0.1:{port}" in line
    assert "--metrics-port" in line and "PUENTE_METRICS_ADDRESS" in line


def test_subscribe_keeps_its_out_copy_private(keys: Path, tmp_path: Path) -> None:
    """The --out copy holds decrypted views: in a folder others may write, or an existing file others may read, it
    is refused in one line before Kafka is tried (exit 3, not the closed Kafka's 4); a new one is made 0600."""
    key = str(keys / "partners" / "COL" / "COL-enc-2026a.json")
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    readable = tmp_path / "views.jsonl"
    readable.write_text("")
    readable.chmod(0o644)
    for out, words in ((shared / "views.jsonl", "writable by others"), (readable, "run chmod 600")):
        done = _puente(keys, "subscribe", "--partner", "COL", "--key", key, "--out", str(out))
        assert done.returncode == 3 and words in done.stderr and "Traceback" not in done.stderr, done.stderr
    fresh = tmp_path / "mine" / "views.jsonl"
    fresh.parent.mkdir(mode=0o700)
    done = _puente(keys, "subscribe", "--partner", "COL", "--key", key, "--out", str(fresh))
    assert done.returncode == 4 and (fresh.stat().st_mode & 0o777) == 0o600, done.stderr  # made, then Kafka tried


def test_subscribe_refuses_an_out_file_it_never_wrote_and_leaves_it_whole(keys: Path, tmp_path: Path) -> None:
    """--out naming the partner's store, a key file or a document of one's own by mistake: refused in one line
    (exit 3) before Kafka is tried, and not a byte of it cut or appended."""
    key = keys / "partners" / "COL" / "COL-enc-2026a.json"
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o700)
    document = mine / "notes.json"
    document.write_bytes(b'{"name": "my own notes"}')
    store = mine / "feed.sqlite"
    store.write_bytes(b"SQLite format 3\x00" + bytes(4080) + b"\n" + b"\x01" * 90)
    for out in (document, store, key):
        out.chmod(0o600)
        before = out.read_bytes()
        done = _puente(keys, "subscribe", "--partner", "COL", "--key", str(key), "--out", str(out))
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 3 and len(lines) == 1 and "is no copy `puente subscribe` wrote" in lines[0], lines
        assert out.read_bytes() == before


def test_subscribe_never_makes_the_folders_of_a_mistyped_out(keys: Path, tmp_path: Path) -> None:
    """An --out file in a folder that is not there is refused in one line naming that folder (exit 3), before
    Kafka is tried; no folder is made."""
    key = str(keys / "partners" / "COL" / "COL-enc-2026a.json")
    out = tmp_path / "missing" / "dir" / "views.jsonl"
    done = _puente(keys, "subscribe", "--partner", "COL", "--key", key, "--out", str(out))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 3 and len(lines) == 1 and f"its folder {out.parent} does not exist" in lines[0], lines
    assert not (tmp_path / "missing").exists()


def test_the_default_agency_countries_follow_the_agencies(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped PUENTE_AGENCY_COUNTRIES names COMBIFRON: a deployment without that agency needs no override,
    while one set by hand must name configured agencies only."""
    for name in [n for n in os.environ if n.startswith("PUENTE_")]:
        monkeypatch.delenv(name)
    assert load_settings().agency_countries == {"COMBIFRON": "COL"}
    monkeypatch.setenv("PUENTE_AGENCIES", '["SENAN", "PN"]')
    assert load_settings().agency_countries == {}
    monkeypatch.setenv("PUENTE_AGENCY_COUNTRIES", '{"COLOMBIA": "COL"}')
    with pytest.raises(ConfigError, match="names COLOMBIA, not among PUENTE_AGENCIES"):
        load_settings()


@pytest.mark.parametrize(("env", "said"), [
    ({}, None),
    ({"PUENTE_AGENCY_UNITS": '{"SNM": ["ARC"]}'}, "names SNM, not named in PUENTE_AGENCY_COUNTRIES"),
    ({"PUENTE_AGENCY_UNITS": '{"COMBIFRON": ["ARC", "ARC"]}'}, "names unit ARC of COMBIFRON twice"),
    ({"PUENTE_AGENCY_UNITS": '{"COMBIFRON": ["COL-ARC"]}'}, "PUENTE_AGENCY_UNITS (key COMBIFRON)"),
    ({"PUENTE_AGENCY_UNITS": '{"COMBIFRON": ["Juan Perez"]}'}, "PUENTE_AGENCY_UNITS (key COMBIFRON)"),
    ({"PUENTE_AGENCY_UNITS": '{"COMBIFRON": "ARC"}'}, "PUENTE_AGENCY_UNITS (key COMBIFRON)"),
    ({"PUENTE_AGENCY_UNITS": '{"COMBIFRON": ["ARC"], "COMBIFRON": ["DIJIN"]}'}, "names agency COMBIFRON twice"),
    ({"PUENTE_AGENCY_UNITS": "[ARC]"}, 'is not JSON: give {"AGENCY": ["UNIT", ...], ...}'),
])
def test_agency_units_are_an_allow_list_of_codes(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                                                 said: str | None) -> None:
    """PUENTE_AGENCY_UNITS names, for each agency of another country, the unit codes its alerts may name: by
    default COMBIFRON's six Colombian services; an agency of the home country, a unit twice, or a unit that is no
    code is refused in one line naming the setting, never quoting the value."""
    for name in [n for n in os.environ if n.startswith("PUENTE_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if said is None:
        assert load_settings().agency_units == {"COMBIFRON": ("PONAL", "DIJIN", "ARC", "EJC", "FAC", "MIGRACION")}
        monkeypatch.setenv("PUENTE_AGENCIES", '["SENAN", "PN"]')
        assert load_settings().agency_units == {}
        return
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert said in str(caught.value) and "\n" not in str(caught.value) and "Juan" not in str(caught.value)


def test_the_shipped_units_are_those_the_shipped_adapters_name() -> None:
    """The broker's default units and the shipped adapter configuration's COMBIFRON originators are one list: a unit
    only one of them named would have its alerts refused by the adapter, or dead-lettered by the broker."""
    config = load_config()
    assert {a: set(p.originators) for a, p in config.agencies.items() if p.originators} == \
        {a: set(u) for a, u in AGENCY_UNITS.items()}


@pytest.mark.parametrize("principal", ["partner-..", "agency-../broker", "partner-a/b", "agency-", "auditors"])
def test_a_party_folder_never_leaves_its_place_in_the_keystore(tmp_path: Path, principal: str) -> None:
    """A login's name becomes a folder: one the keystore would refuse as an id names no folder at all."""
    with pytest.raises(ConfigError, match="is not one of Puente's parties"):
        party_folder(tmp_path, principal)
    assert party_folder(tmp_path, "partner-COL") == tmp_path / "partners" / "COL"


@pytest.mark.parametrize(("env", "said"), [
    ({"PUENTE_KEYS": ""}, "PUENTE_KEYS is set to nothing"),  # would be the current folder: keys written there
    ({"PUENTE_METRICS_ADDRESS": " "}, "PUENTE_METRICS_ADDRESS is set to nothing"),  # would bind every address
    ({"PUENTE_AUDIT_INDEX": ""}, "PUENTE_AUDIT_INDEX is set to nothing"),
    ({"PUENTE_KEYS": "/a", "puente_keys": "/b"}, "puente_keys is PUENTE_KEYS written otherwise"),
    ({"PUENTE_DEBUG": "yes"}, "PUENTE_DEBUG is a switch: 0 or 1"),
    ({"PUENTE_NATIVE_AVRO": "off"}, "PUENTE_NATIVE_AVRO is a switch: 0 or 1"),
    ({"PUENTE_METRICS_ADDRESS": "metrics.local"}, "PUENTE_METRICS_ADDRESS: is not an IP address"),
])
def test_a_variable_that_cannot_be_read_as_it_is_is_refused_by_name(monkeypatch: pytest.MonkeyPatch,
                                                                     env: dict[str, str], said: str) -> None:
    """A PUENTE_* variable set to nothing, given in another spelling, a switch other than 0 or 1, or a metrics
    address that is no IP address: refused in one line naming it, never read as a default, the current folder
    or every address."""
    for name in [n for n in os.environ if n.upper().startswith("PUENTE_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert said in str(caught.value) and "/b" not in str(caught.value)
    for name in env:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PUENTE_METRICS_ADDRESS", "::")
    monkeypatch.setenv("PUENTE_DEBUG", "0")
    assert load_settings().metrics_address == "::"


@pytest.mark.parametrize(("env", "said"), [
    ({"PUENTE_REPLICATION": "2", "PUENTE_MIN_INSYNC": "3"},
     "PUENTE_MIN_INSYNC (3) must be at most PUENTE_REPLICATION (2)"),
    ({"PUENTE_AUDIT_RETENTION_DAYS": str(2**63 // 86_400_000 + 1)}, "invalid setting PUENTE_AUDIT_RETENTION_DAYS"),
    ({"PUENTE_INGRESS_RETENTION_DAYS": str(10**12)}, "invalid setting PUENTE_INGRESS_RETENTION_DAYS"),
    ({"PUENTE_REPLICATION": "40000"}, "invalid setting PUENTE_REPLICATION"),
], ids=["insync-over-replication", "audit-retention", "ingress-retention", "replication"])
def test_settings_kafka_could_not_take_are_refused_by_name(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                                                           said: str) -> None:
    """More in-sync replicas than replicas (every write refused), a retention whose milliseconds overflow a Java
    long, a replication factor beyond the protocol's 16 bits: refused when read, naming the variables."""
    for name in [n for n in os.environ if n.upper().startswith("PUENTE_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=re.escape(said)):
        load_settings()
    monkeypatch.setenv("PUENTE_REPLICATION", "3")
    monkeypatch.setenv("PUENTE_MIN_INSYNC", "3")
    monkeypatch.delenv("PUENTE_AUDIT_RETENTION_DAYS", raising=False)
    monkeypatch.delenv("PUENTE_INGRESS_RETENTION_DAYS", raising=False)
    assert load_settings().effective_min_insync == 3


@pytest.mark.parametrize(("command", "said"), [
    (("audit", "collect-denials", "--log", "{missing}"), "--log {missing}: No such file or directory"),
    (("audit", "collect-denials", "--log", "{folder}"), "--log {folder}: not a regular file or a pipe"),
    (("audit", "serve", "--port", "{free_port}", "--index", "{folder}"), "--index {folder}: not a regular file"),
    (("audit", "index", "--index", "{folder}"), "--index {folder}: not a regular file"),
    (("audit", "index", "--index", "{deep}"), "--index {deep}: its folder {typo}/deep does not exist"),
    (("subscribe", "--partner", "COL", "--key", "{missing}", "--store", "{deep}"),
     "--store {deep}: its folder {typo}/deep does not exist"),
    (("audit", "users", "add", "bob", "--scope", "national", "--accounts", "{deep}"),
     "--accounts {deep}: its folder {typo}/deep does not exist"),
    (("adapt", "snm", "--watch", "{typo}"), "--watch {typo} does not exist"),
    (("adapt", "snm", "--watch", "{sample}"), "--watch {sample} is not a folder"),
], ids=["log-missing", "log-folder", "index-folder", "audit-index-folder", "audit-index-typo", "subscribe-store-typo",
        "accounts-typo", "watch-missing", "watch-file"])
def test_a_file_named_on_the_command_line_is_checked_before_kafka(keys: Path, tmp_path: Path,
                                                                  command: tuple[str, ...], said: str) -> None:
    """A missing or wrong --log, an --index that is a folder, or a file named in a folder that is not there, is a
    configuration error naming it (exit 3), found before Kafka is reached (with Kafka down it is not reported as
    Kafka being unavailable), and a mistyped path is never made into folders."""
    names = {"missing": tmp_path / "nowhere.log", "folder": tmp_path, "free_port": closed_port(),
             "typo": tmp_path / "typo", "deep": tmp_path / "typo" / "deep" / "f.sqlite",
             "sample": next(SAMPLE.glob("*.jsonl"))}
    done = _puente(keys, *[part.format(**names) for part in command])
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 3 and len(lines) == 1 and said.format(**names) in lines[0], done.stderr
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize("verb", [("audit", "index"), ("audit", "serve", "--port", "{port}")])
def test_an_audit_index_variable_in_a_missing_folder_is_named(keys: Path, tmp_path: Path,
                                                              verb: tuple[str, ...]) -> None:
    """PUENTE_AUDIT_INDEX is a path given as --index is: its folder must be there, and the error names the
    variable, so a person knows where the path came from."""
    index = tmp_path / "typo" / "i.sqlite"
    done = _puente(keys, *[part.format(port=closed_port()) for part in verb], PUENTE_AUDIT_INDEX=str(index))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 3 and len(lines) == 1, done.stderr
    assert f"PUENTE_AUDIT_INDEX {index}: its folder {index.parent} does not exist" in lines[0], done.stderr
    assert not index.parent.exists()


@pytest.mark.parametrize("name", ["PUENTE_KAFKA_TIMEOUT_S", "PUENTE_STALL_WARNING_S"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_time_setting_that_is_no_number_is_said_as_such(monkeypatch: pytest.MonkeyPatch, name: str,
                                                         value: str) -> None:
    """A time in seconds given as nan or inf is refused as not a finite number, not as out of a range it is not in."""
    for other in [n for n in os.environ if n.upper().startswith("PUENTE_")]:
        monkeypatch.delenv(other)
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"invalid setting {name}: Input should be a finite number"):
        load_settings()


@pytest.mark.parametrize("value", ["0.001", "0.009", "0.5", "0"])
def test_a_kafka_timeout_below_a_second_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, keys: Path,
                                                           value: str) -> None:
    """PUENTE_KAFKA_TIMEOUT_S below 1 s is refused in one line naming it and its bound (exit 3), before any client
    starts: too short for a TLS handshake and a SCRAM exchange, and below 10 ms librdkafka's own refusal read as a
    TLS or SASL problem. One second is taken."""
    for other in [n for n in os.environ if n.upper().startswith("PUENTE_")]:
        monkeypatch.delenv(other)
    monkeypatch.setenv("PUENTE_KAFKA_TIMEOUT_S", value)
    with pytest.raises(ConfigError, match=r"^invalid setting PUENTE_KAFKA_TIMEOUT_S: .*greater than or equal to 1"):
        load_settings()
    done = _puente(keys, "topics", "plan", PUENTE_KAFKA_TIMEOUT_S=value)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 3 and len(lines) == 1 and "PUENTE_KAFKA_TIMEOUT_S" in lines[0], done.stderr
    assert "TLS" not in lines[0] and "SASL" not in lines[0]
    monkeypatch.setenv("PUENTE_KAFKA_TIMEOUT_S", "1")
    assert load_settings().kafka_timeout_s == 1


def test_the_demo_refuses_any_kafka_keys_or_logins_but_its_own(keys: Path, tmp_path: Path) -> None:
    """`puente demo` makes keys, logins, ACLs and console accounts and publishes made-up alerts: with
    PUENTE_BOOTSTRAP or PUENTE_CLIENT_CONFIG naming another Kafka, or PUENTE_KEYS or PUENTE_LOGINS a folder
    outside .puente/demo (a ministry's, left in the shell), it stops in one line (exit 3) before it makes any
    key or asks any Kafka."""
    home = tmp_path / "home"
    home.mkdir()
    before = sorted(p.name for p in keys.rglob("*"))
    cases: list[tuple[dict[str, str | None], list[str]]] = [
        ({}, ["PUENTE_CLIENT_CONFIG names", f"PUENTE_KEYS names {keys}"]),
        ({"PUENTE_CLIENT_CONFIG": None, "PUENTE_BOOTSTRAP": "kafka.ministerio.example:9093"},
         ["PUENTE_BOOTSTRAP names kafka.ministerio.example:9093"]),
        ({"PUENTE_CLIENT_CONFIG": None}, [f"PUENTE_KEYS names {keys}", f"PUENTE_LOGINS names {keys.parent}/logins"]),
        ({"PUENTE_CLIENT_CONFIG": None, "PUENTE_KEYS": None}, [f"PUENTE_LOGINS names {keys.parent}/logins"]),
    ]
    for env, named in cases:
        done = _puente(keys, "demo", "--alerts", "10", PUENTE_HOME=str(home), **env)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 3 and len(lines) == 1, done.stderr
        assert lines[0].startswith("puente: error: puente demo runs on the local Kafka"), lines
        assert all(n in lines[0] for n in named), (named, lines)
    assert sorted(p.name for p in keys.rglob("*")) == before and list(home.iterdir()) == []


def test_a_console_whose_port_is_taken_stops_before_kafka(keys: Path) -> None:
    """`audit serve` on a port another program listens on (the running console's): one `puente: error:` line naming
    the address, exit 3, nothing on standard output, and Kafka (unreachable here) never reached: starting the query
    log would fence the console that holds the port."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        done = _puente(keys, "audit", "serve", "--port", str(port))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 3 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"puente: error: cannot listen on 127.0.0.1:{port}: the address is in use"), lines
    assert done.stdout == ""


def test_a_second_watcher_of_a_folder_stops_before_it_says_anything_or_reaches_kafka(keys: Path,
                                                                                     tmp_path: Path) -> None:
    """`adapt --watch DIR` while another watcher holds DIR's lock: one `puente: error:` line naming the folder and
    the holder, exit 3, before any "watching" line and before Kafka (unreachable here, which would be exit 4)."""
    drop = tmp_path / "drop"
    drop.mkdir()
    with open(drop / ".puente-watch.lock", "w+b") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write(b"the snm adapter (process 1)\n")
        held.flush()
        done = _puente(keys, "adapt", "combifron", "--watch", str(drop))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 3 and len(lines) == 1, done.stderr
    assert lines[0] == (f"puente: error: {drop} is watched already by the snm adapter (process 1): give each adapter "
                        "a drop folder of its own"), lines
    assert done.stdout == ""


def test_the_demo_without_a_local_kafka_says_to_start_it(keys: Path, tmp_path: Path) -> None:
    """`puente demo` where the local Kafka was never started says so in one line (exit 4, Kafka unavailable) and
    names `puente kafka up`, rather than blaming a client configuration the user never named."""
    home = tmp_path / "home"
    home.mkdir()
    done = _puente(keys, "demo", "--alerts", "10", PUENTE_HOME=str(home), PUENTE_CLIENT_CONFIG=None, PUENTE_KEYS=None,
                   PUENTE_LOGINS=None)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 4 and len(lines) == 1, done.stderr
    assert "the local Kafka is not running here" in lines[0] and "`puente kafka up`" in lines[0], lines
    assert list(home.iterdir()) == []
