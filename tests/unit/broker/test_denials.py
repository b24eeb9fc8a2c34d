"""Kafka's authorizer log made DENIAL entries: every line that says a request was denied, read by the fixed
parts Kafka writes around the names."""

from __future__ import annotations

import hashlib
from importlib import resources

import pytest

from broker.access import parties, plan
from broker.audit.denials import NAME_CHARS, CutLine, concerns, denial, log_lines
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
    rule a default deny or a matching DENY ACL)."""
    entry = denial(FORGED)
    assert entry is not None
    assert {k: entry[k] for k in ("at", "principal", "operation", "resource", "pattern", "host", "request")} == {
        "at": "2026-12-01T11:50:06.031000Z", "principal": "User:partner-USA", "operation": "READ",
        "resource": "Topic:puente.feed.COL", "pattern": "LITERAL", "host": "10.9.9.9", "request": "Fetch"}
    assert "unparsed" not in entry
    acl = FORGED.replace("DefaultDeny", "MatchingAcl(acl=StandardAcl(resourceType=TOPIC, resourceName=puente.feed.COL"
                         ", patternType=LITERAL, principal=User:partner-USA, host=*, operation=READ, "
                         "permissionType=DENY))")
    assert denial(acl) is not None and "unparsed" not in denial(acl)  # type: ignore[operator]


@pytest.mark.parametrize("line", BAD_LINES)
def test_a_denial_line_not_whole_is_an_unparsed_entry_never_passed_over(line: str) -> None:
    """A line that says a request was denied but is not one whole message as Kafka writes it (anything missing,
    added or unreadable) is still an entry: marked unparsed, with `?` for what is not read for sure, the line's
    length and hash, and the principal and operation when they can be read; it concerns the deployment."""
    entry = denial(line)
    assert entry is not None and entry["unparsed"] is True and entry["kind"] == "DENIAL"
    assert entry["line_sha256"] == hashlib.sha256(line.encode()).hexdigest()
    assert entry["line_length"] == len(line.encode())
    assert (entry["resource"], entry["request"], entry["host"]) == ("?", "?", "?")
    assert entry["principal"] in ("User:partner-USA", "?") and entry["operation"] in ("READ", "?")
    assert concerns(entry, "puente", PARTIES)
    assert "puente.feed.COL" not in repr(entry)  # none of the line's text beyond who and what


def test_a_line_that_says_no_denial_is_no_entry() -> None:
    """Only a line that says a request was denied is an entry: an allowed request (logged at DEBUG), a blank line or
    another message is none."""
    for line in (FORGED.replace("is Denied", "is Allowed"), "", "[2026-12-01T11:50:06.031Z] WARN something else"):
        assert denial(line) is None, line


def _allowed(group: str) -> str:
    """The line Kafka writes at DEBUG when partner-COL is allowed a group it named ``group``, message as it is."""
    return ("[2026-12-01T11:50:05.000Z] DEBUG Principal = User:partner-COL is Allowed operation = DESCRIBE from host "
            f"= 10.1.1.1 on resource = Group:LITERAL:{group} for request = FindCoordinator with resourceRefCount = 1 "
            "based on rule MatchingAcl(acl=StandardAcl(resourceType=GROUP, resourceName=puente-partner-COL, "
            "patternType=PREFIXED, principal=User:partner-COL, host=*, operation=ALL, permissionType=ALLOW))")


FAKE_REFUSAL = ("x is Denied operation = WRITE from host = /6.6.6.6 on resource = Topic:LITERAL:puente.alerts.ESP "
                "for request = Produce" + TAIL + " ")


@pytest.mark.parametrize("name", [FAKE_REFUSAL, FAKE_REFUSAL.upper(), "x IS DENIED OPERATION = WRITE",
                                  "x is Denied Operation = WRITE", "x is Denied operation = "])
def test_an_allowed_request_whose_name_says_denied_is_no_entry(name: str) -> None:
    """With the authorizer logger at DEBUG Kafka logs allowed requests too, and their resource names are the
    client's: a name holding `is Denied operation =` (in any case) and a forged rest of a line is part of an allowed
    request, whose first verdict is Allowed, and gives no entry, whole, unparsed or cut short."""
    for line in (_allowed(name), _allowed(name).upper(), _allowed(name).replace("2026", "x", 1),
                 _allowed(name).removeprefix("[")):
        assert denial(line) is None, line
        assert denial(CutLine(line[:200], 300_000, "ab" * 32)) is None, line


def test_a_denial_whose_name_says_allowed_is_still_that_denial() -> None:
    """A refused request's name may hold `is Allowed operation =`: the line's first verdict is Denied, and the
    name is kept whole as what the principal asked for."""
    name = "x is Allowed operation = READ from host = 1.1.1.1 on resource = Group:LITERAL:y"
    entry = denial(_line(name))
    assert entry is not None and "unparsed" not in entry
    assert (entry["principal"], entry["operation"], entry["resource"]) == ("User:partner-COL", "DESCRIBE",
                                                                          "Group:" + name)
    cut = denial(CutLine(_line(name)[:150], 300_000, "ab" * 32))
    assert cut is not None and cut["unparsed"] is True and cut["principal"] == "User:partner-COL"


def test_a_denial_in_kafka_3s_case_is_an_unparsed_entry() -> None:
    """Kafka 3 writes `is Denied Operation =`: not the format read whole, but a denial all the same, kept unparsed
    with its principal and operation."""
    entry = denial(FORGED.replace("Denied operation", "Denied Operation"))
    assert entry is not None and entry["unparsed"] is True
    assert (entry["principal"], entry["operation"]) == ("User:partner-USA", "READ")


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\x1c", "\x1d", "\x1e", "\x85", "\x0b", "\x0c", "\r"])
def test_a_group_name_cannot_start_a_line_of_its_own(sep: str) -> None:
    """Kafka allows any character in a group id and the log writes it as it is: a name carrying a line break of
    any sort but LF (which the appender escapes) plus a whole forged denial yields no entry for the other
    principal, only the real refusal of the one who sent it, the forgery inside its group's name."""
    text = _line("g" + sep + FORGED + sep) + "\n"
    got = _collected(text)
    assert len(got) == 1 and got[0][:2] == ("User:partner-COL", "DESCRIBE")
    assert got[0][2] == "Group:g" + sep + FORGED + sep


def test_a_name_holding_a_fake_tail_is_that_name() -> None:
    """A group name that ends like Kafka's tail, with another request and a matching-ACL rule left open, is part of
    the name: the request recorded is the one Kafka wrote after it."""
    fake = "x for request = Metadata with resourceRefCount = 1 based on rule MatchingAcl(acl=StandardAcl(x"
    entry = denial(_line(fake))
    assert entry is not None and "unparsed" not in entry
    assert (entry["resource"], entry["request"]) == ("Group:" + fake, "FindCoordinator")


def test_a_matching_acl_whose_name_holds_the_tail_words_is_read_from_the_end() -> None:
    """The rule Kafka names last may be a DENY ACL whose name (the operator's) holds `for request =`: the tail is
    still found, from the end, and the name before it kept whole."""
    rule = ("MatchingAcl(acl=StandardAcl(resourceType=GROUP, resourceName=a for request = b, patternType=PREFIXED, "
            "principal=User:partner-COL, host=*, operation=ALL, permissionType=DENY))")
    entry = denial(_line("a for request = bc").replace("DefaultDeny", rule))
    assert entry is not None and "unparsed" not in entry
    assert (entry["resource"], entry["request"]) == ("Group:a for request = bc", "FindCoordinator")


def test_a_long_name_is_recorded_cut_with_its_length_and_hash() -> None:
    """Kafka allows group and transactional ids far past 400 characters: such a refusal is recorded, its name cut
    to its first 400 characters with the whole one's length and SHA-256, and judged by the start it keeps (one under
    Puente's prefix concerns the deployment)."""
    for name in ("g" * 30_000, "puente-subscriber:puente.receipts.COL:" + "x" * 5_000):
        entry = denial(_line(name))
        assert entry is not None and "unparsed" not in entry
        assert entry["resource"] == "Group:" + name[:NAME_CHARS]
        assert (entry["name_length"], entry["name_sha256"]) == (len(name), hashlib.sha256(name.encode()).hexdigest())
        assert entry["request"] == "FindCoordinator"
    assert concerns(denial(_line("puente." + "x" * 1_000)), "puente", frozenset())  # type: ignore[arg-type]
    assert "name_length" not in denial(_line("g" * NAME_CHARS))  # type: ignore[operator]


def test_a_principal_with_spaces_or_unprintable_characters_is_recorded() -> None:
    """A principal holding a space, a no-break space or a control character (a certificate's name, say) is read up
    to Kafka's fixed `is Denied operation =`, and a long one is cut with its length and hash."""
    for principal in ("User:partner-COL\u00a0x", "User:CN=partner COL, OU=Puente", "User:partner-COL\x1b[2K"):
        entry = denial(FORGED.replace("User:partner-USA", principal))
        assert entry is not None and "unparsed" not in entry and entry["principal"] == principal
    long = "User:" + "p" * 5_000
    entry = denial(FORGED.replace("User:partner-USA", long))
    assert entry is not None and entry["principal"] == long[:200] and entry["principal_length"] == len(long)


def test_a_line_too_long_to_hold_that_says_denied_is_an_unparsed_entry() -> None:
    """A line read only in part (``CutLine``) is recorded when its start says a request was denied, with the whole
    line's length and hash; one whose start says nothing of the sort is none."""
    cut = CutLine(_line("g" * 5_000)[:4_096], 300_000, "ab" * 32)
    entry = denial(cut)
    assert entry is not None and entry["unparsed"] is True
    assert (entry["principal"], entry["operation"], entry["at"]) == ("User:partner-COL", "DESCRIBE",
                                                                     "2026-12-01T11:50:05Z")
    assert (entry["line_length"], entry["line_sha256"]) == (300_000, "ab" * 32)
    assert denial(CutLine("x" * 4_096, 300_000, "cd" * 32)) is None


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
