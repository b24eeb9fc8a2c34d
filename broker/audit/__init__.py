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
    ingress_of,
    last_ingress,
    listed,
    record_hash,
    resume_offset,
    seal,
)
from broker.audit.verify import (
    ChainState,
    EndCheck,
    Finding,
    PartitionReport,
    PartitionWalk,
    Retention,
    VerifyFn,
    falls_short,
    head_problem,
    verify_partition,
)

__all__ = [
    "BLOCK_ALERTS",
    "GENESIS",
    "ChainHead",
    "ChainState",
    "ChainWriter",
    "EndCheck",
    "Finding",
    "PartitionReport",
    "PartitionWalk",
    "Retention",
    "VerifyFn",
    "canonical",
    "checkpoint_payload",
    "falls_short",
    "flatten",
    "head_problem",
    "ingress_of",
    "last_ingress",
    "listed",
    "record_hash",
    "resume_offset",
    "seal",
    "verify_partition",
]
