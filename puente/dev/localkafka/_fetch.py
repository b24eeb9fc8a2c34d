"""Fetch Apache Kafka's runtime class path with Maven into the cache folder."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

from puente.errors import KafkaSetupError

KAFKA_VERSION = "4.1.1"
_MARKER = "READY"


def cache_root() -> Path:
    """The folder that keeps fetched Kafka builds between runs and clones."""
    explicit = os.environ.get("PUENTE_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "puente"


def kafka_home(version: str = KAFKA_VERSION) -> Path:
    """Where the class path of one Kafka version lives."""
    return cache_root() / f"kafka-{version}"


def fetch_kafka(version: str = KAFKA_VERSION, *, quiet: bool = False) -> Path:
    """Return the class-path folder for ``version``, fetching it on first use.

    The folder is only marked ready after Maven succeeds, so an interrupted
    fetch is retried rather than used half-done.
    """
    home = kafka_home(version)
    classpath = home / "classpath"
    pom = resources.files("puente.dev.localkafka").joinpath("pom.xml").read_text()
    # The marker names what was fetched: the version and the pom's digest, so that a pom that asks
    # for more (Kafka's console tools, say) fetches again instead of using an older class path.
    ready = f"{version} {hashlib.sha256(pom.encode()).hexdigest()[:16]}\n"
    if (home / _MARKER).exists() and classpath.is_dir() and (home / _MARKER).read_text() == ready:
        return classpath
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaSetupError("Maven ('mvn') is not on PATH; it is needed once to fetch Kafka")
    if shutil.which("java") is None:
        raise KafkaSetupError("Java ('java', 17 or newer) is not on PATH; Kafka needs it")
    home.mkdir(parents=True, exist_ok=True)
    (home / "pom.xml").write_text(pom)
    if classpath.exists():
        shutil.rmtree(classpath)
    if not quiet:
        print(f"Fetching Apache Kafka {version} with Maven into {home} (first run only)...", file=sys.stderr)
    cmd = [mvn, "-B", "-q", f"-Dkafka.version={version}", "-Dclasspath.dir=" + str(classpath), "package"]
    proc = subprocess.run(cmd, cwd=home, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not any(classpath.glob("kafka_2.13-*.jar")):
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise KafkaSetupError(f"Maven could not fetch Kafka {version} (exit {proc.returncode}):\n{tail}")
    (home / _MARKER).write_text(ready)
    return classpath
