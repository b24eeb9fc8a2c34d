"""Puente's one error tree.

    PuenteError                      root; ``retriable`` says whether trying again may help
    ├── ConfigError                  settings or policy files that do not validate
    │   ├── PolicyError              a policy file or policy set is invalid
    │   └── KeyUnusable              a key the running broker needs is missing or stopped loading: configuration,
    │                                not input, so the worker stops before committing the record it could not process
    ├── KafkaSetupError              the local Kafka could not be fetched, started or reached
    ├── KafkaError                   talking to Kafka failed (made from a client's error at one boundary)
    │   ├── KafkaUnavailableError    Kafka could not be reached within the time allowed (retriable)
    │   ├── KafkaAuthError           the credentials or the TLS certificates were refused
    │   ├── KafkaAccessError         the principal is authenticated but not allowed (an ACL)
    │   └── KafkaOperationError      another failure; ``retriable`` as Kafka says
    ├── AuditChainError              an audit chain its owner would extend ends with what it did not write
    ├── UnreadableFeedError          a subscriber met a feed record it cannot open, and stopped before it
    ├── SubscriberFenced             a newer subscriber with the same partner and instance took over
    ├── StoreError                   a partner's store (its SQLite file) cannot be opened, read or written
    │   ├── StoreBusy                another process held the store's write lock too long (retriable)
    │   └── NotInStore               the store holds no alert with the id asked for
    ├── SchemaError                  an Avro schema is malformed or incompatible
    ├── AdapterError                 an agency's record or file that cannot become an alert;
    │                                ``reason`` is a short code for the dead letter (e.g. invalid-date),
    │                                ``cut`` says the file stops within the record (or before its end)
    ├── CodecError                   bytes or values that cannot be encoded or decoded
    │   ├── NotSingleObjectError     bytes lack the single-object marker
    │   ├── UnknownSchemaError       the writer fingerprint is not a known schema
    │   ├── RecordMismatchError      a value does not fit its schema
    │   ├── CorruptRecordError       the body does not decode under its writer schema
    │   └── BoundsExceededError      the body holds an array with more entries than its bound (``schemas.bounds``):
    │                                ``alert`` is the rest of its value, every such array decoded as empty
    └── CryptoError                  keys, signatures, encryption
        ├── KeyMaterialError         a key is missing, unknown, malformed or of the wrong kind
        ├── SignatureError           a signature or MAC does not verify (forged or altered)
        ├── DecryptionError          a record does not decrypt: wrong key or tampered bytes
        └── OriginError              an ingress record does not prove the agency it names

Third-party errors are wrapped at the boundary (``raise X(...) from exc``; Kafka's in
``broker.kafka.clients.translate``). Messages never carry payload bytes or secret material, only
what was wrong. Each class says which exit status a command ends with (``exit_code``):

    1  the command ran and found problems, or refused to go past one (lint findings, audit
       problems, rejected records, a chain it will not extend, a record it cannot open)
    2  usage: the command line itself is wrong (argparse's own)
    3  bad configuration or input: settings, policy, keys, files, credentials, access
    4  a dependency is unavailable: Kafka cannot be reached within the time allowed
    5  the command found no problem but could not check everything it checks (``audit verify``:
       a decision chain's end with no settled offset to check it against; ``audit recalls``: audit
       records left out as unsound)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

EXIT_PROBLEMS, EXIT_USAGE, EXIT_CONFIG, EXIT_UNAVAILABLE, EXIT_UNCHECKED = 1, 2, 3, 4, 5
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a tool stopped by Ctrl-C


class PuenteError(Exception):
    """Root of every error Puente raises on purpose.

    Its message is one line. An error about several things at once (every problem of a policy set, the last lines
    a tool printed) gives them as ``problems``, one line each, under the message (which may then be empty): the
    command line prints every error as one line, and each of these problems on a line of its own, each escaped for
    the terminal, so that a name a file or a person gave can never start a line that seems Puente's own.
    ``str(error)`` is the message and the problems, a line each.
    """

    retriable: bool = False
    exit_code: int = EXIT_CONFIG
    problems: tuple[str, ...] = ()
    heading: str = ""  # the message above the problems, when there are any

    def __init__(self, *args: object, problems: Iterable[str] = ()) -> None:
        self.problems = tuple(problems)
        if self.problems:
            self.heading = str(args[0]) if args else ""
            args = ("\n".join([self.heading, *self.problems] if self.heading else self.problems), *args[1:])
        super().__init__(*args)


class ConfigError(PuenteError):
    """Settings or data files that do not validate."""


class PolicyError(ConfigError):
    """A policy file or the policy set as a whole is invalid."""


class KeyUnusable(ConfigError):
    """A key the running broker needs is missing, or stopped loading (a mode changed, a file damaged): not the
    record's fault, so the record is neither dead-lettered nor withheld (either is committed, final, and the
    alert lost once the key is fixed); the worker stops before committing it, and it waits in ingress."""


class KafkaSetupError(PuenteError):
    """The local Kafka could not be fetched, started, stopped or reached."""

    retriable = True
    exit_code = EXIT_UNAVAILABLE


class KafkaError(PuenteError):
    """Talking to Kafka failed; made from the client's own error in ``broker.kafka.clients.translate``."""


class KafkaUnavailableError(KafkaError):
    """Kafka could not be reached within the time allowed."""

    retriable = True
    exit_code = EXIT_UNAVAILABLE


class KafkaAuthError(KafkaError):
    """Kafka refused the credentials, or the TLS handshake failed."""


class KafkaAccessError(KafkaError):
    """The principal is authenticated but an ACL does not allow what it tried."""

    resource: str = ""
    """The kind of resource Kafka refused, as its ACLs name it (TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID), when known:
    what a caller that knows where such a name comes from uses to say what to check."""


class KafkaOperationError(KafkaError):
    """Another failure reported by Kafka or its client."""


class AuditChainError(PuenteError):
    """An audit chain ends with a record its owner did not sign; the owner will not extend it."""

    exit_code = EXIT_PROBLEMS


class UnreadableFeedError(PuenteError):
    """A partner's subscriber met a feed record it cannot open; it stopped without committing past it."""

    exit_code = EXIT_PROBLEMS


class FeedGapError(PuenteError):
    """A topic no longer holds records its reader had not read (a partner's feed, or an ingress topic the
    broker reads: retention deleted them, or the topic was made anew); the reader stopped without reading on."""

    exit_code = EXIT_PROBLEMS


class SubscriberFenced(PuenteError):
    """A newer subscriber with the same partner and instance has taken over its receipts."""

    exit_code = EXIT_PROBLEMS


class StoreError(PuenteError):
    """The partner's store cannot be opened, read or written: a file to check."""


class StoreBusy(StoreError):
    """Another process held the store's write lock for longer than the store waits."""

    retriable = True


class NotInStore(StoreError):
    """The store holds no alert with the id asked for."""

    exit_code = EXIT_PROBLEMS


class SchemaError(PuenteError):
    """An Avro schema is malformed, or two versions are incompatible."""


class AdapterError(PuenteError):
    """An agency's record (or a whole file) that cannot become an alert.

    ``reason`` is a short, stable code (``invalid-date``, ``out-of-region``, ``unknown-code``...)
    that the dead letter carries in a header, so that records can be counted and routed by
    kind; the message says, in words an agency's staff can act on, what was wrong and where.

    ``cut`` is set by the reader that saw the file stop within the record (its last, without its
    line end) or before its end (a trailer missing): cut short, or still being written. Whatever the
    reason, such a file may yet grow, so a watcher reads it again rather than archive it.
    """

    def __init__(self, message: str, reason: str = "invalid", *, cut: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.cut = cut


class CodecError(PuenteError):
    """Bytes or values that cannot be encoded or decoded."""


class NotSingleObjectError(CodecError):
    """The bytes do not start with the Avro single-object marker."""


class UnknownSchemaError(CodecError):
    """The writer-schema fingerprint names no schema this process knows."""


class RecordMismatchError(CodecError):
    """A value does not fit the schema it is encoded with."""


class CorruptRecordError(CodecError):
    """The body after the header does not decode under the writer schema."""


class BoundsExceededError(CodecError):
    """The body holds an array (or map) with more entries than the bound the codec holds it to (an alert's:
    ``schemas.bounds``). Its entries were read past, checked as any value is, never built: ``alert`` is the value
    decoded with every such array empty, the paths of which are ``emptied`` (the message names the first), so that
    the record can still be judged by what it is (the broker withdraws such a later version of an alert from its
    holders) without building what it holds past the bound."""

    def __init__(self, message: str, alert: dict[str, Any], emptied: tuple[str, ...]) -> None:
        super().__init__(message)
        self.alert, self.emptied = alert, emptied


class CryptoError(PuenteError):
    """Keys, signatures and encryption. Messages never include key bytes or plaintext."""


class KeyMaterialError(CryptoError):
    """A key is missing, unknown, malformed or of the wrong kind."""


class SignatureError(CryptoError):
    """A signature or MAC does not verify: the data was forged or altered."""


class DecryptionError(CryptoError):
    """A record does not decrypt: the wrong key, or tampered bytes or headers."""


class OriginError(CryptoError):
    """An ingress record does not prove that it comes from the agency it names."""
