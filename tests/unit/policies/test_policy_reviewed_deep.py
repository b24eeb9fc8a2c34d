"""``reviewed_schema`` guards every depth under a kept record, not only its direct children.

PAN-USA keeps ``payload.person`` and FEAN keeps ``payload`` whole. A field the reviewed release lacks two or
more levels below what is kept (``payload.person.documents[].number``, as a later schema might add it) was
neither dropped from the views nor listed by lint: the walk stopped at the first kept field the release had.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

import policies._lint
import policies._load
from policies import build_view, decide, load_policy_set
from policies._compile import UNREVIEWED
from policies._lint import lint
from policies._load import schema_fields
from policies._model import Action, Cover, FieldRule
from policies._plan import plan_fields

NEWER = ("payload.person.documents[].number", "payload.person.documents[].expires_on")


@pytest.fixture
def lacking(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Release v2 as if it lacked two fields of a person's documents (grandchildren of payload.person)."""
    real = policies._load.schema_releases()
    fake = {**real, "v2": {**real["v2"], "WATCHLIST_HIT": frozenset(real["v2"]["WATCHLIST_HIT"]) - set(NEWER)}}
    monkeypatch.setattr(policies._load, "schema_releases", lambda: fake)
    monkeypatch.setattr(policies._lint, "schema_releases", lambda: fake)
    yield


def test_a_grandchild_newer_than_the_reviewed_release_is_dropped(
        lacking: None, policy_copy: Any, make_alert: Any, now: datetime, key: bytes) -> None:
    ps = load_policy_set(policy_copy.root)
    hit = make_alert("tocumen_hit")
    assert hit["payload"]["person"]["documents"][0]["number"]
    for partner in ("USA", "FEAN"):
        decision = decide(hit, partner, ps, now)
        assert decision.delivers, decision.reasons
        documents = build_view(hit, decision, ps, key)["payload"]["person"]["documents"]
        assert documents and all(d["number"] is None and d["expires_on"] is None for d in documents)
        assert documents[0]["document_type"] == hit["payload"]["person"]["documents"][0]["document_type"]  # reviewed
        details = {r.path: r.detail for r in decision.redactions}
        for path in NEWER:
            assert details[path].endswith(UNREVIEWED.format("v2")), (partner, path)


def test_lint_lists_a_grandchild_newer_than_the_reviewed_release(lacking: None, policy_copy: Any) -> None:
    """COMBIFRON keeps payload.person.documents (a child, listed before too), FEAN payload, USA payload.person."""
    at = datetime(2025, 6, 2, tzinfo=UTC)
    review = sorted(str(f) for f in lint(policy_copy.root, now=at) if f.kind == "review")
    rules = ("COMBIFRON-WATCHLIST", "FEAN-WATCHLIST", "USA-WATCHLIST")
    assert len(review) == len(rules), review
    for rule, line in zip(rules, review, strict=True):
        assert f"{rule}: {', '.join(NEWER)} came into the alert schema after release v2" in line


@pytest.mark.parametrize("missing", [
    "payload.person.documents[].number",  # a grandchild of the kept record (through an array)
    "payload.person.documents",  # a direct child: its own fields go with it
    "payload.person.sex",
])
def test_plan_drops_what_the_reviewed_release_lacks_at_any_depth(missing: str) -> None:
    fields = schema_fields()["WATCHLIST_HIT"]
    cover = Cover(rule="R", alert_type="WATCHLIST_HIT", fields={"payload": FieldRule(action=Action.KEEP)})
    planned = plan_fields(fields, cover, (), set(fields) - {missing})
    newer = [p.path for p in planned if p.unreviewed]
    assert newer == [missing]
    assert all(not p.named for p in planned if p.unreviewed)
    assert not [p for p in plan_fields(fields, cover, (), set(fields)) if p.path.startswith("payload.")]
