"""The local Kafka's class path is trusted only in private folders and only as fetched: a jar planted in a cache
others may write, or added or changed after the fetch, is refused before any node runs it."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

import puente.dev.localkafka._fetch as fetch
from puente.errors import KafkaSetupError

JARS = {"kafka_2.13-4.1.1.jar": b"PK\x03\x04 kafka", "kafka-clients-4.1.1.jar": b"PK\x03\x04 clients"}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """PUENTE_CACHE in ``tmp_path`` and a stand-in Maven that copies ``JARS`` into the class path; counts its runs."""
    root = tmp_path / "cache"
    monkeypatch.setenv("PUENTE_CACHE", str(root))
    runs: list[list[str]] = []

    def maven(cmd: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        runs.append(cmd)
        target = Path(next(a for a in cmd if a.startswith("-Dclasspath.dir=")).partition("=")[2])
        target.mkdir(parents=True, exist_ok=True)
        for name, data in JARS.items():
            (target / name).write_bytes(data)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(fetch.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(fetch.subprocess, "run", maven)
    yield {"root": root, "home": fetch.kafka_home(), "runs": runs}


def _plant_ready(home: Path) -> None:
    """A class path and a READY marker as a fetch would leave them, made by someone else."""
    (home / "classpath").mkdir(parents=True, exist_ok=True)
    (home / "classpath" / "kafka_2.13-evil.jar").write_bytes(b"PK\x03\x04 planted")
    pom = resources.files("puente.dev.localkafka").joinpath("pom.xml").read_text()
    (home / "READY").write_text(f"{fetch.KAFKA_VERSION} {hashlib.sha256(pom.encode()).hexdigest()[:16]}\n")


@pytest.mark.parametrize("open_folder", ["root", "home", "classpath"])
def test_a_cache_folder_others_may_write_is_refused_before_ready_is_trusted(cache: dict[str, Any],
                                                                            open_folder: str) -> None:
    """A READY class path in a cache root, kafka-<v> or classpath folder others may write is refused, naming the
    folder, and Maven is not run over it either."""
    _plant_ready(cache["home"])
    folder = {"root": cache["root"], "home": cache["home"], "classpath": cache["home"] / "classpath"}[open_folder]
    os.chmod(folder, 0o777)  # noqa: S103 - the open folder (a shared CI cache, say) is what is tested
    with pytest.raises(KafkaSetupError, match=f"{folder} is writable by others"):
        fetch.fetch_kafka()
    assert not cache["runs"]


def test_a_ready_class_path_without_recorded_digests_is_fetched_again(cache: dict[str, Any]) -> None:
    """A READY marker alone (a cache from before digests were kept, or one planted in a private folder) is not
    trusted: the class path is fetched anew and the planted jar is gone."""
    _plant_ready(cache["home"])
    for folder in (cache["root"], cache["home"], cache["home"] / "classpath"):
        os.chmod(folder, 0o700)
    classpath = fetch.fetch_kafka(quiet=True)
    assert len(cache["runs"]) == 1 and sorted(p.name for p in classpath.iterdir()) == sorted(JARS)


def test_a_fetch_under_an_open_umask_makes_private_folders_and_is_reused(cache: dict[str, Any]) -> None:
    """A fresh clone's first fetch, whatever the umask, leaves the cache folders 0700 and the jars' digests
    recorded: the next call trusts it without running Maven."""
    old = os.umask(0)
    try:
        classpath = fetch.fetch_kafka(quiet=True)
    finally:
        os.umask(old)
    for folder in (cache["root"], cache["home"], classpath):
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    assert fetch.fetch_kafka() == classpath and len(cache["runs"]) == 1


@pytest.mark.parametrize("change", ["planted", "changed", "removed"])
def test_a_class_path_changed_after_the_fetch_is_refused(cache: dict[str, Any], change: str) -> None:
    """A jar added, rewritten or removed after the fetch is refused when the class path is next handed out (before
    each node starts), naming the file."""
    classpath = fetch.fetch_kafka(quiet=True)
    if change == "planted":
        (classpath / "aaa-evil.jar").write_bytes(b"PK\x03\x04 planted")
        name = "aaa-evil.jar"
    elif change == "changed":
        (classpath / "kafka-clients-4.1.1.jar").write_bytes(b"PK\x03\x04 patched")
        name = "kafka-clients-4.1.1.jar"
    else:
        (classpath / "kafka-clients-4.1.1.jar").unlink()
        name = "kafka-clients-4.1.1.jar"
    with pytest.raises(KafkaSetupError, match=f"not what was fetched \\({name}"):
        fetch.fetch_kafka()
    assert len(cache["runs"]) == 1
