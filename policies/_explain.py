"""Text a policy officer can read: a decision, its reasons, the field changes and the partner's view."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import schemas
from policies._compile import PolicySet
from policies._decision import Decision

DEMO_KEY = b"puente-explain-demonstration-key"


def _table(rows: Sequence[tuple[str, ...]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def describe_alert(alert: Mapping[str, Any]) -> list[str]:
    m = alert["markings"]
    origin = m["originator"]
    rel = ", ".join(m["releasable_to"]) or "-"
    caveats = ", ".join(m["caveats"]) or "-"
    return [
        f"Alert      {alert['alert_id']}  {alert['alert_type']}  from {origin['agency']} ({origin['country']})",
        f"Markings   {m['classification']}  REL TO {rel}  caveats {caveats}  {m['handling_code']}  "
        f"graded {m['source_reliability']}{m['information_credibility']}"
        + (f"  consent {', '.join(m['originator_consent'])}" if m["originator_consent"] else ""),
    ]


def _agreements(decision: Decision) -> str:
    if not decision.agreement_ids:
        return ""
    names = ", ".join(decision.agreement_ids)
    return f" under {names}" if decision.delivers else f" (agreement considered: {names})"


def describe_decision(decision: Decision, ps: PolicySet, at: datetime) -> list[str]:
    partner = ps.partners.get(decision.partner_id)
    who = f"{decision.partner_id} (unknown)"
    if partner is not None:
        kind = "internal" if partner.internal else "foreign"
        who = f"{partner.id} — {partner.name} ({kind}, cleared to {partner.clearance})"
    lines = [
        f"Partner    {who}",
        f"At         {schemas.to_json(at)}",
        f"Policy     {decision.policy_version}",
        f"Decision   {decision.outcome.value}" + _agreements(decision),
        f"Rules      {', '.join(decision.rule_ids) or '-'}",
        "Why",
        *(f"  - {reason}" for reason in decision.reasons),
    ]
    if decision.delivers:
        onward = "allowed" if decision.onward_sharing else "not allowed"
        lines.append(f"Handling   the partner may keep it {decision.retention_days} days; onward sharing {onward}")
    return lines


def describe_changes(decision: Decision) -> list[str]:
    if not decision.redactions:
        return ["Changes    none: the partner sees the alert as published"] if decision.delivers else []
    rows = [("field", "action", "how", "rule", "why")]
    rows += [(r.path, r.action, r.detail, r.rule_id, r.why or "") for r in decision.redactions]
    return ["Changes", *_table(rows)]


def explain(alert: Mapping[str, Any], decision: Decision, ps: PolicySet, at: datetime, view: Any | None) -> str:
    """The whole explanation as text; ``view`` is the partner's view, or None when withheld."""
    lines = describe_alert(alert) + describe_decision(decision, ps, at) + describe_changes(decision)
    if view is not None:
        lines += ["Partner's view", json.dumps(schemas.to_json(view), ensure_ascii=False, indent=2)]
    return "\n".join(lines)
