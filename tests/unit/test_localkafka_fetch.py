"""The local Kafka's class path is trusted only in private folders and only as fetched: a jar planted in a cache
others may write, or added or changed after the fetch, is refused before any node runs it."""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import subprocess
import time
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
def test_a_cache_folder_of_another_user_others_may_write_is_refused_before_ready_is_trusted(
        cache: dict[str, Any], open_folder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A READY class path in a cache root, kafka-<v> or classpath folder others may write, and not this user's, is
    refused, naming the folder, and Maven is not run over it either."""
    _plant_ready(cache["home"])
    folder = {"root": cache["root"], "home": cache["home"], "classpath": cache["home"] / "classpath"}[open_folder]
    os.chmod(folder, 0o777)  # noqa: S103 - the open folder (a shared CI cache, say) is what is tested
    monkeypatch.setattr(fetch.os, "getuid", lambda: os.stat(folder).st_uid + 1)  # as if another user made it
    with pytest.raises(KafkaSetupError, match=f"{folder} is "):
        fetch.fetch_kafka()
    assert not cache["runs"]


@pytest.mark.parametrize("open_folder", ["root", "home", "classpath"])
def test_a_cache_folder_of_ones_own_made_open_by_the_umask_is_fetched_again_private(
        cache: dict[str, Any], open_folder: str) -> None:
    """An older Puente made the cache folders with the umask's mode (0775 under umask 002): such a folder of this
    user's is made 0700 again and the build under it fetched anew, a jar planted there not kept."""
    _plant_ready(cache["home"])
    folder = {"root": cache["root"], "home": cache["home"], "classpath": cache["home"] / "classpath"}[open_folder]
    os.chmod(folder, 0o775)  # noqa: S103 - what an older Puente left under umask 002
    classpath = fetch.fetch_kafka(quiet=True)
    assert len(cache["runs"]) == 1 and sorted(p.name for p in classpath.iterdir()) == sorted(JARS)
    assert os.stat(cache["root"]).st_mode & 0o022 == 0
    for made in (cache["home"], classpath):
        assert os.stat(made).st_mode & 0o777 == 0o700, made


def test_processes_asking_at_once_share_one_fetch(cache: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """`make test` starts a Kafka per test worker, each asking for the class path at once: one fetches (under the
    lock, into a folder renamed into place whole), the others wait and take what it fetched; none sees a class
    path half filled or removed under it."""
    maven = fetch.subprocess.run

    def slow(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        time.sleep(0.3)
        return maven(cmd, **kwargs)

    monkeypatch.setattr(fetch.subprocess, "run", slow)
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        got = [f.result() for f in [pool.submit(fetch.fetch_kafka, quiet=True) for _ in range(3)]]
    assert len(set(got)) == 1 and len(cache["runs"]) == 1
    assert sorted(p.name for p in got[0].iterdir()) == sorted(JARS)
    assert fetch.fetch_kafka() == got[0] and len(cache["runs"]) == 1


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
    each node starts), naming the file, also after a check that found it whole (a process hashes the jars once
    while their files stand as they did)."""
    classpath = fetch.fetch_kafka(quiet=True)
    assert fetch.fetch_kafka() == classpath  # checked, and remembered
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


def test_a_shared_cache_root_is_refused_with_advice_that_fits(tmp_path: Path) -> None:
    """A cache root all may write by design (sticky, as /tmp) is refused saying to point PUENTE_CACHE elsewhere,
    never to remove that folder or run chmod on it."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    with pytest.raises(KafkaSetupError) as caught:
        fetch._check_folders(shared / "kafka-x")
    assert str(caught.value) == (f"the Kafka cache folder {shared} is shared, writable by others like /tmp "
                                 "(mode 1777): point PUENTE_CACHE at a folder of your own")


def test_a_shared_cache_root_is_never_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PUENTE_CACHE naming a folder all may write (/tmp) is refused and left as it is: run by its owner (root, for
    /tmp), the fetch once made it 0700, shutting every other user out of it."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    monkeypatch.setenv("PUENTE_CACHE", str(shared))
    with pytest.raises(KafkaSetupError, match="point PUENTE_CACHE at a folder of your own"):
        fetch.fetch_kafka("0.0.0-test")
    assert shared.stat().st_mode & 0o7777 == 0o1777
