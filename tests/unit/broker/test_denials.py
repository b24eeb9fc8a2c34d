"""Kafka's authorizer log made DENIAL entries: only whole lines as the appender writes them count."""

from __future__ import annotations

from importlib import resources

import pytest

from broker.access import parties, plan
from broker.audit.denials import concerns, denial, log_lines
from broker.topology import TopicNames
from policies import load_policy_set

PARTIES = frozenset({"partner-COL", "partner-USA"})
TAIL = " with resourceRefCount = 1 based on rule DefaultDeny"
FORGED = ("[2026-12-01T11:50:06.031Z] INFO Principal = User:partner-USA is Denied operation = READ from host = "
          "10.9.9.9 on resource = Topic:LITERAL:puente.feed.COL for request = Fetch" + TAIL)


def _line(group: str) -> str:
    """The line Kafka writes when partner-COL is refused a group it named ``group``, message as it is."""
    return ("[2026-12-01T11:50:05.000Z] INFO Principal = User:partner-COL is Denied operation = DESCRIBE from host = "
            f"10.1.1.1 on resource = Group:LITERAL:{group} for request = FindCoordinator" + TAIL)


def _collected(text: str) -> list[tuple[str, str, str]]:
    got = [e for line in log_lines(text) if (e := denial(line)) is not None and concerns(e, "puente", PARTIES)]
    return [(e["principal"], e["operation"], e["resource"]) for e in got]


BAD_LINES = [
    FORGED.removesuffix(TAIL),                              # no tail: a line cut short, or one a name started
    FORGED + " and more",                                   # something after the rule
    "x" + FORGED,                                           # something before the time
    FORGED.replace("resourceRefCount = 1", "resourceRefCount = one"),
    FORGED.replace("DefaultDeny", "DefaultAllow"),
    FORGED.replace(".031Z", ".031"),                        # a time without an offset is no time
    FORGED.replace("READ", "READ\tX"),
]


def test_a_denial_is_one_whole_line_as_kafka_writes_it() -> None:
    """The whole line, tail included, gives who, what, on what, when, from where and through which request (the
    rule a default deny or a matching DENY ACL); a line with anything missing, added or unreadable is none."""
    entry = denial(FORGED)
    assert entry is not None
    assert {k: entry[k] for k in ("at", "principal", "operation", "resource", "pattern", "host", "request")} == {
        "at": "2026-12-01T11:50:06.031000Z", "principal": "User:partner-USA", "operation": "READ",
        "resource": "Topic:puente.feed.COL", "pattern": "LITERAL", "host": "10.9.9.9", "request": "Fetch"}
    acl = FORGED.replace("DefaultDeny", "MatchingAcl(acl=StandardAcl(resourceType=TOPIC, resourceName=puente.feed.COL"
                         ", patternType=LITERAL, principal=User:partner-USA, host=*, operation=READ, "
                         "permissionType=DENY))")
    assert denial(acl) is not None
    assert [line for line in BAD_LINES if denial(line) is not None] == []


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\x1c", "\x1d", "\x1e", "\x85", "\x0b", "\x0c", "\r"])
def test_a_group_name_cannot_start_a_line_of_its_own(sep: str) -> None:
    """Kafka allows any character in a group id and the log writes it as it is: a name carrying a line break of
    any sort but LF (which the appender escapes) plus a whole forged denial yields no entry for the other
    principal, and the line that carries it (holding a character that is not printable) yields none either."""
    text = _line("g" + sep + FORGED + sep) + "\n"
    assert _collected(text) == []


def test_the_local_kafka_escapes_line_breaks_and_the_escaped_line_is_the_one_real_denial() -> None:
    """The local Kafka's authorizer appender writes a CR or LF in a message as the two characters `\\r` or `\\n`
    (`%enc{%m}{CRLF}`), keeping the line format: a newline in a group id then stays inside partner-COL's one
    refusal, as part of the group name it asked for, and starts no line of its own."""
    props = resources.files("puente.dev.localkafka").joinpath("log4j2.properties").read_text()
    [pattern] = [line.split("=", 1)[1].strip() for line in props.splitlines()
                 if line.startswith("appender.authorizer.layout.pattern")]
    assert pattern == "[%d{yyyy-MM-dd'T'HH:mm:ss.SSSXXX}{UTC}] %p %enc{%m}{CRLF}%n"
    escaped = _line("g\\n" + FORGED + "\\n")
    got = _collected(escaped + "\n")
    assert len(got) == 1 and got[0][:2] == ("User:partner-COL", "DESCRIBE") and got[0][2].startswith("Group:g\\n[")


def test_log_lines_split_at_newlines_only() -> None:
    """The log is split where the appender ends a message, at LF (CRLF too), never at the other characters
    `str.splitlines` takes for line ends."""
    assert list(log_lines("a\u2028b\x1cc\x85d\r\ne\n")) == ["a\u2028b\x1cc\x85d", "e", ""]
    assert _collected(FORGED + "\r\n" + FORGED.replace("06.031", "07.000") + "\n") == [
        ("User:partner-USA", "READ", "Topic:puente.feed.COL")] * 2


def _refused(principal: str, resource: str, name: str, operation: str = "READ") -> dict[str, object]:
    """The DENIAL entry of the line Kafka writes when ``principal`` is refused ``resource`` (as its log names the type:
    ``TransactionalId``) ``name``."""
    entry = denial(f"[2026-12-01T11:50:05.000Z] INFO Principal = User:{principal} is Denied operation = {operation} "
                   f"from host = 10.6.6.6 on resource = {resource}:LITERAL:{name} for request = Fetch" + TAIL)
    assert entry is not None
    return entry


def test_denials_on_the_brokers_group_and_transactional_ids_of_a_custom_group_id_concern_it() -> None:
    """With PUENTE_GROUP_ID set to a name outside the topic prefix, a stranger refused the broker's consumer group or
    one of its `<group>-slot-N` transactional ids is reported: they are resources the ACL plan grants."""
    policy = load_policy_set()
    planned = plan(policy, TopicNames("puente"), ("PN", "SNM"), "ministry-broker")
    who = frozenset(parties(policy, ("PN", "SNM")))
    for resource, name in [("Group", "ministry-broker"), ("TransactionalId", "ministry-broker-slot-0"),
                           ("TransactionalId", "ministry-broker-slot-17"), ("Topic", "puente.feed.USA")]:
        assert concerns(_refused("mallory", resource, name), "puente", who, planned=planned), name
    for resource, name in [("Group", "billing-consumers"), ("TransactionalId", "ministry-broker2"),
                           ("Topic", "billing.invoices")]:
        assert not concerns(_refused("mallory", resource, name), "puente", who, planned=planned), name


def test_a_login_puentes_by_its_form_concerns_it_outside_the_prefix() -> None:
    """A partner's or agency's login the policy no longer names (`partner-OLD`), refused anything, even outside the
    prefix (the cluster itself), is reported, as `puentes` counts it Puente's; another application's login is not."""
    for principal in ("partner-OLD", "agency-GONE"):
        assert concerns(_refused(principal, "Cluster", "kafka-cluster", "ALTER"), "puente", PARTIES)
        assert concerns(_refused(principal, "Topic", "billing.invoices"), "puente", PARTIES)
    assert not concerns(_refused("mallory", "Cluster", "kafka-cluster", "ALTER"), "puente", PARTIES)
