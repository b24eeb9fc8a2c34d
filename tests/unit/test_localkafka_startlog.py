"""A node that dies starting is reported by where its first error of this run is, never by its log's text."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from puente.dev.localkafka import LocalKafka, record_of
from puente.dev.localkafka._startlog import first_error, mark
from puente.errors import KafkaSetupError

SECRET = "LEAKEDTAIL"
_EARLIER = "[2026-12-01 10:00:00,000] ERROR Earlier run's failure (kafka.server.BrokerServer)\n"
_RUN = (
    "[2026-12-07 10:00:00,000] INFO KafkaConfig values: (kafka.server.KafkaConfig)\n"
    "[2026-12-07 10:00:01,000] WARN something harmless (kafka.utils.Whatever)\n"
    f'[2026-12-07 10:00:02,000] ERROR Exiting Kafka due to fatal exception password="abc"{SECRET}"; (kafka.Kafka$)\n'
    f"org.apache.kafka.common.KafkaException: Failed to create new KafkaAdminClient: Value not specified for key "
    f"'{SECRET}' in JAAS config\n"
    "\tat org.apache.kafka.common.security.JaasConfig.<init>(JaasConfig.java:71)\n"
)


def _logs(tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "server.log").write_text("[2026-12-01 09:00:00,000] INFO old run (kafka.Kafka$)\n" + _EARLIER)
    mark(logs)
    with (logs / "server.log").open("a") as log:
        log.write(_RUN)
    return logs


def test_the_first_error_is_this_runs_named_by_file_line_and_class(tmp_path: Path) -> None:
    """An error an earlier run logged is passed over; this run's first ERROR line is named by its line in the whole
    file and the exception class in the trace under it, and nothing of its text."""
    logs = _logs(tmp_path)
    found = first_error(logs)
    assert found is not None and found.path == logs / "server.log" and found.line == 5
    assert found.kind == "org.apache.kafka.common.KafkaException" and SECRET not in str(found)


def test_a_jvm_failure_in_the_console_log_is_found_and_an_unmarked_log_read_whole(tmp_path: Path) -> None:
    """With no ERROR in server.log, the JVM's own failure in console.log is the first error; a log never marked (or
    rolled over since) is read from its start."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "server.log").write_text("[x] INFO fine (kafka.Kafka$)\n")
    (logs / "console.log").write_text(f'Exception in thread "main" java.lang.IllegalArgumentException: {SECRET}\n')
    found = first_error(logs)
    assert found is not None and (found.path.name, found.line) == ("console.log", 1)
    assert found.kind == "java.lang.IllegalArgumentException" and SECRET not in str(found)
    (logs / "console.log").write_text("fine\n")
    assert first_error(logs) is None


def test_a_node_that_died_starting_is_reported_in_one_line_without_its_log(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The reviewer's probe: `kafka up` failing carried the last 20 raw log lines (a JAAS error's secret tail among
    them, the cause often not). Now the error is one line: the node, the log file and line of this run's first
    error, and the exception's class; no log text."""
    monkeypatch.setenv("PUENTE_KAFKA_PORT", "18494")
    kafka = LocalKafka("single", root=tmp_path)
    folder = kafka.nodes[0].folder
    folder.mkdir(parents=True)
    logs = _logs(folder)
    dead = subprocess.Popen([sys.executable, "-c", "pass", "kafka.Kafka", str(folder / "server.properties")])
    record = record_of(dead.pid).line()
    dead.wait()
    (folder / "kafka.pid").write_text(record)
    with pytest.raises(KafkaSetupError) as caught:
        kafka.wait_ready(timeout=5)
    message = str(caught.value)
    assert "\n" not in message and SECRET not in message and "password" not in message
    assert message.startswith("Kafka node 1 exited during start-up")
    assert f"{logs / 'server.log'}:5 (org.apache.kafka.common.KafkaException)" in message


def test_a_log_rolled_over_since_the_mark_is_read_from_the_mark_in_the_rolled_file(tmp_path: Path) -> None:
    """server.log rolled over during the start (100 MB): the run's first error, written before the roll, is in
    server.log.1 past the mark, and named there, not hidden by the new file or taken from a later error in it."""
    logs = _logs(tmp_path)
    (logs / "server.log").rename(logs / "server.log.1")
    (logs / "server.log").write_text("[2026-12-07 10:00:09,000] INFO rolled (kafka.Kafka$)\n"
                                     "[2026-12-07 10:00:10,000] ERROR later (kafka.server.BrokerLifecycleManager)\n")
    found = first_error(logs)
    assert found is not None and (found.path.name, found.line) == ("server.log.1", 5)
    (logs / "server.log.1").write_text("[x] INFO nothing wrong (kafka.Kafka$)\n" * 2 + "x" * 200 + "\n")
    found = first_error(logs)
    assert found is not None and (found.path.name, found.line) == ("server.log", 2)


def test_line_numbers_count_line_feeds_only(tmp_path: Path) -> None:
    """A byte 0x85 inside a UTF-8 letter (Å, х) or a form feed is no line end: the error's line is the file's."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "server.log").write_bytes("Åsa\nхост\x0c\n".encode() + _EARLIER.encode())
    found = first_error(logs)
    assert found is not None and found.line == 3
