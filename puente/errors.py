"""Puente's one error tree.

    PuenteError                      root; ``retriable`` says whether trying again may help
    ├── ConfigError                  settings or policy files that do not validate
    │   └── PolicyError              a policy file or policy set is invalid
    ├── KafkaSetupError              the local Kafka could not be fetched, started or reached
    ├── AuditChainError              an audit chain its owner would extend ends with what it did not write
    ├── UnreadableFeedError          a subscriber met a feed record it cannot open, and stopped before it
    ├── SchemaError                  an Avro schema is malformed or incompatible
    ├── AdapterError                 an agency's record or file that cannot become an alert;
    │                                ``reason`` is a short code for the dead letter (e.g. invalid-date)
    ├── CodecError                   bytes or values that cannot be encoded or decoded
    │   ├── NotSingleObjectError     bytes lack the single-object marker
    │   ├── UnknownSchemaError       the writer fingerprint is not a known schema
    │   ├── RecordMismatchError      a value does not fit its schema
    │   └── CorruptRecordError       the body does not decode under its writer schema
    └── CryptoError                  keys, signatures, encryption
        ├── KeyMaterialError         a key is missing, unknown, malformed or of the wrong kind
        ├── SignatureError           a signature or MAC does not verify (forged or altered)
        ├── DecryptionError          a record does not decrypt: wrong key or tampered bytes
        └── OriginError              an ingress record does not prove the agency it names

Third-party errors are wrapped at the boundary (``raise X(...) from exc``).
Messages never carry payload bytes or secret material, only what was wrong.
"""

from __future__ import annotations


class PuenteError(Exception):
    """Root of every error Puente raises on purpose."""

    retriable: bool = False


class ConfigError(PuenteError):
    """Settings or data files that do not validate."""


class PolicyError(ConfigError):
    """A policy file or the policy set as a whole is invalid."""


class KafkaSetupError(PuenteError):
    """The local Kafka could not be fetched, started, stopped or reached."""

    retriable = True


class AuditChainError(PuenteError):
    """An audit chain ends with a record its owner did not sign; the owner will not extend it."""


class UnreadableFeedError(PuenteError):
    """A partner's subscriber met a feed record it cannot open; it stopped without committing past it."""


class SchemaError(PuenteError):
    """An Avro schema is malformed, or two versions are incompatible."""


class AdapterError(PuenteError):
    """An agency's record (or a whole file) that cannot become an alert.

    ``reason`` is a short, stable code (``invalid-date``, ``out-of-region``, ``unknown-code``...)
    that the dead letter carries in a header, so that records can be counted and routed by
    kind; the message says, in words an agency's staff can act on, what was wrong and where.
    """

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


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
