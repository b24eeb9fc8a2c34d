"""What an auditor may read of a row: ``Scope``, ``scoped`` and the allow-lists behind them.

A joint-oversight auditor (``Scope("USA")``) reads the decisions about its partner, and of the alert
only what that partner's view kept. Every field of a decision row falls under one allow-list:

- ``UNDELIVERED_FIELDS``: the decision itself (which one, about whom, when, under what), shown for
  any row in scope;
- ``DELIVERY_FIELDS``: how Puente handled a view that went to the partner (the fields it changed, the
  versions it superseded, when the alert was published to Puente), shown once the view went;
- ``VIEW_COLUMNS``: the alert's descriptions, each keyed to the field of the alert it was copied
  from, shown only in a row whose view went to the partner and kept that field.

Anything else (a field the audit adds later, a province, the markings) is blanked. Of a row whose view did not go to
the partner, its rule ids are read under their own allow-list, ``OPEN_RULES`` (``shown_rules``): nearly every rule id
is a function of the alert's content (``caveat.PANAMA_ONLY``: its markings), so each other is read as one placeholder,
and the index's rule filter, choices and "withheld by reason" read them so too (``open_rule_sql``). Nor is its
``agreement`` read (a withheld decision's agreements are those covering the alert's type), by row, filter or choice.

Every other row that leaves the index for such an auditor (an alert's timeline events, its "why" rows) falls under
the allow-list of its kind, ``ROW_FIELDS``, though each is made from decision rows already scoped: a field the index
adds to one later is blanked until it is named there. A row of a kind no allow-list names (a dead letter, which a
partner's auditor is never shown; a kind the index adds later), or one naming another partner, keeps only its
``kind``: fails closed.

No row names the alert by its own id: an id is ``AGENCY:reference``, and references carry content (a post, a date,
a sequence). An alert the partner held (a feed record or recall notice of it went to the partner, at some version)
is named by the id the partner knows it by, its reference (``policies.alert_reference``: what its feed and receipts
name); one it never held by its alias (``alias``). The index keeps, per row, which view columns its changes cover
(``view_mask``, the ``hidden`` column), so that the searches, choices and indicators it answers in SQL blank and
match them exactly as ``scoped`` does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from broker.audit.chain import changes_whole
from policies import within

PARTNER_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}", re.ASCII)
"""What a partner id is (the policy's ``Partner.id``): what ``Scope`` takes as a partner."""


@dataclass(frozen=True)
class Scope:
    """What an auditor may see: partner None = national (everything); else (joint oversight) only
    rows about that partner (its decisions of any outcome, its receipts) and of an alert only what its
    view kept: a decision that delivered nothing shows ``UNDELIVERED_FIELDS`` alone, one that delivered
    the ``VIEW_COLUMNS`` its view kept besides; filters, choices and indicators on the alert's
    descriptions see only those (``scoped``, ``AuditIndex._where``). No dead letters, denials or
    queries, and of the chains only the decisions' (their state and problem counts, not the problems'
    texts) and its own receipts' (with the texts)."""

    partner: str | None = None

    def __post_init__(self) -> None:
        # National is ``partner is None`` and nothing else: a partner that is no partner id ("", not a string)
        # is refused here, never read as national (or as no partner at all) by a test of its truth.
        if self.partner is not None and not (type(self.partner) is str and PARTNER_ID.fullmatch(self.partner)):
            raise ValueError(f"not a partner id: {str(self.partner)[:40]!r} (a national scope is Scope())")

    @property
    def national(self) -> bool:
        return self.partner is None


UNDELIVERED_FIELDS = frozenset({
    # The audit row itself and whether it delivered; not where it is in the audit (``record``, ``block``, or the
    # index's row ``id``, which counts every decision as it was read): a decision chain is one ingress
    # partition's, of one agency, so its place names the agency of an alert withheld from the partner, and the
    # gaps between places count the decisions about other alerts and partners.
    "kind", "delivered",
    # which decision, about whom, when; of the alert, the partner's reference or alias, never its id (``scoped``)
    "alert_id", "version", "partner", "decision", "at", "sent", "feed",
    "policy_version", "reasons",  # under what (reasons emptied)
    "rules",  # of their ids, only those that read nothing of the alert (``OPEN_RULES``; ``shown_rules``)
})
"""What a partner's auditor may read of a decision about its partner that delivered nothing (WITHHOLD,
a view not sent, a content-free recall notice): the decision and what concerns the partner, never the
alert's descriptions (type, agency, sector, classification or markings, publication time...), which
that partner was never sent. An allow-list: any other field of such a row, including one the audit
adds later, is blanked (None). Not its ``agreement``: a withheld decision names the partner's agreements that cover
the alert's type (none exactly when none does, ``agreement.coverage``), so where a partner's agreements cover
different types it says which type the alert was; an agreement filter and the agreement choices keep to delivered
rows so too (``AuditIndex._where``, ``facets``)."""

DELIVERY_FIELDS = UNDELIVERED_FIELDS | {
    "agreement",  # the one its feed record was sent under (the feed's retention): the partner read it
    "redacted", "truncated", "hidden",  # what the view changed (paths, actions, rules), and whether the list is whole
    "supersedes", "recalls", "notice_version",  # versions: replaced, held, a notice's
    "previous_version",  # the version before this one, only where the partner held it (``scoped``)
    "ingress_ms",  # when the alert was published to Puente (the latency indicators' start)
}
"""What a partner's auditor may read of a decision whose view went to its partner, besides the
``VIEW_COLUMNS`` that view kept: how Puente handled it, none of it the alert's content. An allow-list,
like ``UNDELIVERED_FIELDS``."""

VIEW_COLUMNS: Mapping[str, str] = MappingProxyType({
    "alert_type": "alert_type",
    "originator": "markings.originator.agency",
    "originator_country": "markings.originator.country",
    "classification": "markings.classification",
    "sector": "location.border_sector",
    "action": "lifecycle.action",
    "ingress": "markings.originator.agency",  # the ingress record's place: the agency's own topic
})
"""The columns of a decision row that describe the alert, each keyed to the field of the alert it was
copied from (the broker copies them from the alert as published, before any view; a classification only
when it is a level of the policy's scale and a sector only when it is one of its areas, else a placeholder that
says it is not, ``(not a level)``, ``(not an area)``). A partner's auditor
reads one only where the view went to its partner and no change of that view covers its field: a
dropped, masked, pseudonymised or generalised field is not what the column holds. An allow-list: a
descriptive column added to the audit is blanked until it is named here, with its field. The order
numbers the bits of the index's ``hidden`` column: append, and bump the index's layout."""

ALIAS_PREFIX = "withheld-"
"""What every alias starts with: lower case, which no agency code is (``AGENCY:reference``)."""
ALIAS = re.compile(r"withheld-[a-z2-7]{24}", re.ASCII)
ALIAS_KEY = "alias_key"  # the index's ``meta`` key holding the aliases' HMAC key (hex)


def alias(key: bytes, partner: str, alert_id: str) -> str:
    """The name a joint-oversight auditor of ``partner`` reads for alert ``alert_id`` while the partner never held it:
    an HMAC of both under the index's own key (``ALIAS_KEY``), so the same alert has the same alias on every row,
    version and page of that scope, another in another scope (two partners' auditors cannot match what each was
    withheld), and no one without the index file can tell which id it stands for."""
    mac = hmac.new(key, json.dumps([partner, alert_id]).encode(), hashlib.sha256).digest()
    return ALIAS_PREFIX + base64.b32encode(mac[:15]).decode().lower()


_BIT = {name: 1 << i for i, name in enumerate(VIEW_COLUMNS)}
ALL_HIDDEN = sum(_BIT.values())


def bit(column: str) -> int:
    """The bit of ``hidden`` that says ``column`` (one of ``VIEW_COLUMNS``) is not the partner's to read."""
    return _BIT[column]


def _covers(change: str, source: str) -> bool:
    """A change of field ``change`` covers field ``source``: the same, one holding it (``location``,
    ``markings.originator``), or one inside it."""
    return within(source, change) or within(change, source)


def covered_columns(row: Mapping[str, Any]) -> frozenset[str]:
    """The ``VIEW_COLUMNS`` of decision ``row`` (as ``flatten`` gives it) whose field a change of its view
    covers. Fails closed: every one of them when the changes cannot be read whole (``redacted`` absent
    or not a list, a change naming no field path, the block cut the list short, or a redacted view lists none:
    ``broker.audit.chain.changes_whole``, the rule the console's "why" and `audit log` read them by)."""
    changes = row.get("redacted")
    if not isinstance(changes, list) or not changes_whole(row):
        return frozenset(VIEW_COLUMNS)
    paths = []
    for change in changes:
        path = change.get("field") if isinstance(change, dict) else None
        if not isinstance(path, str) or not path:
            return frozenset(VIEW_COLUMNS)
        paths.append(path)
    return frozenset(c for c, source in VIEW_COLUMNS.items() if any(_covers(p, source) for p in paths))


def view_mask(row: Mapping[str, Any]) -> int:
    """``covered_columns`` as the index's ``hidden`` column holds it (``bit`` per column)."""
    return sum(_BIT[c] for c in covered_columns(row))


def mask_columns(mask: int) -> list[str]:
    """The columns ``hidden`` = ``mask`` names, in ``VIEW_COLUMNS`` order."""
    return [c for c in VIEW_COLUMNS if mask & _BIT[c]]


OPEN_RULES = frozenset({
    "unknown.partner",  # the partner the decision was asked about is not one the policy knows: nothing of the alert
    "time.naive",  # the decision's own time was no time with a UTC offset: nothing of the alert
})
"""The rule ids (``policies._decide``) a partner's auditor reads on a row whose view did not go to its partner: those
that depend on nothing the alert holds. An allow-list: every other rule id is a function of the alert's content
(``caveat.X``, ``handling.X``: its markings; ``partner.clearance``, ``<agreement>.max_classification``: its
classification; ``agreement.coverage``, ``unknown.alert_type``: its type; ``originator.foreign``: its origin or a
list it names; ``<rule>.<condition>``: what the condition reads; ``alert.*``: its dates or form), and so are some
that look as though they were about the agreement: ``<agreement>.validity`` is only checked for an alert of a type
that agreement covers, and ``agreement.none`` only for one of a type the policy knows. A rule id added to the policy
is such a one until it is named here. Each is read as ``CONTENT_RULE`` (``shown_rules``)."""

CONTENT_RULE = "(a rule on the alert's content)"
"""What a partner's auditor reads, once, in place of the rule ids outside ``OPEN_RULES`` of a row whose view did not
go to its partner: that such rules withheld or applied, never which, nor how many (the number of caveats is content
too). No rule id can be it: a policy's ids are codes (letters, digits, ``_.-``), so filtering by it matches nothing."""


def shown_rules(rules: Iterable[Any]) -> list[str]:
    """``rules`` (a row's rule ids, in order) as a partner's auditor reads them on a row whose view did not go to its
    partner: those in ``OPEN_RULES`` as they are, every other one (a value that is no string included) as one
    ``CONTENT_RULE``, where the first of them stood. Its first is the row's first rule as that auditor reads it
    (``open_rule_sql``): what "withheld by reason" counts by."""
    return list(dict.fromkeys(r if isinstance(r, str) and r in OPEN_RULES else CONTENT_RULE for r in rules))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def open_rule_sql(column: str) -> str:
    """SQL for rule id ``column`` as ``shown_rules`` reads it on a row its partner was not sent: the id when it is in
    ``OPEN_RULES``, else ``CONTENT_RULE`` (NULL stays NULL), so that the searches, choices and indicators the index
    answers in SQL name rules exactly as ``scoped`` does."""
    return (f"CASE WHEN {column} IS NULL THEN NULL WHEN {column} IN ({', '.join(map(_literal, sorted(OPEN_RULES)))}) "
            f"THEN {column} ELSE {_literal(CONTENT_RULE)} END")


def open_rules_sql() -> str:
    """SQL listing ``OPEN_RULES``, for ``rule IN (...)``."""
    return ", ".join(map(_literal, sorted(OPEN_RULES)))


LIFECYCLE_FIELDS = frozenset({"kind", "at", "version"})
"""What a partner's auditor may read of an alert's publication, update or recall (a timeline's ``PUBLISHED``,
``UPDATED``, ``RECALLED`` naming no partner): which version, and when it was published to Puente, which it reads
only where that version went to its partner (``DELIVERY_FIELDS``' ``ingress_ms``). Never its ``detail``: the
agency's lifecycle action and free-text reason."""

DECISION_EVENT_FIELDS = frozenset({
    "kind", "at", "partner", "version", "decision", "rules",
    "agreement",  # None on a decision whose view did not go (``_UNSENT_EVENTS``), as on its decision row
    "reasons",  # emptied, as a decision row's
    "redacted",  # the changed fields' paths, actions and rules, and only those (``scoped``)
    "detail",  # the index's own words: "the feed record was not sent"
})
"""What a partner's auditor may read of a timeline's decision about its partner (``DELIVERED``, ``WITHHELD``,
``DECIDED``, ``RECALLED`` naming the partner): what the page shows of the decision row it is made from, no more."""

RECEIPT_FIELDS = frozenset({"kind", "at", "partner", "version", "status", "detail"})
"""What a partner's auditor may read of its own partner's receipt on a timeline: which version it acknowledges,
how and when, and its ``detail`` (the time the partner stated, the partner's own text or the feed it names: the
partner's receipts chains are read whole by its auditor, texts and all)."""

NOT_SHOWN_FIELDS = frozenset({"kind", "at", "partner", "not_shown", "capped", "detail"})
"""What a partner's auditor may read of a timeline's count of what it leaves out (``RECEIPTS_NOT_SHOWN``,
``VERSIONS_NOT_SHOWN``): how many, whether the count stopped at its bound, where the first not listed would be,
and the index's own sentence saying so."""

WHY_FIELDS = frozenset({
    "kind", "version", "decision", "agreement", "rules", "policy_version", "at",  # of the decision row, scoped
    # (so its agreement and rules as the row reads them: none, and only ``OPEN_RULES``, when its view did not go)
    "outcome", "rule", "named",  # what became of the field asked about, and which rule said so
    "changes",  # the changes inside that field: paths, actions and rules, and only those (``scoped``)
})
"""What a partner's auditor may read of a "why" row (``AuditIndex.why``: one per version decided, a row with no
``kind``): what the console's "why" page shows."""

ROW_FIELDS: Mapping[str | None, frozenset[str]] = MappingProxyType({
    "PUBLISHED": LIFECYCLE_FIELDS,
    "UPDATED": LIFECYCLE_FIELDS,
    "RECALLED": DECISION_EVENT_FIELDS,  # the notice to the partner; the alert's recall, naming none: LIFECYCLE_FIELDS
    "DELIVERED": DECISION_EVENT_FIELDS,
    "WITHHELD": DECISION_EVENT_FIELDS,
    "DECIDED": DECISION_EVENT_FIELDS,
    "RECEIPT": RECEIPT_FIELDS,
    "RECEIPTS_NOT_SHOWN": NOT_SHOWN_FIELDS,
    "VERSIONS_NOT_SHOWN": NOT_SHOWN_FIELDS,
    None: WHY_FIELDS,  # a "why" row, which names no kind
})
"""What a partner's auditor may read of each kind of row other than a decision (``kind``: a timeline event's; None
for a "why" row, which has none). An allow-list: a field a row's kind does not name is blanked (None), and a row of
a kind not named here (``DEAD_LETTER``, ``DEAD_LETTERS_NOT_SHOWN``: dead letters are national auditors' alone; a
kind added later) keeps only its ``kind``, every other field blanked."""

_LIFECYCLE = ("PUBLISHED", "UPDATED", "RECALLED")
_UNSENT_EVENTS = frozenset({"WITHHELD", "DECIDED", "RECALLED"})  # a timeline's decisions whose view did not go
_KIND_ONLY = frozenset({"kind"})
_CHANGE_KEYS = ("field", "action", "rule", "named")


def _kept(row: dict[str, Any], allowed: Iterable[str]) -> dict[str, Any]:
    keep = set(allowed)
    return {k: (v if k in keep else None) for k, v in row.items()}


def scoped(scope: Scope, row: dict[str, Any]) -> dict[str, Any]:
    """``row`` (a decision row, timeline event or "why" row) as ``scope`` may read it; applied to every
    row that leaves the index. A national scope reads it whole. A partner's auditor reads only the fields an
    allow-list names for the row's kind, every other field blanked (None), the row keeping its shape: what is not
    named is refused, a field the audit or the index adds later included. Reason texts quote the alert and name
    other partners ("releasable_to (COL, CRI) omits USA"), and an agency's lifecycle ``reason`` is its free text:
    a partner's auditor gets the rule ids, decision, agreement and changed fields' paths, actions and rules, never
    the texts (``reasons`` emptied; of each change in ``redacted`` or ``changes``, ``_CHANGE_KEYS`` alone); and of a
    row whose view did not go to its partner, only the rule ids that read nothing of the alert (``shown_rules``) and
    no agreement. Its ``action`` is the lifecycle action its partner's feed read: a CONSENT naming another partner,
    and any action of a later version sent to a partner that held none before it (no ``supersedes``), read UPDATE.
    Such a row written before the pipeline made first copies anew (cf1f5f2) reads UPDATE too, though its partner's
    feed then read the version's own action: fails safe, hiding what the partner read, never revealing more. Its
    ``previous_version`` only where the partner held that version (equal to ``supersedes``), else blanked.

    A decision row keeps only what its allow-lists name (module docstring):
    ``UNDELIVERED_FIELDS`` when it did not deliver to its partner (``delivered`` not True: fails closed),
    so the partner's auditor sees the decision, not the alert it was never sent; when it did,
    ``DELIVERY_FIELDS`` and the ``VIEW_COLUMNS`` whose field the view kept (``hidden``, as the index
    set it from the row's changes, else ``covered_columns``). Its ``alert_id`` is never the alert's own id (an
    agency's reference, which no partner is given): it is ``held_as``, the id by which the partner knows the alert
    (its reference, ``policies.alert_reference``), which only the index sets, on a row of an alert the partner was
    sent at some version; else the row's ``alias``; else None. Timeline events are made from rows scoped
    so, so an alert not delivered gets no publication event (its ingress time is blanked).

    Any other row keeps what ``ROW_FIELDS`` names for its ``kind`` (an alert's publication, update or recall
    naming no partner: ``LIFECYCLE_FIELDS``, whatever its kind's entry); a row of a kind it does not name, or one
    about another partner than the scope's, keeps its ``kind`` alone: fails closed."""
    if scope.national:
        return row
    out = dict(row)
    held_as, named = out.pop("held_as", None), out.pop("alias", None)
    if out.get("kind") == "DECISION":
        if out.get("action") == "CONSENT" and not (isinstance(out.get("consent"), list)
                                                   and out.get("partner") in out["consent"]):
            # As the partner's feed read it (``policies.build_view``): that the originator consented to release
            # the alert to another partner is nothing its auditor may learn, as its partner did not.
            out["action"] = "UPDATE"
        if out.get("delivered") is True and out.get("action") is not None and type(out.get("supersedes")) is not int:
            # A later version sent to a partner that held none of it (the pipeline records ``supersedes``, the
            # version it held, on every delivery to a holder, and on no other): its feed read a lifecycle made anew,
            # an UPDATE (``broker.pipeline._first_copy``), never what the version did (a RECLASSIFY that let it in, a
            # CONSENT naming it), which would tell its auditor the marking history its partner was kept from. A
            # first publication (no action) stays as it is; a row of unreadable ``supersedes`` reads UPDATE too.
            out["action"] = "UPDATE"
        # Never the alert's own id (an agency's reference, which its partner's feed and receipts no longer name):
        # the id the partner knows it by, which only the index sets (``held_as``), else its alias.
        if isinstance(held_as, str) and held_as:
            out["alert_id"] = held_as
        else:
            out["alert_id"] = named if isinstance(named, str) and ALIAS.fullmatch(named) else None
        if out.get("delivered") is not True:
            # ``redacted`` too: a view's changed field paths say what the alert held (a passport: a person).
            out = _kept(out, UNDELIVERED_FIELDS)
            # And its rule ids but those that read nothing of the alert: the others name its markings, type...
            out["rules"] = shown_rules(out["rules"] if isinstance(out.get("rules"), list) else [])
        else:
            hidden = out.get("hidden")
            covered = (set(hidden) if isinstance(hidden, list) and all(isinstance(h, str) for h in hidden)
                       else covered_columns(out))
            out = _kept(out, DELIVERY_FIELDS | (set(VIEW_COLUMNS) - covered))
            held = out.get("supersedes")
            if "previous_version" in out and not (type(held) is int and out["previous_version"] == held
                                                  and type(out["previous_version"]) is int):
                # The version before this one, which the partner read only where it held it (``supersedes``, an
                # int: the same number): on a first copy it says how many versions the partner was not sent, on a
                # holder's row above what it held that one was kept from it (held 1, previous 2). Else blanked.
                out["previous_version"] = None
            if isinstance(out.get("ingress"), str):
                # The agency's topic, which the view kept; not the partition and offset: the gaps between two
                # offsets the partner may read would count, and place, the alerts of that agency it was not sent.
                out["ingress"] = out["ingress"].split(":", 1)[0]
        for name in ("rules", "reasons", "redacted"):
            if name in out and out[name] is None:
                out[name] = []
    else:
        out = _kept(out, _row_fields(scope, out))
        if out.get("kind") in _UNSENT_EVENTS:
            # Made from decision rows scoped above, so already so; read again so, should one come another way.
            if isinstance(out.get("rules"), list):
                out["rules"] = shown_rules(out["rules"])
            if "agreement" in out:
                out["agreement"] = None
    if out.get("reasons") is not None:
        out["reasons"] = []  # the texts: never a partner's auditor's, whatever the row
    for name in ("redacted", "changes"):
        if isinstance(out.get(name), list):
            out[name] = [{k: c[k] for k in _CHANGE_KEYS if k in c} for c in out[name] if isinstance(c, dict)]
    return out


def _row_fields(scope: Scope, row: Mapping[str, Any]) -> frozenset[str]:
    """The allow-list of ``row``, not a decision row, for ``scope``'s auditor (``ROW_FIELDS``)."""
    kind, partner = row.get("kind"), row.get("partner")
    if partner is not None and partner != scope.partner:
        return _KIND_ONLY  # about another partner: nothing this scope's auditor may read
    if kind in _LIFECYCLE and partner is None:
        return LIFECYCLE_FIELDS
    if kind is not None and not isinstance(kind, str):
        return _KIND_ONLY
    return ROW_FIELDS.get(kind, _KIND_ONLY)
