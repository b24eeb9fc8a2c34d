"""Puente's topology: every topic's name and shape, and the slots ingress partitions map to. Pure.

``broker.kafka.topics`` makes Kafka match it (``topics apply``).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from broker.audit.verify import Holds
from policies import PolicySet

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicNames:
    """Every topic name, derived from one prefix."""

    prefix: str = "puente"

    def ingress(self, agency: str) -> str:
        return f"{self.prefix}.ingress.{agency}"

    def feed(self, policy_topic: str) -> str:
        """A partner's feed topic: the policy's name, under this prefix when it is not the default.

        Policies name feeds ``puente.feed.<PARTNER>``; a deployment (or a test) with another
        prefix keeps them apart by swapping the first component.
        """
        head, _, rest = policy_topic.partition(".")
        return policy_topic if self.prefix == head or not rest else f"{self.prefix}.{rest}"

    @property
    def feeds(self) -> str:
        """What every feed topic's name starts with (an ACL's prefix)."""
        return f"{self.prefix}.feed."

    @property
    def decisions(self) -> str:
        return f"{self.prefix}.audit.decisions"

    @property
    def lifecycle(self) -> str:
        """The broker's lifecycle state: per alert, its version and which partners hold which version
        (compacted, keyed by alert id, one partition per slot like the decisions)."""
        return f"{self.prefix}.lifecycle"

    def receipts(self, partner: str) -> str:
        """A partner's receipts: a topic of its own, since Kafka's ACLs are per topic, not per partition."""
        return f"{self.prefix}.receipts.{partner}"

    @property
    def all_receipts(self) -> str:
        """What every receipts topic's name starts with (an ACL's prefix)."""
        return f"{self.prefix}.receipts."

    @property
    def denials(self) -> str:
        """Access denials at the Kafka layer, collected from the authorizer's log for auditors."""
        return f"{self.prefix}.audit.denials"

    @property
    def queries(self) -> str:
        """The auditors' own queries: what each auditor looked at in the console, and when (the
        auditors are audited too)."""
        return f"{self.prefix}.audit.queries"

    @property
    def deadletter(self) -> str:
        """The broker's dead letters (ingress records it refused)."""
        return f"{self.prefix}.deadletter"

    def adapter_deadletter(self, agency: str) -> str:
        """One agency's adapter dead letters (its own records it refused): no agency reads another's."""
        return f"{self.prefix}.deadletter.{agency}"

    def audit_roles(self, partners: Iterable[str]) -> dict[str, Holds]:
        """The audit topics and what each holds, as ``audit verify`` walks them: the decisions first
        (receipts are checked against them), each partner's receipts, the access denials, the auditors'
        queries."""
        roles: dict[str, Holds] = {self.decisions: "decisions"}
        roles.update({self.receipts(p): "receipts" for p in sorted(partners)})
        roles[self.denials] = "denials"
        roles[self.queries] = "queries"
        return roles


INVARIANTS: Mapping[str, str] = {
    # Deletion by age only: compaction keeps the latest record of each key, and audit records share
    # keys (every receipt of a partner is keyed by its id), so a compacted audit topic loses its chain.
    "cleanup.policy": "delete",
    # A replica that was out of sync must never lead: it would drop records already acknowledged, a
    # hole in an audit chain or a lost alert.
    "unclean.leader.election.enable": "false",
    # Each batch kept as its producer wrote it: Kafka then checks a compressed one as it streams, where recompressing
    # (any other value) would build every record anew in the node's memory first. Puente's producers never compress,
    # and its readers refuse a compressed batch unread (``broker.kafka.unreadable``): one Kafka compressed itself
    # would be refused too. (A node may still inflate one to answer a lookup by time; the worker asks none at a
    # batch it refused: ``broker.audit.chain._last_taken_ms``.)
    "compression.type": "producer",
}
"""Topic settings every topic Puente plans carries, whatever its ``TopicSpec.config`` leaves out: the
cluster's defaults, or an operator's hand, must not decide them (``TopicSpec.owned``)."""


@dataclass(frozen=True)
class TopicSpec:
    """One topic as it should be."""

    name: str
    partitions: int
    replication: int
    config: Mapping[str, str] = field(default_factory=dict)
    role: str = ""
    fixed: bool = False
    """Whether the partition count carries meaning (ingress slots, receipt chains): never changed once made."""
    kept: bool = False
    """Whether the partition count, once made, is kept as found whatever the plan says, with a note, and no
    refusal (feeds: a delivery's partition follows its key and its feed's count, so an alert's next records would
    land in another partition than its copy; each feed is written with its own count)."""

    @property
    def owned(self) -> dict[str, str]:
        """Every setting Puente owns on this topic: ``config`` over ``INVARIANTS``, and, where the plan
        keeps records by age (``retention.ms``), no size limit (``retention.bytes=-1``), which would delete
        audit records long before their time. ``topics apply`` sets each on create and sets back any
        drift; the cluster's defaults and an operator's other settings decide the rest."""
        owned = {**INVARIANTS, **self.config}
        if "retention.ms" in self.config:
            owned.setdefault("retention.bytes", "-1")
        return owned


@dataclass(frozen=True)
class Slots:
    """Maps each ingress (topic, partition) to one slot: its audit partition and its producer."""

    agencies: tuple[str, ...]
    partitions: int
    names: TopicNames

    @property
    def count(self) -> int:
        return len(self.agencies) * self.partitions

    def slot(self, topic: str, partition: int) -> int | None:
        for i, agency in enumerate(self.agencies):
            if topic == self.names.ingress(agency):
                return i * self.partitions + partition if partition < self.partitions else None
        return None

    def agency_of(self, topic: str) -> str | None:
        for agency in self.agencies:
            if topic == self.names.ingress(agency):
                return agency
        return None


_M = 0x5BD1E995
_WORDS = struct.Struct("<I")


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash of a record key (``org.apache.kafka.common.utils.Utils.murmur2``), as an
    unsigned 32-bit value: what its default partitioner, and every client's, places a key by. (``key_partition``
    takes the native codec's, the same hash twenty times faster, where it is built.)"""
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    whole = length & ~3
    for (k,) in _WORDS.iter_unpack(data[:whole]):
        k = (k * _M) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * _M) & 0xFFFFFFFF
        h = ((h * _M) & 0xFFFFFFFF) ^ k
    extra = length - whole
    if extra == 3:
        h ^= data[whole + 2] << 16
    if extra >= 2:
        h ^= data[whole + 1] << 8
    if extra >= 1:
        h ^= data[whole]
        h = (h * _M) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * _M) & 0xFFFFFFFF
    return h ^ (h >> 15)


_murmur2: Callable[[bytes], int] = murmur2
try:  # the native codec's build (``native/``): the same hash, a unit test holds it so
    from puente_avro import murmur2 as _native_murmur2
    _murmur2 = _native_murmur2
except ImportError:  # not built here, or a build from before it had murmur2
    pass


def key_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` among ``partitions``: every version of
    an alert (its id is the key) lands in one partition, so in one slot with its state."""
    return (_murmur2(key) & 0x7FFFFFFF) % partitions


def feed_partition(key: bytes, partitions: int) -> int:
    """The feed partition of a delivery keyed ``key``: the partner's reference for the alert.

    A function of the key alone, so it tells the partner nothing its reference does not: the slot's
    partition (the murmur2 of the agency's own id, and which agency) would tell a partner which third of
    candidate ids an alert is in. Every version and recall of an alert has one key, so they keep their
    order in one partition, as long as ``partitions`` does not change: ``topics apply`` never changes a
    feed's count (``TopicSpec.kept``). An alert a partner was first sent before
    feeds went by key stays in its slot's partition (``AlertState.by_slot``). CRC-32, not murmur2 as Kafka's
    partitioner: the reference is already a keyed hash, and murmur2 in Python costs 3 us a delivery where
    CRC-32 costs 0.1.
    """
    return zlib.crc32(key) % partitions


def slots_for(agencies: tuple[str, ...], ingress_partitions: int, prefix: str) -> Slots:
    """The slots of a deployment: one per ingress partition of each agency, in the agencies' order."""
    return Slots(tuple(agencies), ingress_partitions, TopicNames(prefix))


def lifecycle_retention_days(policy_set: PolicySet, replay_window_days: int) -> int:
    """How long the broker remembers who holds an alert: the longest any agreement lets a partner keep
    one (after that every partner has deleted it, so nothing is left to update or recall), and never
    less than the replay window."""
    longest = max((a.retention_days for a in policy_set.agreements.values()), default=0)
    return max(longest, replay_window_days)


NOTICE_RETENTION_FLOOR_DAYS = 7
"""The least a feed of a partner no agreement names keeps its records (see ``feed_retention``)."""


def feed_readers(policy_set: PolicySet, names: TopicNames) -> dict[str, str]:
    """Each feed topic of the deployment and the partner that reads it (one each: the policy refuses two
    partners sharing a feed)."""
    return {names.feed(p.feed_topic): pid for pid, p in policy_set.partners.items()}


def feed_retention(policy_set: PolicySet, names: TopicNames) -> dict[str, int]:
    """Each feed topic's retention in days: the shortest any of its partner's agreements allows.

    A partner no agreement names (its last one removed) still gets notices: the broker recalls the
    alerts it holds (and corrects them) for as long as it remembers who holds what, and the partner
    must read each recall and acknowledge it with a receipt within ``recall_ack_hours``. Its feed
    therefore keeps records long enough for that: the longest deadline to acknowledge a recall any
    agreement sets, and never less than ``NOTICE_RETENTION_FLOOR_DAYS`` (a week, so that a partner
    whose subscriber is down over a long weekend still finds the notice). Not the longest retention
    any agreement gives: with no agreement left, the alerts the feed already holds should go soon,
    not stay readable for as long as the most generous agreement lets another partner keep one.
    """
    out: dict[str, int] = {}
    for agreement in policy_set.agreements.values():
        for pid in agreement.partner_ids:
            partner = policy_set.partners.get(pid)
            if partner is None:
                continue
            topic = names.feed(partner.feed_topic)
            out[topic] = min(out.get(topic, agreement.retention_days), agreement.retention_days)
    ack_days = max((-(-a.recall_ack_hours // 24) for a in policy_set.agreements.values()), default=0)
    for partner in policy_set.partners.values():
        out.setdefault(names.feed(partner.feed_topic), max(NOTICE_RETENTION_FLOOR_DAYS, ack_days))
    return out
