"""The subscriber instances partners.yaml names for each partner (its ``instances``), from the loaded policy."""

from __future__ import annotations

from policies._compile import PolicySet


def subscriber_instances(policy_set: PolicySet, partner_id: str) -> tuple[str, ...]:
    """The names ``puente subscribe --instance`` may take for ``partner_id``, as partners.yaml lists them (``[main]``
    when it names none); none for a partner it does not list. An allow-list: ``acls apply`` grants the partner's login
    the transactional id of each of these, and of no other instance."""
    for partner in policy_set.sources.partners.model.partners:
        if partner.id == partner_id:
            return tuple(partner.instances)
    return ()
