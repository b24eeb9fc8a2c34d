"""Ctrl-C while the admin client waits on Kafka: librdkafka's calls block in a thread, and neither ``asyncio.run``
nor the interpreter may wait for that thread as they end, or a command stopped by Ctrl-C would hang for up to the
Kafka timeout (600 s at most) before it exits. The AdminClient is a fake whose call blocks; the command-line test
points `puente topics plan` at a port nothing listens on."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException

import broker.kafka.admin as admin_module
from broker.kafka import Admin, KafkaConnection
from puente.errors import KafkaOperationError

ROOT = Path(__file__).resolve().parents[3]
BLOCK_S = 60.0  # how long the fake call blocks: far beyond any bound below, so a wait for it shows as a hang


class _Client:
    """An AdminClient whose ``list_topics`` blocks until released (or ``BLOCK_S`` passes)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.release = threading.Event()

    def list_topics(self, timeout: float) -> str:
        self.release.wait(BLOCK_S)
        return "metadata"

    def poll(self, timeout: float) -> int:
        return 0


def _fake(admin: Admin) -> _Client:
    assert isinstance(admin.client, _Client)
    return admin.client


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch) -> Iterator[Admin]:
    """An Admin over the blocking fake, released when the test ends so no thread outlives it long."""
    monkeypatch.setattr(admin_module, "AdminClient", _Client)
    made = Admin(KafkaConnection(bootstrap="127.0.0.1:1", timeout_s=BLOCK_S))
    yield made
    _fake(made).release.set()


def test_a_cancelled_admin_call_ends_asyncio_run_at_once(admin: Admin) -> None:
    """Cancelling a task blocked in an admin call raises CancelledError in it, and asyncio.run returns without
    waiting for the blocked call: the whole run ends well within 5 s of a call that would block 60 s."""
    outcome: list[str] = []

    async def main() -> None:
        task = asyncio.create_task(admin.call("listing topics", lambda c: c.list_topics(timeout=BLOCK_S)))
        await asyncio.sleep(0.2)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            outcome.append("cancelled")

    runner = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    runner.start()
    runner.join(5.0)
    assert not runner.is_alive(), "asyncio.run waited for the blocked admin call"
    assert outcome == ["cancelled"]


def test_an_admin_call_still_answers_and_maps_its_errors(admin: Admin) -> None:
    """The call's result comes back to the loop, and librdkafka's error is made Puente's as before."""
    _fake(admin).release.set()

    def refuse(client: Any) -> None:
        raise KafkaException(RdKafkaError(RdKafkaError.INVALID_CONFIG, "refused"))

    answer: object = asyncio.run(admin.call("listing topics", lambda c: c.list_topics(timeout=1)))
    assert answer == "metadata"
    with pytest.raises(KafkaOperationError, match="changing things failed"):
        asyncio.run(admin.call("changing things", refuse))


def _librdkafka_started(pid: int) -> bool:
    """Whether the process runs librdkafka's threads (named ``rdk:...``): its admin client is made, and its
    first call follows at once."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for task in tasks:
        try:
            if Path(f"/proc/{pid}/task/{task}/comm").read_text().startswith("rdk:"):
                return True
        except OSError:
            continue
    return False


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds librdkafka's threads through /proc")
def test_ctrl_c_stops_topics_plan_while_kafka_does_not_answer(tmp_path: Path) -> None:
    """`puente topics plan` against a Kafka that never answers (PUENTE_KAFKA_TIMEOUT_S=60) ends on Ctrl-C with
    status 130 and one line, no traceback, long before the timeout."""
    config = tmp_path / "plain.properties"
    config.write_text("bootstrap.servers=127.0.0.1:1\nsecurity.protocol=PLAINTEXT\n")
    env = {name: value for name, value in os.environ.items() if not name.startswith("PUENTE_")}
    env.update(PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1", PUENTE_CLIENT_CONFIG=str(config),
               PUENTE_KAFKA_TIMEOUT_S="60", PUENTE_KEYS=str(tmp_path / "keys"))
    proc = subprocess.Popen([sys.executable, "-m", "puente.cli", "topics", "plan"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not _librdkafka_started(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None and _librdkafka_started(proc.pid), "the admin client never started"
        time.sleep(0.5)  # into the call, which waits on Kafka
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["puente: interrupted"], err
    assert "Traceback" not in err
