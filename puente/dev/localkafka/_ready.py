"""Is a local Kafka usable? Checks that each name the node that is not, so a wait can say what it waits for.

A node's process being alive, or its port being open, says little: Kafka binds its ports early and
answers only once it has caught up with the metadata log. After a quorum loss the node that stayed
up still lists every broker and every in-sync replica from its cached metadata, so asking it alone
would call the cluster ready while the others are still starting. Readiness is therefore the
conjunction of what each source can vouch for:

    node answers      every node completes a TLS handshake and answers ApiVersions on its own port
    quorum            every node's ``quorum-state`` names the same leader in the same epoch, and it runs
    brokers           the cluster, described by the admin, lists every node as an unfenced broker
    partitions        the probe topic (and ``__consumer_offsets``, ``__transaction_state`` if they exist)
                      has a leader for every partition and every replica in sync

The parsers and the judgements are pure functions over values; the two probes (``answers``, and
the admin's view in ``_cluster``) do the I/O.
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PROBE_TOPIC = "__puente_ready"
INTERNAL_TOPICS = ("__consumer_offsets", "__transaction_state")
_API_VERSIONS = 18


@dataclass(frozen=True)
class QuorumView:
    """What one node's ``quorum-state`` file says: the leader it follows (-1: none) and the epoch."""

    leader: int
    epoch: int


@dataclass(frozen=True)
class PartitionView:
    """One partition as the cluster's metadata describes it (leader -1: offline)."""

    topic: str
    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


def quorum_file(data_dir: Path) -> Path:
    """Where a KRaft node keeps its election state."""
    return data_dir / "__cluster_metadata-0" / "quorum-state"


def read_quorum(path: Path) -> QuorumView | None:
    """The election state a node wrote, or None when it has written none (yet) or it cannot be read."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict):
        return None
    leader, epoch = doc.get("leaderId", -1), doc.get("leaderEpoch", -1)
    if type(leader) is not int or type(epoch) is not int:
        return None
    return QuorumView(leader, epoch)


def quorum_problem(views: Mapping[int, QuorumView | None], running: set[int]) -> str | None:
    """None when every node follows one leader in one epoch and that leader runs; else what is wrong."""
    for node_id, view in sorted(views.items()):
        if view is None or view.leader < 0:
            return f"node {node_id} knows no controller quorum leader yet"
    leaders = {(v.leader, v.epoch) for v in views.values() if v is not None}
    if len(leaders) > 1:
        newest = max(leaders, key=lambda le: le[1])
        behind = sorted(n for n, v in views.items() if v is not None and (v.leader, v.epoch) != newest)
        return (f"node {behind[0]} still follows another controller quorum leader than node {newest[0]} "
                f"(epoch {newest[1]})")
    (leader, epoch), = leaders
    if leader not in running:
        return f"the controller quorum leader, node {leader} (epoch {epoch}), is not running"
    return None


def broker_problem(registered: Iterable[int], wanted: Sequence[int]) -> str | None:
    """None when every wanted node is a registered, unfenced broker; else the first one that is not."""
    have = set(registered)
    missing = [n for n in wanted if n not in have]
    if missing:
        return f"node {missing[0]} is not registered as a broker yet ({len(have)} of {len(wanted)} are)"
    return None


def partition_problem(partitions: Iterable[PartitionView]) -> str | None:
    """None when every partition has a leader and all its replicas in sync; else the first that does not."""
    for p in sorted(partitions, key=lambda p: (p.topic, p.partition)):
        if p.leader < 0:
            return f"{p.topic}[{p.partition}] has no leader (offline)"
        lagging = [r for r in p.replicas if r not in p.isr]
        if lagging:
            return f"node {lagging[0]} is not in sync for {p.topic}[{p.partition}] (under-replicated)"
    return None


def api_versions_request(correlation_id: int, client_id: str = "puente-ready") -> bytes:
    """An ApiVersions v0 request, framed: a broker answers it before any login, on any listener."""
    client = client_id.encode()
    body = struct.pack(">hhih", _API_VERSIONS, 0, correlation_id, len(client)) + client
    return struct.pack(">i", len(body)) + body


def api_versions_ok(answer: bytes, correlation_id: int) -> bool:
    """Whether ``answer`` (size prefix included) is the broker's reply to our request. Any error code
    counts: a reply, even UNSUPPORTED_VERSION, means the node is serving requests."""
    if len(answer) < 10:
        return False
    size, got, _error = struct.unpack(">iih", answer[:10])
    return bool(size >= 6 and got == correlation_id)


def answers(port: int, ca_file: Path, timeout: float = 2.0) -> bool:
    """Whether the node on 127.0.0.1:``port`` completes a TLS handshake and answers ApiVersions.

    Kafka accepts connections into the kernel's backlog as soon as it binds, but serves none until it
    has caught up with the metadata log: an answer means this very node is serving.
    """
    request = api_versions_request(0x50554E54)
    try:
        context = ssl.create_default_context(cafile=str(ca_file))
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(request)
            answer = b""
            while len(answer) < 10:
                chunk = tls.recv(10 - len(answer))
                if not chunk:
                    return False
                answer += chunk
    except (OSError, ssl.SSLError):
        return False
    return api_versions_ok(answer, 0x50554E54)
