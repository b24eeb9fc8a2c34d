"""Puente's wire contract, defined once: Kafka header names, the record as read, and time formats.

Every producer and reader of Puente's topics (adapters, broker, subscribers, auditors) names its
headers from here, so a header cannot drift between the writer and the reader. Nothing here
imports the rest of Puente: this module sits at the bottom of the layers with ``puente.errors``.

Headers
    Ingress records (written by an agency's adapter, proved by its MAC):
        ``AGENCY``, ``KEY_ID``, ``ALERT_ID``, ``PUBLISHED`` (Unix ms, ASCII digits), ``MAC``
    Feed records (written by the broker, read by the partner's subscriber):
        ``ALERT_ID``, ``SCHEMA`` (the view's schema fingerprint, hex), ``POLICY``, ``DECISION``, ``AGREEMENT``
    Dead letters (written by the broker and the adapters; never the payload's content in a header):
        ``DLQ_REASON`` (a short code), ``DLQ_DETAIL`` (words, at most ``DLQ_DETAIL_MAX`` characters),
        ``DLQ_SOURCE`` (``topic:partition:offset``, or ``adapter:<name>:<file>:<line>``), ``DLQ_AT``;
        the adapters add ``DLQ_ADAPTER``, ``AGENCY``, ``DLQ_FILE``, ``DLQ_LINE``, ``DLQ_RECORD``; the broker
        adds ``DLQ_CUT`` (the original sizes and the value's SHA-256) to a record too large to keep whole.

Alert ids are ``AGENCY:reference``. An agency relaying another country's units (COMBIFRON for Colombia's) has
each unit number its alerts in its own series, ``AGENCY:UNIT-...`` (``series_unit``): the adapter writes them so,
and the broker and the officer's commands hold every version to it.

Times on the wire and in the audit are UTC ISO 8601 with a ``Z`` (``iso_utc``). Times typed by a
person (``--since``, ``--at``) are read by ``parse_time``: ISO 8601, and without an offset they
are UTC; a date alone is its midnight UTC. The end of a range (``--until``, the console's ``until``) is read by
``parse_until``: a date alone there is through the end of that day, so ``until=2026-12-31`` takes the 31st whole.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

AGENCY = "puente-agency"
KEY_ID = "puente-key-id"
ALERT_ID = "puente-alert-id"
PUBLISHED = "puente-published"
MAC = "puente-mac"

SCHEMA = "puente-schema"
POLICY = "puente-policy"
DECISION = "puente-decision"
AGREEMENT = "puente-agreement"

DLQ_REASON = "puente-dlq-reason"
DLQ_DETAIL = "puente-dlq-detail"
DLQ_SOURCE = "puente-dlq-source"
DLQ_AT = "puente-dlq-at"
DLQ_ADAPTER = "puente-dlq-adapter"
DLQ_FILE = "puente-dlq-file"
DLQ_LINE = "puente-dlq-line"
DLQ_RECORD = "puente-dlq-record"
DLQ_CUT = "puente-dlq-cut"
DLQ_DETAIL_MAX = 500

Headers = tuple[tuple[str, bytes], ...]


class Unreadable(NamedTuple):
    """A fetched record batch the Kafka client could not read (``broker.kafka.unreadable``): what failed, and the
    batch's first and last offsets (a record standing for it is at ``last``)."""

    what: str
    first: int
    last: int
    start: int | None = None
    """Where the reader's position stood inside the batch, past ``first`` (the records before it deleted, or read
    past, since the batch was written), or None: at its first record or before."""

    def __str__(self) -> str:
        return f"{self.what}: records {self.first}-{self.last}"

    @property
    def read_from(self) -> int:
        """The batch's first record this reader was to read: ``start``, else ``first``."""
        return self.first if self.start is None else max(self.first, self.start)

    @property
    def records(self) -> int:
        """How many of the batch's offsets this reader answers for, ``read_from`` to ``last``: the ingress records
        the one record standing for the batch is counted as (``broker.metrics``), so that the offsets a slot
        commits are its inputs and skipped records, however many records a batch held."""
        return self.last - self.read_from + 1


class Record(NamedTuple):
    """One record as read: where it was, its key, value and headers. (A tuple: cheap to build per record.)"""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers
    timestamp_ms: int
    append_time: bool | None = None
    """Whether ``timestamp_ms`` is Kafka's append time (LogAppendTime), not its producer's; None for a record
    not read from Kafka (``broker.kafka.io.record`` always says)."""
    unreadable: Unreadable | None = None
    """For a record standing for a fetched batch the Kafka client could not read (``broker.kafka.unreadable``):
    what failed and the batch's offsets; its key and value are none of the batch's, and it has no headers."""

    @property
    def appended_ms(self) -> int | None:
        """``timestamp_ms`` if it is Kafka's append time (a time no producer chose), else None."""
        return self.timestamp_ms if self.append_time else None

    def header(self, name: str) -> bytes | None:
        """The first value of header ``name``, or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


def series_unit(alert_id: object, agency: str, prefix: str) -> str | None:
    """The relayed unit whose own series ``alert_id`` is in: ``AGENCY:<prefix><CODE>-...`` is unit
    ``<prefix><CODE>``'s (``COMBIFRON:COL-ARC-2026-00412`` is COL-ARC's). A unit's code holds no hyphen, so an id is
    in one unit's series at most (never also COL-ARC-2026's); None for an id in none."""
    head = f"{agency}:{prefix}"
    if not isinstance(alert_id, str) or not alert_id.startswith(head):
        return None
    code, sep, _ = alert_id[len(head):].partition("-")
    return f"{prefix}{code}" if sep and code else None


def iso_utc(value: datetime) -> str:
    """``2026-11-01T10:00:00.123456Z``: a UTC time as the audit and the dead letters write it."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """A time typed by a person: ISO 8601; without an offset it is UTC, a date alone its midnight UTC.

    Raises ValueError naming the text (cut short) when it is not one.
    """
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {text[:40]!r} (e.g. 2026-11-01T10:00:00-05:00)") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


DAY_END = timedelta(days=1) - timedelta(microseconds=1)
"""From a midnight to the last instant of its day: what a date alone as the end of a range adds."""


def parse_until(text: str) -> datetime:
    """The end of a time range typed by a person, taken inclusively: as ``parse_time``, but a date alone is the last
    instant of that day (UTC), before the next midnight, not its first: ``2026-12-31`` takes the whole 31st.

    Raises ValueError as ``parse_time`` does.
    """
    value = parse_time(text)
    try:
        date.fromisoformat(text.strip())
    except ValueError:
        return value  # a time, not a date alone: the instant it names
    return value + DAY_END
