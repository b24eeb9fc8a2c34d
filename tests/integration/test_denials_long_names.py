"""A partner probing with a group id far longer than any of Puente's names is refused by Kafka, and the refusal
reaches the auditors all the same: collected from the real authorizer log, its name cut with its whole length."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata
from puente_testing import Env, cli

from puente.dev.localkafka import LocalKafka

pytestmark = pytest.mark.kafka
LOGGED_WITHIN = 30.0  # seconds: Kafka logs a refusal before it answers, and the appender flushes each line


async def _logged(logs: list[Path], text: str) -> bool:
    """Whether one of the authorizer ``logs`` holds ``text``, looked for until it does or ``LOGGED_WITHIN`` passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LOGGED_WITHIN
    while True:
        if any(log.is_file() and text in log.read_text("utf-8", "replace") for log in logs):
            return True
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.1)


async def test_a_denial_of_a_long_group_id_is_collected(env: Env) -> None:
    """partner-COL commits offsets for a group of 1,500 characters under the deployment's prefix: Kafka refuses it
    and logs the refusal; `audit collect-denials` records it (never skips it), the name cut to 400 characters with
    its length and SHA-256, and `audit verify` finds the denials chain sound."""
    began = datetime.now(UTC)
    group = f"{env.names.prefix}.probe." + "g" * 1_500
    consumer = AIOKafkaConsumer(**env.login("partner-COL").aiokafka(), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(env.feed("COL"), 0)
        consumer.assign([tp])
        with pytest.raises(KafkaError):
            await consumer.commit({tp: OffsetAndMetadata(0, "")})
    finally:
        await consumer.stop()
    logs = [node.folder / "logs" / "authorizer.log" for node in LocalKafka("single").nodes]
    assert await _logged(logs, group), "Kafka's authorizer log never showed the refusal"
    args = ["audit", "collect-denials", "--since", began.isoformat()] + [f"--log={p}" for p in logs]
    collect = subprocess.run(cli(*args), env=env.env_vars("broker"), capture_output=True, text=True, timeout=120,
                             check=False)
    assert collect.returncode == 0, collect.stderr
    log = subprocess.run(cli("audit", "log", "--kind", "denial", "--json"), env=env.env_vars("auditor"),
                         capture_output=True, text=True, timeout=120, check=False)
    rows = [json.loads(line) for line in log.stdout.splitlines()]
    mine = [r for r in rows if r["principal"] == "User:partner-COL" and r.get("name_length") == len(group)]
    assert mine, rows
    assert all(r["resource"] == "Group:" + group[:400] and not r.get("unparsed") for r in mine)
    assert mine[0]["name_sha256"] == hashlib.sha256(group.encode()).hexdigest()
    verify = subprocess.run(cli("audit", "verify"), env=env.env_vars("auditor"), capture_output=True, text=True,
                            timeout=120, check=False)
    assert verify.returncode == 0 and env.names.denials in verify.stdout, verify.stdout
