"""Rules a review found kept silently, or listed as not Puente's, for Puente's own parties: each is drift that
`acls plan` reports and `acls apply` removes (tests/unit/broker/test_access.py, tests/unit/commands)."""

from __future__ import annotations

from broker.access import Acl

STRAYS = [
    Acl("partner-COL", "TOPIC", "*", "LITERAL", "READ"),
    Acl("partner-COL", "CLUSTER", "kafka-cluster", "LITERAL", "DESCRIBE"),
    Acl("partner-COL", "GROUP", "*", "LITERAL", "READ"),
    Acl("partner-COL", "TOPIC", "puente", "PREFIXED", "READ"),
    Acl("partner-COL", "TRANSACTIONAL_ID", "", "PREFIXED", "WRITE"),
    Acl("agency-PN", "TOPIC", "", "PREFIXED", "WRITE"),
    Acl("partner-COL", "TOPIC", "puente.feed.COL", "LITERAL", "ALL"),
]
