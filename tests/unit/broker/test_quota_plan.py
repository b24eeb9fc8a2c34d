"""`broker.access.quota_plan` and `quota_changes`: every agency, partner, the auditor and the console have the plan's
client quotas and no other; the broker and the admin are not throttled. The plan is an allow-list for Puente's
parties: a hand-set quota on one of them (another value, another key), any quota on the broker's or a former
party's login, is drift to set or remove; other users' quotas are left alone and listed."""

from __future__ import annotations

import pytest

from broker.access import (
    ADMIN,
    AUDITOR,
    BROKER,
    CONSOLE,
    MiB,
    Quota,
    QuotaChanges,
    parties,
    quota_changes,
    quota_plan,
)
from policies import PolicySet, load_policy_set

AGENCIES = ("PN", "SNM")


@pytest.fixture(scope="module")
def policy() -> PolicySet:
    return load_policy_set()


@pytest.fixture(scope="module")
def wanted(policy: PolicySet) -> dict[str, dict[str, float]]:
    return quota_plan(policy, AGENCIES, logins=())


def _changes(policy: PolicySet, current: dict[str, dict[str, float]]) -> QuotaChanges:
    return quota_changes(current, quota_plan(policy, AGENCIES, logins=()), parties(policy, AGENCIES))


def test_every_party_but_the_broker_and_the_admin_is_bounded(policy: PolicySet,
                                                             wanted: dict[str, dict[str, float]]) -> None:
    """Each agency, each partner partners.yaml lists, the auditor and the console; never the broker nor the admin."""
    assert set(wanted) == {"agency-PN", "agency-SNM", AUDITOR, CONSOLE,
                           *(f"partner-{p}" for p in policy.partners)}
    assert BROKER not in wanted and ADMIN not in wanted
    assert set(wanted) == set(parties(policy, AGENCIES)) - {BROKER}


def test_each_role_gets_its_own_rates(wanted: dict[str, dict[str, float]]) -> None:
    """Agencies 4 MiB/s in, partners 1 MiB/s (receipts are small), auditor and console 1 MiB/s; reads 16 MiB/s for
    agencies and partners, 32 MiB/s for the auditor and the console; half a handler thread, a whole one for readers."""
    agency = {"producer_byte_rate": 4 * MiB, "consumer_byte_rate": 16 * MiB, "request_percentage": 50}
    partner = {"producer_byte_rate": 1 * MiB, "consumer_byte_rate": 16 * MiB, "request_percentage": 50}
    reader = {"producer_byte_rate": 1 * MiB, "consumer_byte_rate": 32 * MiB, "request_percentage": 100}
    assert wanted["agency-SNM"] == agency and wanted["partner-COL"] == partner
    assert wanted[AUDITOR] == reader and wanted[CONSOLE] == reader
    assert wanted["partner-COL"]["producer_byte_rate"] == 1_048_576


def test_a_cluster_as_planned_is_no_change(policy: PolicySet, wanted: dict[str, dict[str, float]]) -> None:
    """The plan's own quotas read back from the cluster: nothing to set or remove."""
    changes = _changes(policy, {user: dict(values) for user, values in wanted.items()})
    assert changes.empty and not changes.others and changes.requests() == {}


def test_a_cluster_without_quotas_gets_every_one(policy: PolicySet, wanted: dict[str, dict[str, float]]) -> None:
    """Nothing on the cluster: every planned quota is to set, nothing to remove."""
    changes = _changes(policy, {})
    assert {(q.principal, q.key, q.value) for q in changes.set} == {
        (user, key, value) for user, values in wanted.items() for key, value in values.items()}
    assert not changes.remove and not changes.replaced
    assert changes.requests() == wanted


def test_a_hand_set_quota_on_a_party_is_drift_set_back_or_removed(policy: PolicySet,
                                                                  wanted: dict[str, dict[str, float]]) -> None:
    """A partner's rate raised by hand is set back to the plan's; a key the plan does not name for it is removed."""
    current = {user: dict(values) for user, values in wanted.items()}
    current["partner-COL"]["producer_byte_rate"] = 100 * MiB
    current["partner-COL"]["controller_mutation_rate"] = 1000.0
    changes = _changes(policy, current)
    assert changes.set == (Quota("partner-COL", "producer_byte_rate", 1 * MiB),)
    assert changes.replaced == (Quota("partner-COL", "producer_byte_rate", 100 * MiB),)
    assert changes.remove == (Quota("partner-COL", "controller_mutation_rate", 1000.0),)
    assert changes.requests() == {"partner-COL": {"producer_byte_rate": 1 * MiB, "controller_mutation_rate": None}}


@pytest.mark.parametrize("user", [BROKER, "partner-GONE", "agency-OLD"])
def test_any_quota_on_the_broker_or_a_deleted_former_party_is_removed(
        policy: PolicySet, wanted: dict[str, dict[str, float]], user: str) -> None:
    """The broker is not throttled, and a former party whose login is deleted keeps nothing: each quota goes."""
    current = {**{u: dict(v) for u, v in wanted.items()}, user: {"producer_byte_rate": 1.0, "request_percentage": 5.0}}
    changes = _changes(policy, current)
    assert not changes.set and not changes.others
    assert changes.remove == (Quota(user, "producer_byte_rate", 1.0), Quota(user, "request_percentage", 5.0))
    assert changes.requests() == {user: {"producer_byte_rate": None, "request_percentage": None}}


@pytest.mark.parametrize("client", ["c1", "<default>"])
def test_a_quota_on_a_partys_login_for_a_client_id_is_removed(policy: PolicySet, wanted: dict[str, dict[str, float]],
                                                               client: str) -> None:
    """Kafka takes a user's quota for a client id (or its default client id) before the user's own: one on a party's
    login would replace the plan's. The plan names none, so each is removed; another user's is left and listed."""
    key, other = f"partner-COL/client-id={client}", f"someone/client-id={client}"
    current = {**{u: dict(v) for u, v in wanted.items()}, key: {"producer_byte_rate": 1e12}, other: {"x": 1.0}}
    changes = _changes(policy, current)
    assert not changes.set and changes.remove == (Quota(key, "producer_byte_rate", 1e12),)
    assert changes.others == (Quota(other, "x", 1.0),)
    assert changes.requests() == {key: {"producer_byte_rate": None}}


def test_other_users_quotas_are_left_and_listed(policy: PolicySet, wanted: dict[str, dict[str, float]]) -> None:
    """The admin's, another application's and the default for every user are not Puente's: listed, never changed."""
    foreign = {ADMIN: {"request_percentage": 200.0}, "billing": {"producer_byte_rate": 5.0},
               "<default>": {"consumer_byte_rate": 10 * MiB}, "Partner-COL": {"producer_byte_rate": 9.0}}
    changes = _changes(policy, {**{u: dict(v) for u, v in wanted.items()}, **foreign})
    assert changes.empty and changes.requests() == {}
    assert set(changes.others) == {Quota(user, key, value) for user, values in foreign.items()
                                   for key, value in values.items()}


def test_a_quota_reads_as_kafkas_tools_write_it() -> None:
    """Whole numbers without a fraction (what an operator would type to kafka-configs), others as they are."""
    assert str(Quota("partner-COL", "producer_byte_rate", 1048576.0)) == "User:partner-COL producer_byte_rate=1048576"
    assert str(Quota("auditor", "request_percentage", 12.5)) == "User:auditor request_percentage=12.5"
    assert str(Quota("x", "k", float("inf"))) == "User:x k=inf"


FORMER = {"producer_byte_rate": 1024.0, "consumer_byte_rate": 1024.0, "request_percentage": 1.0}


@pytest.mark.parametrize("user", ["partner-GONE", "agency-OLD"])
def test_a_former_partys_login_that_still_exists_keeps_a_trickle(policy: PolicySet,
                                                                 wanted: dict[str, dict[str, float]],
                                                                 user: str) -> None:
    """A login the policy no longer names but the cluster still holds (`users apply` without --prune) still
    authenticates: its quotas are set to the trickle (1 KiB/s each way, 1% of a handler thread), never removed, and
    one without any gets them; only once its login is deleted are they removed (the test above)."""
    logins = [*parties(policy, AGENCIES), user, "someone-else"]
    plan = quota_plan(policy, AGENCIES, logins=logins)
    assert plan[user] == FORMER and "someone-else" not in plan and BROKER not in plan
    active = "partner-COL" if user.startswith("partner-") else "agency-PN"  # the quota it had as a party
    held = {**{u: dict(v) for u, v in wanted.items()}, user: dict(wanted[active])}
    changes = quota_changes(held, plan, parties(policy, AGENCIES))
    assert not changes.remove and changes.requests() == {user: FORMER}
    bare = quota_changes({u: dict(v) for u, v in wanted.items()}, plan, parties(policy, AGENCIES))
    assert bare.requests() == {user: FORMER}
