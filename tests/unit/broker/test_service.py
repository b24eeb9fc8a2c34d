"""The service's wiring of settings into workers."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import broker.service as service
import broker.worker
from broker.crypto import KeyKind, KeyRecord, sign_ingress
from broker.kafka import KafkaConnection, set_fetching
from broker.keystore import Keystore, Keystores
from broker.service import (
    PolicyAdapter,
    agreements_in_force,
    build_sealers,
    build_worker,
    instance_id,
    require_pseudonym_keys,
    require_sealers,
)
from broker.topology import TopicNames, key_partition
from policies import load_policy_set
from puente.dev.synthetic import generate
from puente.errors import ConfigError, KafkaUnavailableError
from puente.settings import AGENCIES, PuenteSettings
from puente.wire import Record
from schemas import alert_codec


def test_each_worker_of_a_process_gets_its_own_static_name() -> None:
    """One worker keeps the name as given; several get <name>-<index>, never one name twice; none: dynamic."""
    assert instance_id("broker-a", 0, 1) == "broker-a"
    assert [instance_id("broker-a", i, 3) for i in range(3)] == ["broker-a-0", "broker-a-1", "broker-a-2"]
    assert instance_id(None, 0, 2) is None


PARTNERS = ["COL", "USA", "CRI", "FEAN"]
AGREEMENTS = ["COMBIFRON", "FEAN-JTF", "PAN-CRI", "PAN-USA"]
IN_FORCE = datetime(2026, 6, 1, tzinfo=UTC)  # every shipped agreement is in force
AREA_NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _keys(tmp_path: Path) -> Keystores:
    return Keystore.provision(tmp_path / "keys", partners=PARTNERS, agencies=[], agreements=AGREEMENTS,
                              generation="2026a")


def test_the_pipeline_is_told_each_partners_recall_deadline_as_auditors_count_it(tmp_path: Path) -> None:
    """The hours the pipeline records with a recall notice: the shortest ``recall_ack_hours`` of the partner's
    agreements (FEAN-JTF's 24), the default (72) for a partner no agreement names."""
    policy = load_policy_set()
    adapter = PolicyAdapter(policy, Keystore(tmp_path), TopicNames("p"))
    assert {p: adapter.recall_ack_hours(p) for p in PARTNERS} == {"COL": 72, "USA": 72, "CRI": 72, "FEAN": 24}
    assert adapter.recall_ack_hours("GONE") == 72


def test_a_partner_naming_another_partners_encryption_key_gets_no_sealer(tmp_path: Path) -> None:
    """A policy typo giving COL USA's encryption key must not seal COL's feed for USA: COL gets no sealer, with a
    problem naming both keys' owners; the others are sealed as before."""
    made = _keys(tmp_path)
    policy = load_policy_set()
    wrong = dataclasses.replace(policy.partners["COL"], encryption_key_id="USA-enc-2026a")
    policy = dataclasses.replace(policy, partners={**policy.partners, "COL": wrong})
    sealers, problems = build_sealers(policy, Keystore(made.broker.path))
    assert sorted(sealers) == sorted(set(policy.partners) - {"COL"})
    assert problems == {"COL": "its encryption key USA-enc-2026a is USA's, not its own: correct keys.encryption in "
                               "partners.yaml"}


def test_the_broker_refuses_to_start_while_a_partner_in_force_has_an_unusable_key(tmp_path: Path) -> None:
    """COL's public half made group-writable (a restore, a shared folder): the broker does not start and withhold
    COL's alerts for good; one line names COL, its agreement, the key id and file, and what to run."""
    made = _keys(tmp_path)
    key_file = made.broker.path / "COL-enc-2026a.json"
    key_file.chmod(0o664)
    policy = load_policy_set()
    sealers, problems = build_sealers(policy, made.broker)
    assert "COL" not in sealers
    with pytest.raises(ConfigError) as info:
        require_sealers(policy, problems, made.broker.path, IN_FORCE)
    message = str(info.value)
    assert "\n" not in message and "will not start" in message
    assert "COL (agreement COMBIFRON in force delivers to it)" in message
    assert "COL-enc-2026a" in message and str(key_file) in message and "chmod 644" in message
    assert f"puente policy lint --keys {made.broker.path}" in message


def test_a_missing_key_file_says_how_to_import_it(tmp_path: Path) -> None:
    """A partner key the broker never received is refused with the import command, naming key id and folder."""
    made = _keys(tmp_path)
    (made.broker.path / "USA-enc-2026a.json").unlink()
    policy = load_policy_set()
    _, problems = build_sealers(policy, made.broker)
    with pytest.raises(ConfigError, match="USA-enc-2026a: no key file") as info:
        require_sealers(policy, problems, made.broker.path, IN_FORCE)
    assert f"import-public FILE.pem --id USA-enc-2026a --dir {made.broker.path}" in str(info.value)


def test_a_key_problem_of_a_partner_no_agreement_in_force_delivers_to_is_a_warning(tmp_path: Path) -> None:
    """Before any agreement is in force, the same problem does not stop the broker: it is returned as a warning
    saying what it does mean (recall notices cannot be sealed) and that the broker stops when one comes in force."""
    made = _keys(tmp_path)
    (made.broker.path / "COL-enc-2026a.json").chmod(0o664)
    policy = load_policy_set()
    _, problems = build_sealers(policy, made.broker)
    before = datetime(2000, 1, 1, tzinfo=UTC)
    assert agreements_in_force(policy, before) == {}
    warnings = require_sealers(policy, problems, made.broker.path, before)
    assert len(warnings) == 1 and warnings[0].startswith("COL: key COL-enc-2026a")
    assert "no agreement in force delivers to it" in warnings[0]


def test_with_every_key_usable_the_broker_starts_without_warnings(tmp_path: Path) -> None:
    """The control: a provisioned keystore gives every partner a sealer and nothing to refuse or warn about."""
    made = _keys(tmp_path)
    policy = load_policy_set()
    sealers, problems = build_sealers(policy, made.broker)
    assert sorted(sealers) == sorted(policy.partners) and problems == {}
    assert require_sealers(policy, problems, made.broker.path, IN_FORCE) == []
    assert agreements_in_force(policy, IN_FORCE)["COL"] == ["COMBIFRON"]


def test_the_broker_refuses_to_start_without_the_pseudonym_key_of_an_agreement_in_force(tmp_path: Path) -> None:
    """COMBIFRON pseudonymises detainees: without its pseudonym key every view under it would fail and be withheld
    for good, so the broker does not start (one line naming the agreement and the lint command); an agreement
    not in force, or one that pseudonymises nothing, needs none."""
    made = _keys(tmp_path)
    policy = load_policy_set()
    require_pseudonym_keys(policy, made.broker, IN_FORCE)
    (made.broker.path / "COMBIFRON-pseudo-2026a.json").unlink()
    for other in ("FEAN-JTF", "PAN-CRI", "PAN-USA"):
        (made.broker.path / f"{other}-pseudo-2026a.json").unlink()
    with pytest.raises(ConfigError) as info:
        require_pseudonym_keys(policy, made.broker, IN_FORCE)
    message = str(info.value)
    assert "\n" not in message and message.count("COMBIFRON:") == 1 and "PAN-USA" not in message
    assert f"puente policy lint --keys {made.broker.path}" in message
    require_pseudonym_keys(policy, made.broker, datetime(2000, 1, 1, tzinfo=UTC))


def test_building_a_worker_refuses_when_a_partner_in_force_has_no_usable_key(tmp_path: Path) -> None:
    """The refusal is in build_worker itself, so every way of starting a broker (the command, the demo, the test
    harness) meets it before a worker exists."""
    in_force = agreements_in_force(load_policy_set(), datetime.now(UTC))
    # Never a skip: with every shipped agreement lapsed, this check would test nothing (renew their dates).
    assert in_force, "no shipped agreement is in force today: renew valid_until in policies/data/agreements"
    partner, agreements = sorted(in_force.items())[0]
    made = Keystore.provision(tmp_path / "keys", partners=PARTNERS, agencies=list(AGENCIES), agreements=AGREEMENTS,
                              generation="2026a")
    (made.broker.path / f"{partner}-enc-2026a.json").unlink()
    with pytest.raises(ConfigError, match=rf"{partner} \(agreement {', '.join(agreements)} in force delivers to it\)"):
        build_worker(PuenteSettings(keys=made.root), KafkaConnection(bootstrap="unused:9092"), audit_kept_forever=False)


def test_building_a_worker_reads_the_broker_signing_keys_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """build_worker reads the broker's signing generations from its folder once: the workers sign with the one made
    last, the sealers sign key blocks with it too, and every generation is the workers' order."""
    made = Keystore.provision(tmp_path / "keys", partners=PARTNERS, agencies=list(AGENCIES), agreements=AGREEMENTS,
                              generation="2026a")
    later = datetime.now(UTC) + timedelta(days=1)  # made after the provisioned 2026a
    made.broker.generate(KeyKind.BROKER_SIGNING, "broker", generation="2026b", now=later)
    reads: list[str] = []
    generations = Keystore.generations

    def counted(self: Keystore, owner: str, kind: KeyKind) -> list[KeyRecord]:
        if kind is KeyKind.BROKER_SIGNING:
            reads.append(owner)
        return generations(self, owner, kind)

    monkeypatch.setattr(Keystore, "generations", counted)
    worker, _, _ = build_worker(PuenteSettings(keys=made.root), KafkaConnection(bootstrap="unused:9092"),
                                audit_kept_forever=False)
    assert reads == ["broker"]
    assert worker.config.signer_id == "broker-sign-2026b"
    assert worker.config.generations == ("broker-sign-2026b", "broker-sign-2026a")
    assert worker.config.verify("broker-sign-2026b", b"payload", worker.sign(b"payload"))
    assert not worker.config.verify("broker-sign-2026a", b"payload", worker.sign(b"payload"))


def test_the_worker_takes_the_configured_units_and_refuses_units_of_a_home_agency(tmp_path: Path) -> None:
    """The pipeline's originators carry PUENTE_AGENCY_UNITS's units for the relaying agency; units named for an
    agency the settings hold to the policy's home country are a mistake the settings alone cannot see: refused."""
    made = Keystore.provision(tmp_path / "keys", partners=PARTNERS, agencies=list(AGENCIES), agreements=AGREEMENTS,
                              generation="2026a")
    worker, _, _ = build_worker(PuenteSettings(keys=made.root, agency_units={"COMBIFRON": ("ARC",)}),
                                KafkaConnection(bootstrap="unused:9092"), audit_kept_forever=False)
    assert worker.pipeline.originators["COMBIFRON"].units == frozenset({"ARC"})
    assert worker.pipeline.originators["SNM"].units == frozenset()
    cfg = PuenteSettings(keys=made.root, agency_countries={"COMBIFRON": "COL", "SNM": "PAN"},
                         agency_units={"SNM": ("ARC",)})
    with pytest.raises(ConfigError, match=r"PUENTE_AGENCY_UNITS names units of SNM, an agency of the policy's home "
                                          r"country \(PAN\)"):
        build_worker(cfg, KafkaConnection(bootstrap="unused:9092"), audit_kept_forever=False)


def test_the_built_worker_withholds_an_alert_naming_an_area_the_policy_does_not_know(tmp_path: Path) -> None:
    """An alert whose province is no code of the policy's areas, signed by its agency and processed by the pipeline
    the service builds, reaches no partner (rule ``unknown.area``) and leaves no trace of its text in the audit."""
    made = Keystore.provision(tmp_path / "keys", partners=PARTNERS, agencies=list(AGENCIES), agreements=AGREEMENTS,
                              generation="2026a")
    worker, _, _ = build_worker(PuenteSettings(keys=made.root), KafkaConnection(bootstrap="unused:9092"),
                                audit_kept_forever=False)
    pipeline = worker.pipeline
    pipeline.feed_counts.update(dict.fromkeys(pipeline.uncounted_feeds, 3))
    alert = next(a for a in generate(100, seed=5, now=AREA_NOW) if (a["location"] or {}).get("province"))
    alert["location"].update(province="JUAN_PEREZ_PA1234567", latitude=None, longitude=None)
    agency, alert_id = alert["agency"], alert["alert_id"]
    value = alert_codec().encode(alert)
    mac = Keystore(made.root / "agencies" / agency).load_agency_mac(agency)
    now_ms = int(AREA_NOW.timestamp() * 1000)
    key = alert_id.encode()
    record = Record(pipeline.slots.names.ingress(agency), key_partition(key, pipeline.slots.partitions), 0, key, value,
                    tuple(sign_ingress(agency, mac.key_id, mac, value, alert_id, now_ms)), now_ms)
    out = pipeline.process(record, set(), AREA_NOW)
    assert out.dead_reason is None and out.feeds == []
    decisions = out.entry["decisions"]
    assert sorted(d["partner"] for d in decisions) == sorted(PARTNERS)
    assert all(d["decision"] == "WITHHOLD" and "unknown.area" in d["rules"] for d in decisions)
    assert "JUAN_PEREZ" not in str(out.entry)


class _Built(Exception):
    """Raised by the stand-in for the consumer's constructor: the worker got as far as making it."""


def test_the_fetch_settings_reach_the_workers_consumer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PUENTE_FETCH_MAX_WAIT_MS and PUENTE_FETCH_MIN_BYTES are what the worker's group consumer is made with (Kafka's
    fetch.max.wait.ms and fetch.min.bytes), not only what its config holds; out-of-range values are refused."""
    made = Keystore.provision(tmp_path / "keys", partners=PARTNERS, agencies=list(AGENCIES), agreements=AGREEMENTS,
                              generation="2026a")
    cfg = PuenteSettings(keys=made.root, fetch_max_wait_ms=7, fetch_min_bytes=4096)
    worker, topics, _ = build_worker(cfg, KafkaConnection(bootstrap="unused:9092"), audit_kept_forever=False)
    seen: dict[str, object] = {}

    def made_consumer(*args: object, **options: object) -> None:
        seen.update(options)
        raise _Built

    monkeypatch.setattr(broker.worker, "consumer", made_consumer)
    with pytest.raises(_Built):
        asyncio.run(worker._run_once(topics, None))
    assert (seen["fetch_max_wait_ms"], seen["fetch_min_bytes"]) == (7, 4096)
    fields = PuenteSettings.model_fields
    assert (fields["fetch_max_wait_ms"].default, fields["fetch_min_bytes"].default) == (15, 16384)
    # 0 ms would have a worker with nothing to read fetch without pause.
    for bad in ({"fetch_max_wait_ms": 0}, {"fetch_max_wait_ms": 501}, {"fetch_min_bytes": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            PuenteSettings(**bad)  # type: ignore[arg-type]


def test_the_carry_wait_reaches_the_worker(tmp_path: Path) -> None:
    """PUENTE_FEED_CARRY_WAIT_MS is the worker's wait for a batch to carry its feed records, in seconds; 0 (send
    them at once) is taken, a negative wait or one over a second refused."""
    made = Keystore.provision(tmp_path / "keys", partners=PARTNERS, agencies=list(AGENCIES), agreements=AGREEMENTS,
                              generation="2026a")
    for ms in (0, 35):
        worker, _, _ = build_worker(PuenteSettings(keys=made.root, feed_carry_wait_ms=ms),
                                    KafkaConnection(bootstrap="unused:9092"), audit_kept_forever=False)
        assert worker.config.carry_wait_s == ms / 1000
    assert PuenteSettings.model_fields["feed_carry_wait_ms"].default == 20
    for bad in (-1, 1001):
        with pytest.raises(ValueError, match="feed_carry_wait_ms"):
            PuenteSettings(feed_carry_wait_ms=bad)


def test_fetching_is_changed_only_where_aiokafka_builds_its_requests_from() -> None:
    """set_fetching refuses, with a line naming what to check, a consumer that has not started and an aiokafka that
    keeps the two values elsewhere: a worker would otherwise fetch, in silence, not as it was told."""

    class Fetcher:
        _fetch_max_wait_ms, _fetch_min_bytes = 15, 16384

    class Consumer:
        _fetcher: object = None

    made = Consumer()
    with pytest.raises(ConfigError, match="has not started"):
        set_fetching(made, max_wait_ms=100, min_bytes=1)  # type: ignore[arg-type]
    made._fetcher = Fetcher()
    set_fetching(made, max_wait_ms=100, min_bytes=1)  # type: ignore[arg-type]
    assert (made._fetcher._fetch_max_wait_ms, made._fetcher._fetch_min_bytes) == (100, 1)  # type: ignore[attr-defined]
    made._fetcher = object()
    with pytest.raises(ConfigError, match=r"install the aiokafka version pyproject\.toml names"):
        set_fetching(made, max_wait_ms=100, min_bytes=1)  # type: ignore[arg-type]


@dataclass(frozen=True)
class _KeptConfig:
    """What ``run_broker`` sets on a worker's config after the topology check."""

    audit_kept_forever: bool = False


def test_a_workers_error_is_raised_rather_than_anothers_stray_cancellation(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path) -> None:
    """Two workers end at once: one with a Kafka error, the other (listed first) with a CancelledError nobody
    asked for. The broker stops with the Kafka error, which names what to check, not the cancellation."""
    class Ending:
        def __init__(self, error: BaseException) -> None:
            self.error = error
            self.config = _KeptConfig()

        async def run(self, topics: list[str], *, idle_exit_s: float | None = None) -> None:
            await asyncio.sleep(0)
            raise self.error

        def stop(self) -> None:
            pass

    ends = iter([asyncio.CancelledError(), KafkaUnavailableError("Kafka at x:1 could not be reached")])

    async def checked(*args: object) -> bool:
        return False

    monkeypatch.setattr(service, "load_policy_set", lambda path: SimpleNamespace(version="p-test"))
    monkeypatch.setattr(service, "build_worker", lambda *a, **kw: (Ending(next(ends)), ["t"], []))
    monkeypatch.setattr(service, "check_topology", checked)
    said: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(service, "log", SimpleNamespace(info=lambda event, **kw: said.append((event, kw)),
                                                        warning=lambda event, **kw: said.append((event, kw))))
    with pytest.raises(KafkaUnavailableError):
        asyncio.run(service.run_broker(PuenteSettings(keys=tmp_path), KafkaConnection(bootstrap="x:1"), 2))
    # Which agreements it decides by: the shipped, illustrative policy named as such when PUENTE_POLICY_DIR is unset.
    [starting] = [kw for event, kw in said if event == "broker starting"]
    assert starting["policy"].endswith("(shipped)") and starting["policy_version"] == "p-test"
