"""An agency officer's recall, consent and reclassification against the real Kafka: each is the alert's next version
on the agency's own ingress topic, signed by the agency; another agency's login is refused by Kafka."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from puente_testing import Env, cli, read_topic

from adapters.lifecycle import Change, next_version
from adapters.publisher import IngressPublisher
from broker.crypto import verify_ingress
from broker.keystore import Keystore
from schemas import alert_codec

pytestmark = pytest.mark.kafka

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "snm" / "alertas-migratorias-2026-11.jsonl"


def _run(env: Env, principal: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli(*args), env=env.env_vars(principal), capture_output=True, text=True, timeout=120,
                          check=False)


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


async def _versions(env: Env, alert_id: str) -> list[dict[str, Any]]:
    """The alert's versions on SNM's ingress topic, in order, each checked to prove SNM's origin as the broker
    checks it (with the broker's own keystore)."""
    lookup = Keystore(env.cfg.keys / "broker").agency_mac_lookup()
    codec, out = alert_codec(), []
    for rec in await read_topic(env.conn, env.names.ingress("SNM")):
        if rec.key != alert_id.encode():
            continue
        origin = verify_ingress(rec.headers, rec.value, lookup)
        assert (origin.agency, origin.alert_id) == ("SNM", alert_id)
        out.append(codec.decode(rec.value))
    return sorted(out, key=lambda a: a["version"])


async def test_an_officer_consents_reclassifies_and_recalls_as_the_agency(env: Env, tmp_path: Path) -> None:
    """After `adapt` publishes version 1, `consent grant`, `reclassify` and `recall`, run with SNM's login, publish
    versions 2, 3 and 4 with their lifecycle and the content otherwise unchanged, each with SNM's origin MAC;
    afterwards the recalled alert takes no further change, and an unknown id is said to be missing."""
    line = SAMPLE.read_bytes().splitlines()[0]
    alert_id = "SNM:" + json.loads(line)["id_control"]
    export = tmp_path / "hit.jsonl"
    export.write_bytes(line + b"\n")
    assert "published 1" in _ok(_run(env, "agency-SNM", "adapt", "snm", str(export)))

    assert _ok(_run(env, "agency-SNM", "consent", "grant", alert_id, "--partner", "USA", "--partner", "CRI")) == \
        f"{alert_id}: version 2 published (CONSENT to USA, CRI)"
    assert _ok(_run(env, "agency-SNM", "reclassify", alert_id, "--classification", "confidencial",
                    "--releasable-to", "COL,USA")) == \
        f"{alert_id}: version 3 published (RECLASSIFY: classification CONFIDENCIAL; releasable_to COL, USA)"
    assert _ok(_run(env, "agency-SNM", "recall", alert_id, "--reason", "source-protection")) == \
        f"{alert_id}: version 4 published (RECALL, reason SOURCE_PROTECTION)"

    v1, v2, v3, v4 = await _versions(env, alert_id)
    assert [v["version"] for v in (v1, v2, v3, v4)] == [1, 2, 3, 4]
    assert v1["lifecycle"] is None
    assert v2["lifecycle"] == {"action": "CONSENT", "reason": None, "partners": ["USA", "CRI"]}
    assert v2["markings"]["originator_consent"] == [*v1["markings"]["originator_consent"], "USA", "CRI"]
    assert v3["lifecycle"] == {"action": "RECLASSIFY", "reason": None, "partners": []}
    assert (v3["markings"]["classification"], v3["markings"]["releasable_to"]) == ("CONFIDENCIAL", ["COL", "USA"])
    assert v3["markings"]["originator_consent"] == v2["markings"]["originator_consent"]
    assert v4["lifecycle"] == {"action": "RECALL", "reason": "SOURCE_PROTECTION", "partners": []}
    assert v4["markings"] == v3["markings"]
    for later in (v2, v3, v4):
        assert {k: v for k, v in later.items() if k not in ("version", "lifecycle", "markings")} == \
            {k: v for k, v in v1.items() if k not in ("version", "lifecycle", "markings")}

    again = _run(env, "agency-SNM", "consent", "grant", alert_id, "--partner", "FEAN")
    assert again.returncode == 3 and "was recalled in version 4" in again.stderr, again.stderr
    missing = _run(env, "agency-SNM", "recall", "SNM:PTY-20261199-999999", "--reason", "error")
    assert missing.returncode == 3, missing.stderr
    assert "is not on" in missing.stderr and "puente adapt" in missing.stderr
    assert len(await _versions(env, alert_id)) == 4


async def test_a_partner_already_consented_is_refused_and_nothing_is_published(env: Env, tmp_path: Path) -> None:
    """Consent to a partner the alert already has consent for is one line, exit 3; the topic is unchanged."""
    line = SAMPLE.read_bytes().splitlines()[3]  # DAV-...-000004: its marcado already consents to FEAN
    alert_id = "SNM:" + json.loads(line)["id_control"]
    (tmp_path / "hit.jsonl").write_bytes(line + b"\n")
    _ok(_run(env, "agency-SNM", "adapt", "snm", str(tmp_path / "hit.jsonl")))
    done = _run(env, "agency-SNM", "consent", "grant", alert_id, "--partner", "FEAN")
    assert done.returncode == 3 and "FEAN already has the originator's consent" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert [v["version"] for v in await _versions(env, alert_id)] == [1]


async def test_another_agencys_login_cannot_recall_the_alert(env: Env, tmp_path: Path) -> None:
    """PN's login, with SNM's alert id, is refused by Kafka (SNM's ingress topic is SNM's alone): one line naming
    the principal and the topic, exit 3, and nothing is published."""
    line = SAMPLE.read_bytes().splitlines()[0]
    alert_id = "SNM:" + json.loads(line)["id_control"]
    (tmp_path / "hit.jsonl").write_bytes(line + b"\n")
    _ok(_run(env, "agency-SNM", "adapt", "snm", str(tmp_path / "hit.jsonl")))
    refused = _run(env, "agency-PN", "recall", alert_id, "--reason", "error")
    assert refused.returncode == 3, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("puente: error:"), refused.stderr
    assert "refused User:agency-PN access" in lines[0] and env.names.ingress("SNM") in lines[0]
    assert [v["version"] for v in await _versions(env, alert_id)] == [1]


async def test_a_change_is_not_built_on_a_version_published_twice_with_different_content(env: Env,
                                                                                         tmp_path: Path) -> None:
    """Two officers changed version 1 at once: the broker decides the first copy of version 2 it accepts and refuses
    the other as a replay. A third change built on the copy it refused would undo the other (a reclassification
    to SECRETO reverted by an unrelated consent), so it is refused, naming both offsets; a recall, which
    withdraws whichever copy was taken, is still published."""
    line = SAMPLE.read_bytes().splitlines()[0]
    alert_id = "SNM:" + json.loads(line)["id_control"]
    (tmp_path / "hit.jsonl").write_bytes(line + b"\n")
    _ok(_run(env, "agency-SNM", "adapt", "snm", str(tmp_path / "hit.jsonl")))
    _ok(_run(env, "agency-SNM", "reclassify", alert_id, "--classification", "secreto"))
    (v1, raised) = await _versions(env, alert_id)
    mac = Keystore(env.cfg.keys / "agencies" / "SNM").load_agency_mac("SNM")
    async with IngressPublisher(env.login("agency-SNM"), "SNM", mac.key_id, mac, env.names) as pub:
        await pub.publish([next_version(v1, Change("CONSENT", partners=("FEAN",)))])  # the other officer's v2
    refused = _run(env, "agency-SNM", "consent", "grant", alert_id, "--partner", "USA")
    assert refused.returncode == 3, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "version 2 is on" in refused.stderr and "twice with different content" in refused.stderr
    assert [v["version"] for v in await _versions(env, alert_id)] == [1, 2, 2]
    assert _ok(_run(env, "agency-SNM", "recall", alert_id, "--reason", "error")) == \
        f"{alert_id}: version 3 published (RECALL, reason ERROR)"
    assert raised["markings"]["classification"] == "SECRETO"
