"""`puente kafka stop-node|start-node`: one node of the local cluster, with a one-line error for every misuse."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from puente import cli
from puente.dev.localkafka import LocalKafka, NodeProcess, record_of
from puente.errors import KafkaSetupError


def _puente(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PUENTE_HOME": str(home), "PUENTE_KAFKA_CLUSTER_PORT": "18492"}
    return subprocess.run([sys.executable, "-m", "puente.cli", "kafka", *args], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


# A stand-in for a node's Java process: its command line names kafka.Kafka and the node's server.properties, as
# the real one does; it ignores SIGTERM, so only SIGKILL ends it at once. No Java is started.
_FAKE_NODE = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"

FakeNode = Callable[[LocalKafka, int], "subprocess.Popen[bytes]"]


@pytest.fixture
def fake_node() -> Iterator[FakeNode]:
    """Start a stand-in for node N's Kafka and record it in the node's kafka.pid, as `kafka up` does."""
    started: list[subprocess.Popen[bytes]] = []

    def start(kafka: LocalKafka, node_id: int) -> subprocess.Popen[bytes]:
        folder = kafka.nodes[node_id - 1].folder
        proc = subprocess.Popen([sys.executable, "-c", _FAKE_NODE, "kafka.Kafka", str(folder / "server.properties")])
        started.append(proc)
        (folder / "kafka.pid").write_text(record_of(proc.pid).line())
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """A process of the same user that is no Kafka node: a pid file may come to name it once its pid is reused."""
    proc = subprocess.Popen(["sleep", "60"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def empty_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalKafka:
    """A cluster folder with no node running."""
    monkeypatch.setenv("PUENTE_HOME", str(tmp_path))
    monkeypatch.setenv("PUENTE_KAFKA_CLUSTER_PORT", "18492")
    kafka = LocalKafka("cluster")
    for node in kafka.nodes:
        node.folder.mkdir(parents=True)
    return kafka


@pytest.fixture
def sleeper(empty_cluster: LocalKafka, fake_node: FakeNode) -> subprocess.Popen[bytes]:
    """Node 1's stand-in process."""
    return fake_node(empty_cluster, 1)


@pytest.fixture
def cluster(empty_cluster: LocalKafka, sleeper: subprocess.Popen[bytes]) -> LocalKafka:
    """A cluster folder whose node 1 "runs": its pid file records a stand-in process (no Java is started)."""
    return empty_cluster


def test_a_node_number_outside_the_cluster_is_refused(tmp_path: Path) -> None:
    """Node 4, 0, 99 or -1 of a 3-node cluster is a usage error (exit 2) naming the nodes there are, in one line
    after the usage."""
    for args in (("stop-node", "4"), ("start-node", "0"), ("stop-node", "4", "--kill"), ("stop-node", "99"),
                 ("stop-node", "-1"), ("start-node", "two")):
        done = _puente(tmp_path, *args)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        usage, line = done.stderr.strip().splitlines()
        assert usage.startswith("usage: puente kafka") and line.startswith(f"puente kafka {args[0]}: error: "), line
        assert "give a whole number from 1 to 3" in line or "not a whole number" in line, line


def test_with_no_cluster_running_both_verbs_say_how_to_start_it(tmp_path: Path) -> None:
    """Stopping or starting a node when no node runs is one line pointing at `puente kafka up --shape cluster`."""
    for verb in ("stop-node", "start-node"):
        done = _puente(tmp_path, verb, "2")
        assert done.returncode != 0 and "Traceback" not in done.stderr
        line, = done.stderr.strip().splitlines()
        assert "no local Kafka (cluster) is running" in line and "puente kafka up --shape cluster" in line


def test_stopping_a_stopped_node_and_starting_a_running_one_are_errors(cluster: LocalKafka) -> None:
    """A node already down cannot be stopped, one already up cannot be started; the error says which."""
    with pytest.raises(KafkaSetupError, match=r"^node 2 is already stopped$"):
        cluster.stop_one(2)
    with pytest.raises(KafkaSetupError, match=r"^node 1 is already running \(pid \d+\)$"):
        cluster.start_one(1)


def test_stop_node_kills_the_nodes_process_and_forgets_it(cluster: LocalKafka,
                                                          sleeper: subprocess.Popen[bytes]) -> None:
    """`--kill` ends the node's process with SIGKILL and removes its pid file; status then says stopped."""
    cluster.stop_one(1, kill=True)
    # Gone within 10 s, though it ignores SIGTERM (a stop without --kill waits 30 s for it). Its status is
    # -SIGKILL, or 0 when stop_node reaped it first (it is this test's child), which Popen reads as 0.
    assert sleeper.wait(timeout=10) in (-signal.SIGKILL, 0)
    assert not (cluster.nodes[0].folder / "kafka.pid").exists()
    assert [s.alive for s in cluster.status()] == [False, False, False]


def test_readiness_names_the_node_that_is_not_ready(cluster: LocalKafka, fake_node: FakeNode) -> None:
    """A stopped node, then a running one that does not answer on its port, is what the wait reports, in one
    line after its timeout."""
    assert cluster.readiness() == "node 2 is not running"
    for node in cluster.nodes[1:]:
        fake_node(cluster, node.node_id)
    assert cluster.readiness() == "node 1 does not answer on 127.0.0.1:18492 yet"
    with pytest.raises(KafkaSetupError) as failed:
        cluster.wait_ready(timeout=0)
    assert str(failed.value) == "Kafka (cluster) was not ready within 0s: node 1 does not answer on 127.0.0.1:18492 yet"


@pytest.mark.parametrize(("variable", "value"), [
    ("PUENTE_KAFKA_PORT", "abc"), ("PUENTE_KAFKA_PORT", "99999"), ("PUENTE_KAFKA_PORT", "-5"),
    ("PUENTE_KAFKA_PORT", "65535"), ("PUENTE_KAFKA_CLUSTER_PORT", "65528"),
])
def test_a_first_port_that_leaves_a_port_out_of_range_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str], variable: str,
                                                                 value: str) -> None:
    """A first port that is no number, or leaves one of the ports the local Kafka uses outside 1 to 65535, is
    one line naming the variable and the range (exit 3), never an internal error nor a port Kafka would refuse."""
    monkeypatch.setenv("PUENTE_HOME", str(tmp_path))
    monkeypatch.setenv(variable, value)
    shape = "single" if variable == "PUENTE_KAFKA_PORT" else "cluster"
    assert cli.main(["kafka", "env", "--shape", shape]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    highest = 65536 - (3 if shape == "single" else 9)  # three ports a node: client, controller, internal
    assert len(err) == 1 and variable in err[0] and f"from 1 to {highest}" in err[0], err
    monkeypatch.setenv(variable, str(highest))
    assert cli.main(["kafka", "env", "--shape", shape]) == 0 and f"127.0.0.1:{highest}" in capsys.readouterr().out


def test_the_kafka_verbs_refuse_a_misspelt_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A misspelt PUENTE_KAFKA_PORT is named, with the spelling meant, before a Kafka starts on the default."""
    monkeypatch.setenv("PUENTE_HOME", str(tmp_path))
    monkeypatch.setenv("PUENTE_KAFKA_PROT", "19192")
    assert cli.main(["kafka", "env"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "PUENTE_KAFKA_PROT is not a Puente setting (did you mean PUENTE_KAFKA_PORT?)" in err[0]


@pytest.mark.parametrize(("variable", "value", "verb"), [
    ("PUENTE_DEBUG", "yes", ["wipe"]), ("PUENTE_DEBUG", "yes", ["down"]), ("PUENTE_FOO", "1", ["status"]),
    ("PUENTE_DEBUG", "yes", ["env", "--shape", "cluster"]), ("PUENTE_FOO", "1", ["stop-node", "2"]),
])
def test_a_stray_variable_is_a_warning_for_the_verbs_that_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str], variable: str,
                                                                value: str, verb: list[str]) -> None:
    """`kafka wipe|down|status|env|stop-node` go on past a variable they do not read, with one warning line:
    refused, `make clean` and the scripts' cleanup traps (which hide the error) would leave Kafka running. (A name
    that is no setting stops a wipe all the same: what it deletes may be the data PUENTE_HOME misspelt points away
    from, `test_settings_names`.)"""
    monkeypatch.setenv("PUENTE_HOME", str(tmp_path))
    monkeypatch.setenv(variable, value)
    data = tmp_path / "kafka" / "single" / "node1"
    data.mkdir(parents=True)
    code = cli.main(["kafka", *verb])
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith(f"puente: warning: {variable}") and "going on" in err[0], err
    if verb[0] == "stop-node":  # no cluster runs here: its own error, after the warning
        assert code == 4 and len(err) == 2 and "no local Kafka (cluster) is running" in err[1], err
    elif verb[0] == "env":  # no cluster is made here: the note that its client configuration is not made yet
        assert code == 0 and len(err) == 2 and "does not exist" in err[1], err
    else:
        assert code in (0, 1) and len(err) == 1, err  # status: 1, its node is stopped
    assert data.exists() == (verb[0] != "wipe")


@pytest.mark.parametrize(("variable", "value"), [("PUENTE_HOMR", "/elsewhere"), ("PUENTE_HOME", " "),
                                                 ("PUENTE_KAFKA_PROT", "19192"), ("puente_home", "x")])
def test_a_problem_with_where_kafka_is_still_stops_a_wipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str], variable: str,
                                                          value: str) -> None:
    """What `kafka wipe` reads itself (PUENTE_HOME, the port), misspelt, empty or given twice, is still refused in
    one line: wiping the default place would stop and delete another Kafka than the one meant."""
    monkeypatch.setenv("PUENTE_HOME", str(tmp_path))
    monkeypatch.setenv(variable, value)
    data = tmp_path / "kafka" / "single" / "node1"
    data.mkdir(parents=True)
    assert cli.main(["kafka", "wipe"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("puente: error: ") and data.exists(), err


@pytest.mark.parametrize("verb", [["up"], ["start-node", "2"], ["fetch"]])
def test_the_verbs_that_start_kafka_refuse_a_stray_variable(verb: list[str], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A Kafka is started, or fetched, only with every PUENTE_* variable read as meant: exit 3, one line."""
    monkeypatch.setenv("PUENTE_HOME", str(tmp_path))
    monkeypatch.setenv("PUENTE_DEBUG", "yes")
    assert cli.main(["kafka", *verb]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["puente: error: PUENTE_DEBUG is a switch: 0 or 1"], err


def test_kafka_env_before_kafka_up_says_the_file_it_names_is_not_made_yet(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Before `kafka up` the admin's client configuration does not exist: env still prints what to eval (standard
    output unchanged), and says on standard error that the file is not made yet and which command makes it."""
    monkeypatch.setenv("PUENTE_HOME", str(tmp_path))
    assert cli.main(["kafka", "env", "--shape", "cluster"]) == 0
    captured = capsys.readouterr()
    assert [line.split("=")[0] for line in captured.out.splitlines()] == ["export PUENTE_BOOTSTRAP",
                                                                          "export PUENTE_CLIENT_CONFIG"]
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0] and "`puente kafka up --shape cluster` first" in err[0], err
    config = Path(shlex.split(captured.out.splitlines()[1])[1].split("=", 1)[1])
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("made by `kafka up`\n")
    assert cli.main(["kafka", "env", "--shape", "cluster"]) == 0 and capsys.readouterr().err == ""


def _stale_records(kafka: LocalKafka, bystander: subprocess.Popen[bytes],
                   sleeper: subprocess.Popen[bytes]) -> list[str]:
    """Node 1's kafka.pid as a reused pid leaves it: a bare pid (as the reviewer's probe wrote), the bystander's
    pid with its own start time (not a Kafka), and the node's own command line under a later start time."""
    own = record_of(sleeper.pid)
    return [f"{bystander.pid}\n", record_of(bystander.pid).line(), NodeProcess(own.pid, own.start - 1).line()]


@pytest.mark.parametrize("which", [0, 1, 2])
@pytest.mark.parametrize("verb", [["down"], ["wipe"], ["stop-node", "1", "--kill"], ["status"]])
def test_a_pid_file_naming_another_process_is_stale_never_signalled(
        empty_cluster: LocalKafka, fake_node: FakeNode, bystander: subprocess.Popen[bytes],
        capsys: pytest.CaptureFixture[str], verb: list[str], which: int) -> None:
    """A kafka.pid whose pid now names a process that is not the node's Kafka (another program, or one started
    after the record) is not the node: `down`, `wipe`, `stop-node` and `status` signal nothing, remove the file
    with a note naming it on standard error, and `status` says stopped (exit 1)."""
    kafka = empty_cluster
    other = fake_node(kafka, 2)  # a stand-in under node 2's name: its start time is later than the record says
    pid_file = kafka.nodes[0].folder / "kafka.pid"
    record = _stale_records(kafka, bystander, other)[which]
    pid_file.write_text(record)
    named = int(record.split()[0])
    (kafka.nodes[1].folder / "kafka.pid").unlink()
    code = cli.main(["kafka", *verb, "--shape", "cluster"] if verb[0] != "stop-node" else ["kafka", *verb])
    captured = capsys.readouterr()
    assert bystander.poll() is None and other.poll() is None, "a process that is not the node was signalled"
    assert not pid_file.exists()
    notes = [line for line in captured.err.splitlines() if "note:" in line]
    assert len(notes) == 1 and str(pid_file) in notes[0] and f"pid {named}" in notes[0] \
        and "signalled nothing" in notes[0], captured.err
    if verb[0] == "status":
        assert code == 1 and " 1     127.0.0.1:18492" not in captured.out
        assert captured.out.splitlines()[1].split()[-1] == "stopped", captured.out
    elif verb[0] == "stop-node":
        assert code == 4 and "no local Kafka (cluster) is running" in captured.err  # nothing else runs
    else:
        assert code == 0


def test_a_stale_pid_file_is_not_a_running_node_to_start(empty_cluster: LocalKafka,
                                                        bystander: subprocess.Popen[bytes]) -> None:
    """`up` and `start-node` read a kafka.pid naming another process as a stopped node (so they start it), not
    as a node that runs: the wait says the node is not running, never that it waits for it to answer."""
    pid_file = empty_cluster.nodes[0].folder / "kafka.pid"
    pid_file.write_text(f"{bystander.pid}\n")
    assert empty_cluster.readiness() == "node 1 is not running"
    assert not pid_file.exists() and [s.alive for s in empty_cluster.status()] == [False, False, False]
    assert bystander.poll() is None


def test_a_node_that_died_starting_is_reported_not_taken_for_stale(cluster: LocalKafka,
                                                                   sleeper: subprocess.Popen[bytes]) -> None:
    """A node whose recorded process has exited is one that died during start-up: the wait says so at once with
    its log, and the record is kept for `down` to remove (it names no other process)."""
    sleeper.kill()
    sleeper.wait()
    with pytest.raises(KafkaSetupError, match=r"^Kafka node 1 exited during start-up"):
        cluster.wait_ready(timeout=30)
    assert (cluster.nodes[0].folder / "kafka.pid").exists() and cluster.notes == []


def test_status_exits_non_zero_while_a_node_does_not_listen(cluster: LocalKafka, fake_node: FakeNode,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Every node's process running is not enough: while one does not listen on its port, `status` says it is
    starting and exits 1, so a script does not go on to use a Kafka that cannot serve yet."""
    for node in cluster.nodes[1:]:
        fake_node(cluster, node.node_id)
    assert cli.main(["kafka", "status", "--shape", "cluster"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[-1] for line in out[1:]] == ["starting"] * 3, out


def test_a_bare_pid_naming_the_nodes_own_kafka_is_kept_and_stopped(empty_cluster: LocalKafka, fake_node: FakeNode,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A kafka.pid an earlier Puente wrote (a bare pid) whose process is this node's Kafka (its command line) is
    the node: `status` counts it, its record gains the start time, and `down` stops it, rather than removing the
    file and leaving the node running."""
    node = fake_node(empty_cluster, 1)
    pid_file = empty_cluster.nodes[0].folder / "kafka.pid"
    pid_file.write_text(f"{node.pid}\n")
    assert [s.alive for s in empty_cluster.status()] == [True, False, False]
    assert pid_file.read_text() == record_of(node.pid).line() and empty_cluster.notes == []
    assert cli.main(["kafka", "down", "--shape", "cluster"]) == 0
    assert node.wait(timeout=30) is not None and "signalled nothing" not in capsys.readouterr().err
