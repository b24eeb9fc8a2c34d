"""The audit trail: hash-chained, signed records of every decision and every receipt.

Pure pieces (``chain``, ``verify``, ``records``) build and check records; ``store``
reads and writes them on Kafka.
"""

from broker.audit.chain import (
    BLOCK_ALERTS,
    GENESIS,
    ChainHead,
    ChainWriter,
    canonical,
    checkpoint_payload,
    flatten,
    record_hash,
)
from broker.audit.verify import Finding, PartitionReport, verify_partition

__all__ = [
    "BLOCK_ALERTS",
    "GENESIS",
    "ChainHead",
    "ChainWriter",
    "Finding",
    "PartitionReport",
    "canonical",
    "checkpoint_payload",
    "flatten",
    "record_hash",
    "verify_partition",
]
