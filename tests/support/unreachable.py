"""A Kafka no one listens at, named the only way Puente accepts: through a client configuration file."""

from __future__ import annotations

import socket
from pathlib import Path


def closed_port() -> int:
    """A port nothing listens on (closed again once this returns: a server may bind it later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unreachable_kafka(folder: Path, port: int | None = None) -> dict[str, str]:
    """The PUENTE_* variables of a Kafka at a closed port, through a client configuration that says it has no
    security (PUENTE_BOOTSTRAP alone is refused). The caller must unset PUENTE_BOOTSTRAP (`make test` exports
    it): naming another server than the file's, it is refused before any connection is tried."""
    path = folder / "unreachable.properties"
    path.write_text(f"bootstrap.servers=127.0.0.1:{closed_port() if port is None else port}\n"
                    "security.protocol=PLAINTEXT\n", encoding="utf-8")
    return {"PUENTE_CLIENT_CONFIG": str(path)}
