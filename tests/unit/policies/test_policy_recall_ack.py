"""An agreement's recall_ack_hours: named by every shipped agreement, checked when loaded, looked up by id."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from policies import PolicySet, lint
from puente.errors import PolicyError


def test_every_shipped_agreement_names_its_deadline(policy_set: PolicySet) -> None:
    """Each shipped agreement says how long its partner has to acknowledge a recall; auditors look it up by id."""
    hours = {a.id: a.recall_ack_hours for a in policy_set.agreements.values()}
    assert hours == {"COMBIFRON": 72, "FEAN-JTF": 24, "PAN-CRI": 72, "PAN-USA": 72}
    for doc in policy_set.sources.agreements:
        assert "recall_ack_hours" in doc.model.model_fields_set, f"{doc.label} leaves recall_ack_hours to the default"


def test_an_agreement_that_does_not_name_it_gets_72_hours(policy_copy: Any) -> None:
    """Left out, the deadline is the documented default of 72 hours."""
    body = policy_copy.text("agreements/pan-cri.yaml")
    line = next(x for x in body.splitlines(keepends=True) if x.startswith("recall_ack_hours:"))
    policy_copy.replace("agreements/pan-cri.yaml", line, "")
    assert policy_copy.load().agreements["PAN-CRI"].recall_ack_hours == 72


@pytest.mark.parametrize("value", ["0", "-5", "three days", "8761", "1.5"])
def test_a_deadline_that_is_not_a_positive_number_of_hours_names_file_and_line(policy_copy: Any, value: str) -> None:
    """Zero, negative, text, a fraction or more than a year is refused, naming the file, line and field."""
    body = policy_copy.text("agreements/combifron.yaml")
    line = next(x for x in body.splitlines() if x.startswith("recall_ack_hours:"))
    policy_copy.replace("agreements/combifron.yaml", line, f"recall_ack_hours: {value}")
    at = policy_copy.line_of("agreements/combifron.yaml", "recall_ack_hours:")
    with pytest.raises(PolicyError) as caught:
        policy_copy.load()
    assert f"agreements/combifron.yaml:{at}: recall_ack_hours:" in str(caught.value)


def test_changing_the_deadline_changes_the_policy_version(policy_copy: Any, policy_set: PolicySet) -> None:
    """The deadline is part of what the policy means, so its version (a hash of the meaning) follows it."""
    policy_copy.replace("agreements/combifron.yaml", "recall_ack_hours: 72", "recall_ack_hours: 48")
    changed = policy_copy.load()
    assert changed.agreements["COMBIFRON"].recall_ack_hours == 48 and changed.version != policy_set.version


def test_lint_asks_about_a_deadline_of_over_a_month(policy_copy: Any) -> None:
    """Over 30 days to acknowledge a recall is allowed but questioned, at the agreement's line."""
    policy_copy.replace("agreements/pan-cri.yaml", "recall_ack_hours: 72", "recall_ack_hours: 1000")
    at = policy_copy.line_of("agreements/pan-cri.yaml", "recall_ack_hours:")
    found = [f for f in lint(policy_copy.root, now=datetime(2026, 6, 1, tzinfo=UTC)) if f.kind == "recall"]
    assert len(found) == 1 and f"pan-cri.yaml:{at}" in found[0].where and "1000 h" in found[0].message


def test_lint_names_a_feed_kept_shorter_than_the_recall_deadline(policy_copy: Any) -> None:
    """Recall notices go through the partner's feed, which keeps records for its agreement's retention_days: a
    deadline to acknowledge longer than that lets Kafka delete a notice before its partner was due to read it.
    Lint names the agreement, the partner and the two figures at the retention's line; equal is enough."""
    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert not [f for f in lint(policy_copy.root, now=now) if f.kind == "recall"]
    policy_copy.replace("agreements/pan-cri.yaml", "retention_days: 90", "retention_days: 3")
    assert not [f for f in lint(policy_copy.root, now=now) if f.kind == "recall"]  # 72 h in 3 days
    policy_copy.replace("agreements/pan-cri.yaml", "retention_days: 3", "retention_days: 2")
    at = policy_copy.line_of("agreements/pan-cri.yaml", "retention_days:")
    found = [f for f in lint(policy_copy.root, now=now) if f.kind == "recall"]
    assert len(found) == 1 and f"pan-cri.yaml:{at}" in found[0].where
    assert "CRI" in found[0].message and "2 day(s)" in found[0].message and "72 h" in found[0].message
    assert "at least 3" in found[0].message


def test_lint_counts_the_shortest_retention_of_every_partner_sharing_a_feed(policy_copy: Any) -> None:
    """Two partners on one feed: the feed keeps the shorter of their agreements' retentions (as the topic plan
    sets it), so the partner with the longer retention is named against the other agreement's."""
    now = datetime(2026, 6, 1, tzinfo=UTC)
    policy_copy.replace("partners.yaml", "feed_topic: puente.feed.CRI", "feed_topic: puente.feed.USA")
    policy_copy.replace("agreements/pan-cri.yaml", "retention_days: 90", "retention_days: 1")
    policy_copy.replace("agreements/pan-cri.yaml", "recall_ack_hours: 72", "recall_ack_hours: 24")
    found = [f for f in lint(policy_copy.root, now=now) if f.kind == "recall"]
    assert len(found) == 1 and "pan-cri.yaml" in found[0].where
    assert "USA's feed 1 day(s)" in found[0].message and "72 h" in found[0].message
