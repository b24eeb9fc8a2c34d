"""A partner's feed topic names a feed of its own: `<prefix>.feed.<suffix>`, no other partner's once the deployment's
prefix replaces the first component. Anything else would give the partner the right to read another of Puente's
topics (receipts, the decisions, the lifecycle, Kafka's own) or another partner's feed."""

from __future__ import annotations

from typing import Any

import pytest

from broker.topology import TopicNames
from policies._check import feed_suffix
from puente.errors import PolicyError


def _refusal(policy_copy: Any) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        policy_copy.load()
    return [line for line in str(caught.value).splitlines() if "feed topic" in line]


@pytest.mark.parametrize("topic", ["x.receipts.USA", "puente.receipts.COL", "puente.audit.decisions",
                                   "puente.lifecycle", "__consumer_offsets", "puente.feed", "puente.feed.",
                                   "feed.COL", "puente.Feed.COL", "puente.feed..COL", "puente.feed.COL.",
                                   ".feed.COL", "puente.ingress.PN"])
def test_a_feed_topic_that_names_no_feed_is_refused(policy_copy: Any, topic: str) -> None:
    """One line naming the partner, its file and line, and what to write instead."""
    policy_copy.replace("partners.yaml", "feed_topic: puente.feed.COL", f"feed_topic: {topic}")
    line = policy_copy.line_of("partners.yaml", f"feed_topic: {topic}")
    assert _refusal(policy_copy) == [
        f"partners.yaml:{line}: [invalid] COL: feed topic {topic} names no feed: give it as <prefix>.feed.<suffix> "
        "(e.g. puente.feed.COL); the prefix is the deployment's own"]


@pytest.mark.parametrize("topic", ["puente.feed.USA", "other.feed.USA", "x.feed.USA", "puente.feed.CRI.main",
                                   "puente.feed.CRI2", "puente.feed.cri", "puente.feed.GTM"])
def test_a_feed_not_named_for_its_partner_is_refused(policy_copy: Any, topic: str) -> None:
    """A partner's feed is ``<prefix>.feed.<its id>``: another partner's (`other.feed.USA` is `puente.feed.USA` once
    the prefix is the deployment's), or any other name, may be a feed a former partner left, with its records and
    its subscriber group's offsets, which the partner would be granted."""
    line = policy_copy.line_of("partners.yaml", "feed_topic: puente.feed.CRI")
    policy_copy.replace("partners.yaml", "feed_topic: puente.feed.CRI", f"feed_topic: {topic}")
    assert _refusal(policy_copy) == [
        f"partners.yaml:{line}: [invalid] CRI: feed topic {topic} is not CRI's own feed: give it as "
        "<prefix>.feed.CRI (a feed named otherwise may be a former partner's, whose records and subscriber group CRI "
        "would take over)"]


def test_feeds_kafka_would_take_for_one_are_refused(policy_copy: Any) -> None:
    """Kafka refuses a topic whose name differs from another's only by '.' against '_': so do partner ids."""
    policy_copy.replace("partners.yaml", "id: USA\n", "id: US.A\n")
    policy_copy.replace("partners.yaml", "feed_topic: puente.feed.USA", "feed_topic: puente.feed.US.A")
    policy_copy.replace("partners.yaml", "id: CRI\n", "id: US_A\n")
    policy_copy.replace("partners.yaml", "feed_topic: puente.feed.CRI", "feed_topic: puente.feed.US_A")
    found = _refusal(policy_copy)
    assert len(found) == 1 and "US_A: feed topic puente.feed.US_A collides in Kafka" in found[0]


@pytest.mark.parametrize("prefix", ["puente", "t-123", "acme.puente"])
def test_every_feed_the_check_accepts_is_under_the_feeds_prefix(policy_copy: Any, prefix: str) -> None:
    """What loads maps, under any deployment prefix, to `<prefix>.feed.<suffix>`, one topic per partner."""
    policy_copy.replace("partners.yaml", "feed_topic: puente.feed.COL", "feed_topic: other.feed.COL")
    policy = policy_copy.load()
    names = TopicNames(prefix)
    mapped = {p.id: names.feed(p.feed_topic) for p in policy.partners.values()}
    assert all(topic.startswith(names.feeds) for topic in mapped.values())
    assert len(set(mapped.values())) == len(mapped)
    assert mapped["COL"] == f"{prefix}.feed.COL"
    assert all(mapped[p.id] == names.feeds + str(feed_suffix(p.feed_topic)) for p in policy.partners.values())
