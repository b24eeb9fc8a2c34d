"""A real Apache Kafka (KRaft mode) for development, tests and the demo.

Kafka is fetched once with Maven into a cache folder outside the work tree,
then started as plain Java processes on 127.0.0.1. Two shapes exist: a single
combined broker/controller node (the default) and a three-node cluster on one
machine (replication 3, ``min.insync.replicas`` 2) for the fault tests.

The public surface is :class:`LocalKafka`; ``puente kafka up|down|status`` and
``stop-node|start-node`` are a thin shell over it. It is "up" only when usable: ``_ready``
says what that means, and names the node that is not. A node's process is the one its ``kafka.pid``
records, and only while ``_process`` finds it is that node's Kafka: a reused pid is never signalled.
"""

from puente.dev.localkafka._cluster import (
    SHAPES,
    LocalKafka,
    NodeSpec,
    NodeStatus,
)
from puente.dev.localkafka._fetch import KAFKA_VERSION, fetch_kafka
from puente.dev.localkafka._process import NodeProcess, record_of

__all__ = [
    "KAFKA_VERSION",
    "SHAPES",
    "LocalKafka",
    "NodeProcess",
    "NodeSpec",
    "NodeStatus",
    "fetch_kafka",
    "record_of",
]
