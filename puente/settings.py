"""Settings for the services, read once at the application edge from ``PUENTE_*`` variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from puente.errors import ConfigError

AGENCIES = ("SENAFRONT", "SENAN", "PN", "SNM", "COMBIFRON")


class PuenteSettings(BaseSettings):
    """Where Kafka is, how topics are shaped, where keys and policies live. Frozen once read."""

    model_config = SettingsConfigDict(env_prefix="PUENTE_", frozen=True, extra="ignore")

    bootstrap: str | None = Field(None, description="Kafka bootstrap servers (host:port,...); or bootstrap.servers "
                                                   "in the client configuration file")
    client_config: Path | None = Field(None, description=(
        "a Kafka client properties file (the Java client's names, or librdkafka's): security.protocol, "
        "sasl.*, ssl.*; what --command-config gives"))
    kafka_timeout_s: float = Field(15.0, gt=0, le=600, description="how long reaching Kafka may take before "
                                                                   "a command reports it unavailable")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="long-running processes")
    log_format: Literal["console", "json"] = Field("console", description="json: one JSON object per line")
    keys: Path = Field(Path(".puente/keys"), description="the keystore folder")
    policy_dir: Path | None = Field(None, description="policy data folder; default: the shipped policies")
    replication: int = Field(1, ge=1, description="replication factor of Puente's topics")
    min_insync: int | None = Field(None, ge=1, description="min.insync.replicas; default: 2 when replication >= 3")
    ingress_partitions: int = Field(3, ge=1, le=64)
    feed_partitions: int = Field(3, ge=1, le=64)
    topic_prefix: str = Field("puente", pattern=r"^[a-zA-Z0-9_.-]+$")
    group_id: str | None = Field(None, description="the broker consumer group; default: <topic_prefix>-broker")
    agencies: tuple[str, ...] = AGENCIES
    ingress_retention_days: int = Field(7, ge=1)
    audit_retention_days: int = Field(3650, ge=1)
    deadletter_retention_days: int = Field(30, ge=1)
    replay_window_days: int = Field(7, ge=1, le=366, description=(
        "how long the broker remembers alert ids to refuse replays; a record reaching Kafka longer than "
        "this after its signed publication time is refused as stale"))
    max_batch: int = Field(500, ge=1, description="ingress records per transaction")
    metrics_port: int | None = Field(None, ge=1, le=65535, description="port of the /metrics endpoint")
    metrics_address: str = Field("127.0.0.1", description="address the /metrics endpoint binds to")

    @property
    def broker_group(self) -> str:
        return self.group_id or f"{self.topic_prefix}-broker"

    @property
    def effective_min_insync(self) -> int:
        if self.min_insync is not None:
            return self.min_insync
        return 2 if self.replication >= 3 else 1


def load_settings(**overrides: object) -> PuenteSettings:
    """The settings from ``PUENTE_*`` variables (and ``overrides``); one clear line when one is invalid."""
    try:
        return PuenteSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "PUENTE_" + "_".join(str(p) for p in first["loc"]).upper()
        raise ConfigError(f"invalid setting {name}: {first['msg']}") from None
