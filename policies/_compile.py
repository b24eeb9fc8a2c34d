"""Compile validated policy files into a PolicySet: ranks, lookups and view steps, built once.

The PolicySet is what ``decide`` and ``build_view`` read. Its tables are
plain dicts for speed; treat them as read-only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from policies._areas import Areas, compile_areas
from policies._check import Releases
from policies._conditions import Condition, compile_when
from policies._decision import Decision, Redaction
from policies._fields import EPOCH, FieldInfo
from policies._model import Action, Agreement, Cover, Effect, Envelope, FieldRule, Partner, ViewSettings, Vocabulary
from policies._plan import plan_fields
from policies._source import PolicySources
from policies._view import Fits, Step, compile_fits, compile_step, grid_of


@dataclass(frozen=True, slots=True)
class PartnerInfo:
    """A partner as the broker needs it: where its feed goes and which keys it uses."""

    id: str
    name: str
    country: str
    internal: bool
    clearance: str
    clearance_rank: int
    feed_topic: str
    encryption_key_id: str | None
    verification_key_id: str | None
    watchlists: frozenset[str]
    names: frozenset[str]  # how markings may name this partner: its id and its country
    instances: tuple[str, ...]  # the subscriber instances it may run (``subscriber_instances``)


@dataclass(frozen=True, slots=True, eq=False)  # identity equality: hashed on the hot path
class CompiledAgreement:
    id: str
    title: str
    partner_ids: tuple[str, ...]
    valid_from: date
    valid_until: date
    starts: datetime  # valid_from at 00:00 home time, in UTC
    ends: datetime  # the day after valid_until at 00:00 home time (exclusive), in UTC
    max_classification: str
    max_rank: int
    min_grading: str | None  # e.g. "C3"
    min_ranks: tuple[int, int]  # worst (reliability, credibility) ranks admitted; 0 is best
    onward_sharing: bool
    retention_days: int
    recall_ack_hours: int  # how long a partner has to acknowledge a recall notice (auditors look it up)


@dataclass(frozen=True, slots=True, eq=False)  # identity equality: hashed on the hot path
class CompiledCover:
    """One alert type one agreement covers: its conditions and the view steps of its field rules."""

    rule_id: str
    alert_type: str
    agreement: CompiledAgreement
    conditions: tuple[tuple[str, Condition], ...]  # (rule id, predicate)
    steps: tuple[Step, ...]
    redactions: tuple[Redaction, ...]
    release_reason: str
    fits: Fits  # what an alert of the type may hold (``_view.Fits``): a view is built only of one that fits
    pseudonymises: bool = False  # a field rule pseudonymises: a view needs the agreement's pseudonym key
    # beside each step: (field path, grid) for one that rounds a number to a grid, else None (``_view.chosen``)
    rounds: tuple[tuple[str, float] | None, ...] = ()


class DecisionMemo(dict[tuple[Any, ...], Decision]):
    """Decisions shared between equal inputs, with the bytes their text holds (``size``).

    ``decide`` bounds it by entries and by size: a reason quotes (bounded excerpts of) alert
    values, so distinct hostile alerts could otherwise fill it with text.
    """

    __slots__ = ("size",)

    def __init__(self) -> None:
        super().__init__()
        self.size = 0

    def clear(self) -> None:
        super().clear()
        self.size = 0


@dataclass(frozen=True)
class PolicySet:
    """The loaded, checked and compiled policy: everything a decision needs, and its version."""

    version: str
    root: Path
    home_country: str
    scale: tuple[str, ...]
    class_rank: dict[str, int]
    caveat_effects: dict[str, Effect]
    handling_effects: dict[str, Effect]
    notes: dict[str, str]  # "caveat.X" / "handling.X" -> description, stated with NOTICE effects
    reliability_rank: dict[str, int]
    credibility_rank: dict[str, int]
    known_names: frozenset[str]  # partner ids and countries, and home: what REL TO may name (consent: ids only)
    known_countries: frozenset[str]
    alert_types: frozenset[str]
    partners: dict[str, PartnerInfo]
    agreements: dict[str, CompiledAgreement]
    covers: dict[str, CompiledCover]  # by rule id
    covers_for: dict[tuple[str, str], tuple[CompiledCover, ...]]  # (partner id, alert type)
    partners_with_agreements: frozenset[str]  # partner ids some agreement names as a party
    # alert type -> (path, its keys) of each field naming an owner of the information besides the originator
    owner_fields: dict[str, tuple[tuple[str, tuple[str, ...]], ...]]
    # alert type -> (path, its keys, keeper by list name) of the field naming the list an alert matched
    list_keepers: dict[str, tuple[str, tuple[str, ...], dict[str, str]]]
    owned_types: frozenset[str]  # the alert types with owner fields or lists: only these name owners but the originator
    open_keepers: frozenset[str]  # owners that are no country and open what they keep to every partner
    view_settings: ViewSettings
    envelope: Envelope  # the policy-wide rule: the markings every partner's view keeps
    sources: PolicySources = field(repr=False, compare=False)
    # Deliveries depend only on the rules that matched, so they are built once and shared.
    memo: DecisionMemo = field(default_factory=DecisionMemo, repr=False, compare=False)
    areas: Areas = field(default_factory=Areas, repr=False, compare=False)  # the outlines area conditions use


def policy_version(
    sources: PolicySources, schema_fingerprint: bytes, reviewed: Mapping[str, Collection[str]],
    fields: Mapping[str, Mapping[str, FieldInfo]],
) -> str:
    """sha256 over a canonical JSON of the validated policy, the alert schema it was compiled against (its
    fingerprint, and ``fields``: each alert type's field table as the views read it), and the field lists of the
    release it was reviewed against (``reviewed``: each alert type's field paths there).

    Comments, key order, layout and spelled-out defaults do not change it;
    any change of meaning does. The reviewed release's fields are part of the meaning: a kept record keeps only
    the fields it held there, so a release edited in place under the same label changes the views, and an audit
    record's version must then name another policy. So is the field table: the schema's fingerprint (Avro's
    canonical form) leaves out defaults, and a required enum a view empties takes its default.
    """
    doc = {
        "vocabulary": sources.vocabulary.model.model_dump(mode="json"),
        "partners": sorted((p.model_dump(mode="json") for p in sources.partners.model.partners), key=lambda p: p["id"]),
        # covers by rule, as they are compiled (``compile_policy``): their order in a file means nothing
        "agreements": sorted(({**dumped, "covers": sorted(dumped["covers"], key=lambda c: c["rule"])}
                              for dumped in (a.model.model_dump(mode="json") for a in sources.agreements)),
                             key=lambda a: a["id"]),
        "areas": sources.areas.model.model_dump(mode="json") if sources.areas is not None else None,
        "alert_schema": schema_fingerprint.hex(),
        "reviewed_schema_fields": {t: sorted(paths) for t, paths in sorted(reviewed.items())},
        "alert_fields": {t: {path: asdict(info) for path, info in sorted(table.items())}
                         for t, table in sorted(fields.items())},
    }
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _partner(p: Partner, rank: Mapping[str, int]) -> PartnerInfo:
    return PartnerInfo(
        p.id, p.name, p.country, p.kind == "internal", p.clearance, rank[p.clearance], p.feed_topic,
        p.keys.encryption, p.keys.verification, frozenset(p.watchlists), frozenset({p.id, p.country}),
        tuple(p.instances),
    )  # fmt: skip


def subscriber_instances(policy_set: PolicySet, partner_id: str) -> tuple[str, ...]:
    """The names ``puente subscribe --instance`` may take for ``partner_id``, as partners.yaml lists them (``[main]``
    when it names none); none for a partner it does not list. An allow-list: ``acls apply`` grants the partner's login
    the transactional id of each of these, and of no other instance."""
    partner = policy_set.partners.get(partner_id)
    return () if partner is None else partner.instances


def _agreement(a: Agreement, sources: PolicySources, partners: Mapping[str, PartnerInfo]) -> CompiledAgreement:
    vocab = sources.vocabulary.model
    home = vocab.home.tz()
    rel = {g: i for i, g in enumerate(vocab.grading.reliability)}
    cred = {g: i for i, g in enumerate(vocab.grading.credibility)}
    g = a.min_grading
    return CompiledAgreement(
        a.id, a.title, tuple(p for p in a.parties if p in partners), a.valid_from, a.valid_until,
        # The same instants in UTC: comparing datetimes of different zones costs ~20 times more, and the
        # broker decides with UTC times.
        datetime.combine(a.valid_from, time(), home).astimezone(UTC),
        datetime.combine(a.valid_until + timedelta(days=1), time(), home).astimezone(UTC),
        a.max_classification, vocab.classification.scale.index(a.max_classification),
        None if g is None else f"{g.reliability}{g.credibility}",
        (len(rel) - 1, len(cred) - 1) if g is None else (rel[g.reliability], cred[g.credibility]),
        a.onward_sharing, a.retention_days, a.recall_ack_hours,
    )  # fmt: skip


UNNAMED = " (not named by the agreement)"  # ends the detail of a field dropped because no rule names it
# ... and of one a kept record holds, dropped because it is newer than the release the policy was reviewed against
UNREVIEWED = " (added to the alert schema after release {}, which the agreement was reviewed against)"


def _emptied(info: FieldInfo) -> str:
    if info.nullable or info.kind == "array":
        return "removed"
    value = info.empty()
    shown = "the epoch (1970-01-01T00:00:00Z)" if value == EPOCH else repr(value)
    return f"emptied to {shown}, since the schema requires a value"


def _detail(info: FieldInfo, rule: FieldRule, settings: ViewSettings) -> str:
    if rule.action is Action.GENERALISE:
        if info.kind == "date":
            return "date replaced by its year (birth_year)"
        if info.kind == "timestamp":
            return f"truncated to the {rule.to or 'hour'}"
        return f"rounded down to a {rule.grid or settings.grid:g}° grid"
    if rule.action is Action.DROP:
        return _emptied(info)
    return {
        Action.MASK: f"replaced by {settings.mask}",
        Action.PSEUDONYMISE: f"keyed pseudonym, domain {rule.domain or info.path.rsplit('.', 1)[-1]}",
    }.get(rule.action, "kept")


def _cover(
    cover: Cover, agreement: CompiledAgreement, fields: Mapping[str, FieldInfo], vocab: Vocabulary, areas: Areas,
    reviewed: Collection[str], fits: Fits,
) -> CompiledCover:
    steps: list[Step] = []
    rounds: list[tuple[str, float] | None] = []
    redactions: list[Redaction] = []
    for planned in plan_fields(fields, cover, vocab.envelope.keep, reviewed):
        info = fields[planned.path]
        step = compile_step(info, planned.rule, vocab.view)
        if step is None:
            continue
        steps.append(step)
        grid = grid_of(info, planned.rule, vocab.view)
        rounds.append(None if grid is None else (planned.path, grid))
        detail = _detail(info, planned.rule, vocab.view) + (
            "" if planned.named else UNREVIEWED.format(vocab.reviewed_schema) if planned.unreviewed else UNNAMED)
        action, why = planned.rule.action.value, planned.rule.why
        redactions.append(Redaction(planned.path, action, detail, cover.rule, why, planned.named))
    lists = vocab.owners.lists.get(cover.alert_type)
    keepers = dict(lists.keepers) if lists is not None else {}
    conditions = tuple((f"{cover.rule}.{name}", check) for name, check in compile_when(cover.when, areas, keepers))
    reason = (
        f"{agreement.id} ({agreement.title}) covers {cover.alert_type} under rule {cover.rule}, "
        f"in force {agreement.valid_from} to {agreement.valid_until}"
        + (f"; {len(redactions)} field changes" if redactions else "; the full alert is shared")
    )
    pseudonymises = any(r.action == Action.PSEUDONYMISE.value for r in redactions)
    return CompiledCover(cover.rule, cover.alert_type, agreement, conditions, tuple(steps), tuple(redactions), reason,
                         fits, pseudonymises, tuple(rounds))


def compile_policy(
    sources: PolicySources, fields: Mapping[str, Mapping[str, FieldInfo]], schema_fingerprint: bytes,
    releases: Releases,
) -> PolicySet:
    """Build the PolicySet from sources that have passed every check in ``_check`` (against ``releases``)."""
    vocab = sources.vocabulary.model
    reviewed = releases[vocab.reviewed_schema]
    scale = tuple(vocab.classification.scale)
    rank = {c: i for i, c in enumerate(scale)}
    partners = {p.id: _partner(p, rank) for p in sources.partners.model.partners}
    agreements: dict[str, CompiledAgreement] = {}
    covers: dict[str, CompiledCover] = {}
    covers_for: dict[tuple[str, str], tuple[CompiledCover, ...]] = {}
    areas = compile_areas(sources.areas.model if sources.areas is not None else None)
    fits = {alert_type: compile_fits(f) for alert_type, f in fields.items()}
    # By agreement id, then rule, never by file name: several agreements in force apply their rules in this order
    # (a decision lists them so), and the version sorts them so too; renaming a file changes neither.
    for doc in sorted(sources.agreements, key=lambda d: d.model.id):
        agreement = agreements[doc.model.id] = _agreement(doc.model, sources, partners)
        for cover in sorted(doc.model.covers, key=lambda c: c.rule):
            compiled = covers[cover.rule] = _cover(cover, agreement, fields[cover.alert_type], vocab, areas,
                                                    reviewed.get(cover.alert_type, ()), fits[cover.alert_type])
            for pid in agreement.partner_ids:
                covers_for[(pid, cover.alert_type)] = (*covers_for.get((pid, cover.alert_type), ()), compiled)
    return PolicySet(
        version=policy_version(sources, schema_fingerprint, reviewed, fields),
        root=sources.root,
        home_country=vocab.home.country,
        scale=scale,
        class_rank=rank,
        caveat_effects={k: t.effect for k, t in vocab.caveats.items()},
        handling_effects={k: t.effect for k, t in vocab.handling_codes.items()},
        notes={
            **{f"caveat.{k}": t.description for k, t in vocab.caveats.items()},
            **{f"handling.{k}": t.description for k, t in vocab.handling_codes.items()},
        },
        reliability_rank={g: i for i, g in enumerate(vocab.grading.reliability)},
        credibility_rank={g: i for i, g in enumerate(vocab.grading.credibility)},
        known_names=frozenset({vocab.home.country, *(n for p in partners.values() for n in p.names)}),
        known_countries=frozenset({vocab.home.country, *(p.country for p in partners.values())}),
        alert_types=frozenset(fields),
        partners=partners,
        agreements=agreements,
        covers=covers,
        covers_for=covers_for,
        partners_with_agreements=frozenset(pid for a in agreements.values() for pid in a.partner_ids),
        owner_fields={t: tuple((path, tuple(path.split("."))) for path in dict.fromkeys(paths))
                      for t, paths in vocab.owners.fields.items() if paths},
        list_keepers={t: (lists.field, tuple(lists.field.split(".")), dict(lists.keepers))
                      for t, lists in vocab.owners.lists.items()},
        owned_types=frozenset(t for t, paths in vocab.owners.fields.items() if paths) | frozenset(vocab.owners.lists),
        open_keepers=frozenset(vocab.owners.open_keepers),
        view_settings=vocab.view,
        envelope=vocab.envelope,
        sources=sources,
        areas=areas,
    )
