"""Puente's policy layer: sharing agreements as data, a pure fail-closed decision core, partner views.

The broker calls three things::

    policy_set = load_policy_set()                      # once, at start; PolicyError if invalid
    decision = decide(alert, partner_id, policy_set, now)   # pure; a value, never an exception
    view = build_view(alert, decision, policy_set, key)     # only for deliveries

``decide`` reads the decoded alert (the dict the alert codec returns);
``build_view`` returns the partner's redacted copy, valid against the
alert schema: an allow-list, holding only what the agreement rule names and
what the policy-wide envelope rule (vocabulary.yaml) keeps, every other field
emptied. Every decision carries ``policy_set.version``.

Adapters ask whether a position agrees with a label through the same outlines
the area conditions use: ``load_areas().contains("DARIEN", 8.4, -77.9)``
(True or False; None when no outline of that code is known).
"""

from policies._alerts import alert_value, read_alert_json
from policies._areas import Areas
from policies._compile import CompiledAgreement, PartnerInfo, PolicySet, subscriber_instances
from policies._decide import decide, decide_many
from policies._decision import Decision, Outcome, Redaction
from policies._explain import DEMO_KEY, explain
from policies._fields import within
from policies._lint import PSEUDONYM_KEY, lint
from policies._load import load_areas, load_policy_set, schema_fields
from policies._model import (
    BROKER_OWNER,
    DEFAULT_INSTANCE,
    FEED_INFO_LABEL,
    HPKE_INFO_MAX,
    MAX_INSTANCES,
    MAX_PARTNER_ID_BYTES,
    RESERVED_OWNERS,
)
from policies._notice import recall_notice
from policies._source import DEFAULT_DIR
from policies._suite import SuiteReport, run_suites
from policies._view import REFERENCE_PREFIX, alert_reference, build_view, pseudonym
from policies._yamlio import unseen_character, yaml_problem

__all__ = [
    "BROKER_OWNER",
    "DEFAULT_DIR",
    "DEFAULT_INSTANCE",
    "DEMO_KEY",
    "FEED_INFO_LABEL",
    "HPKE_INFO_MAX",
    "MAX_INSTANCES",
    "MAX_PARTNER_ID_BYTES",
    "PSEUDONYM_KEY",
    "REFERENCE_PREFIX",
    "RESERVED_OWNERS",
    "Areas",
    "CompiledAgreement",
    "Decision",
    "Outcome",
    "PartnerInfo",
    "PolicySet",
    "Redaction",
    "SuiteReport",
    "alert_reference",
    "alert_value",
    "build_view",
    "decide",
    "decide_many",
    "explain",
    "lint",
    "load_areas",
    "load_policy_set",
    "pseudonym",
    "read_alert_json",
    "recall_notice",
    "run_suites",
    "schema_fields",
    "subscriber_instances",
    "unseen_character",
    "within",
    "yaml_problem",
]
