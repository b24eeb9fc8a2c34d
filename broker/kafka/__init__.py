"""Kafka I/O: the only package that imports aiokafka or confluent-kafka (an import-linter contract says so).

    connection  KafkaConnection: bootstrap, TLS and SASL of one party, from a client properties file
    clients     producers, consumers and readers made from a connection; started and stopped; errors translated
    admin       confluent-kafka's AdminClient, each result checked
    topics      the topic plan and ``topics apply``
    batches     one transaction's records, one record batch per partition
    io          readers over partitions: ranges, many partitions at once, chain heads, settled transactions
    quotas      each user's client quotas: read and set (Kafka's AlterClientQuotas, which no client library has)

Services use the names below and never a Kafka client library directly: one place to add
security, one place that turns a client's failure into Puente's error tree.
"""

from aiokafka import AIOKafkaConsumer as Consumer
from aiokafka import AIOKafkaProducer as Producer
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError as ClientError
from aiokafka.errors import NoOffsetForPartitionError as NoCommittedOffset
from aiokafka.errors import OffsetOutOfRangeError as OffsetOutOfRange
from aiokafka.errors import ProducerFenced
from aiokafka.structs import OffsetAndMetadata

from broker.kafka.admin import Admin, group_offsets, instance_holder
from broker.kafka.batches import PartitionBatches
from broker.kafka.clients import (
    FetchView,
    Sends,
    admin_session,
    broken_for_good,
    consumer,
    fetch_view,
    hold_rebalance,
    membership,
    producer,
    reader,
    running,
    set_fetching,
    start,
    stop_client,
    transaction,
    translate,
    tune_transactions,
    wake_group_waiters,
)
from broker.kafka.connection import KafkaConnection, connection, connection_from_properties
from broker.kafka.io import (
    Stall,
    StillOpen,
    chain_records,
    committed_with_metadata,
    feed_counts_now,
    last_before,
    last_chain_record,
    last_records,
    offsets_visible,
    partition_count_now,
    partitions_of,
    read_many,
    read_range,
    record,
    record_at,
    settle,
    wait_settled,
)
from broker.kafka.quotas import DEFAULT_USER, set_user_quotas, user_quotas
from broker.kafka.topics import TopicResult, apply_topics, check_audit_retention, plan_topics, topic_settings

__all__ = [
    "DEFAULT_USER",
    "Admin",
    "ClientError",
    "Consumer",
    "ConsumerRebalanceListener",
    "FetchView",
    "KafkaConnection",
    "NoCommittedOffset",
    "OffsetAndMetadata",
    "OffsetOutOfRange",
    "PartitionBatches",
    "Producer",
    "ProducerFenced",
    "Sends",
    "Stall",
    "StillOpen",
    "TopicPartition",
    "TopicResult",
    "admin_session",
    "apply_topics",
    "broken_for_good",
    "chain_records",
    "check_audit_retention",
    "committed_with_metadata",
    "connection",
    "connection_from_properties",
    "consumer",
    "feed_counts_now",
    "fetch_view",
    "group_offsets",
    "hold_rebalance",
    "instance_holder",
    "last_before",
    "last_chain_record",
    "last_records",
    "membership",
    "offsets_visible",
    "partition_count_now",
    "partitions_of",
    "plan_topics",
    "producer",
    "read_many",
    "read_range",
    "reader",
    "record",
    "record_at",
    "running",
    "set_fetching",
    "set_user_quotas",
    "settle",
    "start",
    "stop_client",
    "topic_settings",
    "transaction",
    "translate",
    "tune_transactions",
    "user_quotas",
    "wait_settled",
    "wake_group_waiters",
]
