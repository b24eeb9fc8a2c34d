"""Puente's Avro schemas and the pure codec over them.

The ``.avsc`` files under ``avro/`` are the current schemas, one named type
per file; ``releases/vN/`` keeps every released version of the alert schema,
expanded into one file, so that readers can resolve data written by older
and newer writers. Avro bounds no string or array: ``bounds`` states how much
an alert may hold, and ``bounds_problem`` holds one to it. Records travel in Avro single-object encoding: the marker
``C3 01``, the writer schema's CRC-64-AVRO fingerprint, then the body.
"""

from schemas import _bounds as bounds
from schemas._alert import PAYLOAD_TYPE, AlertCodec, alert_codec, alert_from_json, to_json
from schemas._bounds import bounds_problem
from schemas._codec import SingleObjectCodec
from schemas._fingerprint import MARKER, crc64_avro, fingerprint
from schemas._registry import (
    ALERT,
    RELEASE_DIR,
    SCHEMA_DIR,
    SchemaVersion,
    current,
    known_writers,
    load_expanded,
    releases,
    version_from,
)

__all__ = [
    "ALERT",
    "MARKER",
    "PAYLOAD_TYPE",
    "RELEASE_DIR",
    "SCHEMA_DIR",
    "AlertCodec",
    "SchemaVersion",
    "SingleObjectCodec",
    "alert_codec",
    "alert_from_json",
    "bounds",
    "bounds_problem",
    "crc64_avro",
    "current",
    "fingerprint",
    "known_writers",
    "load_expanded",
    "releases",
    "to_json",
    "version_from",
]
