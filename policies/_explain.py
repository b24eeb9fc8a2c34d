"""Text a policy officer can read: a decision, its reasons, the field changes and the partner's view."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import schemas
from policies._compile import UNNAMED, PolicySet
from policies._decision import Decision
from policies._source import VOCABULARY
from puente.strict import one_line

DEMO_KEY = b"puente-explain-demonstration-key"


Written = Callable[[str], str]
"""Text as the output will write it (``puente.strict.as_written``): what a table measures its cells by."""


def _table(rows: Sequence[tuple[str, ...]], written: Written, indent: str = "  ") -> list[str]:
    """``rows`` in columns, each cell measured and padded as it will be written (escaped: ``one_line``, then
    ``written``), so that the columns line up as printed."""
    cells = [tuple(written(one_line(c)) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]


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


def describe_envelope(ps: PolicySet) -> list[str]:
    """The policy-wide rule: the fields every partner's view keeps, whatever its agreement names."""
    env = ps.envelope
    fields = textwrap.wrap(", ".join(env.keep), width=88, break_on_hyphens=False)
    return [
        f"Envelope   rule {env.rule} ({VOCABULARY}) keeps for every partner: {env.why}",
        *(f"  {line}" for line in fields),
    ]


def describe_changes(decision: Decision, written: Written = str) -> list[str]:
    """The agreement's own field changes, then every field dropped because no rule names it, in tables whose cells
    are measured as ``written`` gives them (``_table``)."""
    if not decision.redactions:
        return ["Changes    none: the partner sees the alert as published"] if decision.delivers else []
    own = [r for r in decision.redactions if r.named]
    unnamed = [r for r in decision.redactions if not r.named]
    lines = []
    if own:
        rows = [("field", "action", "how", "rule", "why")]
        rows += [(r.path, r.action, r.detail, r.rule_id, r.why or "") for r in own]
        lines += ["Changes    the agreement's own", *_table(rows, written)]
    if unnamed:
        dropped = [("field", "how", "rule")]
        dropped += [(r.path, r.detail.removesuffix(UNNAMED), r.rule_id) for r in unnamed]
        lines += ["Not named  no rule names these fields, so the partner does not get them", *_table(dropped, written)]
    return lines


def explain(alert: Mapping[str, Any], decision: Decision, ps: PolicySet, at: datetime, view: Any | None, *,
            written: Written = str) -> str:
    """The whole explanation as text; ``view`` is the partner's view, or None when withheld. Every line but the
    view's JSON is one line of the text whatever the alert holds (``one_line``). ``written``: text as the output
    will write it (``puente.strict.as_written``), which the tables' columns are measured by."""
    lines = describe_alert(alert) + describe_decision(decision, ps, at)
    if decision.delivers:
        lines += describe_envelope(ps)
    lines += describe_changes(decision, written)
    # Each is one line, quoting what the alert holds (its id, agency, codes) and reasons that may quote it: a line
    # break in a value must not start a line that seems the explanation's own (a second "Decision" line).
    lines = [one_line(line) for line in lines]
    if view is not None:
        lines += ["Partner's view", json.dumps(schemas.to_json(view), ensure_ascii=False, indent=2)]
    return "\n".join(lines)
