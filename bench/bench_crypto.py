"""CPU cost of Puente's crypto core on one core: feed seal/open and ingress MAC sign/verify.

    python bench/bench_crypto.py [--quick] [--size 1024]

Records are random bytes of ``--size`` (default 1 KiB). Each figure is the best of a few
timed runs, in operations per second on one thread pinned to one core; the per-key
figures (new data key, first open of a key block) are the public-key costs that the
envelope pays once per ``max_records`` records instead of once per record.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from broker.crypto import FeedOpener, FeedSealer, SecretBytes, sign_ingress, verify_ingress

NOW = datetime(2026, 1, 5, tzinfo=UTC)
FP = bytes(8)
CONTEXT = {"topic": "puente.feed.COL", "schema_fp": FP, "policy_version": "2026.01-1", "agreement": "COMBIFRON"}


def rate(label: str, count: int, run: Callable[[int], None], repeats: int) -> float:
    """Best-of-``repeats`` operations per second of ``run(count)``, printed under ``label``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run(count)
        best = min(best, time.perf_counter() - start)
    per_second = count / best
    print(f"{label:<44} {per_second:>12,.0f} /s   {1e6 / per_second:8.2f} µs each")
    return per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations, for a smoke run")
    parser.add_argument("--size", type=int, default=1024, help="plaintext size in bytes")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the figures claim
    n, keyed, repeats = (20_000, 200, 1) if args.quick else (200_000, 2_000, 3)

    rng = random.Random(7)
    payloads = [rng.randbytes(args.size) for _ in range(256)]
    alert_ids = [f"SENAN:OP-{i:08d}" for i in range(256)]
    signing = Ed25519PrivateKey.generate()
    partner = X25519PrivateKey.generate()
    sealer = FeedSealer("COL", partner.public_key(), signing)
    opener = FeedOpener("COL", partner, signing.public_key())
    print(f"{args.size}-byte records, {'quick' if args.quick else 'full'} run, one core")

    def seal(count: int) -> None:
        for i in range(count):
            sealer.seal(payloads[i & 255], alert_id=alert_ids[i & 255], now=NOW, **CONTEXT)  # type: ignore[arg-type]

    sealed = [sealer.seal(p, alert_id=a, now=NOW, **CONTEXT) for p, a in zip(payloads, alert_ids, strict=True)]  # type: ignore[arg-type]

    def open_(count: int) -> None:
        for i in range(count):
            opener.open(sealed[i & 255], alert_id=alert_ids[i & 255], **CONTEXT)  # type: ignore[arg-type]

    rate("feed seal (data key reused)", n, seal, repeats)
    rate("feed open (key block cached)", n, open_, repeats)

    def new_key(count: int) -> None:
        for _ in range(count):
            sealer.rotate(NOW)

    def first_open(count: int) -> None:
        for _ in range(count):
            fresh = FeedOpener("COL", partner, signing.public_key())
            fresh.open(sealed[0], alert_id=alert_ids[0], **CONTEXT)  # type: ignore[arg-type]

    rate("new data key (HPKE seal + Ed25519 sign)", keyed, new_key, repeats)
    rate("first open of a key block (verify + HPKE open)", keyed, first_open, repeats)

    mac = SecretBytes(os.urandom(32), key_id="SENAN-mac-2026a")
    headers = [sign_ingress("SENAN", mac.key_id, mac, p, a) for p, a in zip(payloads, alert_ids, strict=True)]

    def lookup(agency: str, key_id: str) -> SecretBytes | None:
        return mac if (agency, key_id) == ("SENAN", mac.key_id) else None

    def ingress_sign(count: int) -> None:
        for i in range(count):
            sign_ingress("SENAN", mac.key_id, mac, payloads[i & 255], alert_ids[i & 255])

    def ingress_verify(count: int) -> None:
        for i in range(count):
            verify_ingress(headers[i & 255], payloads[i & 255], lookup)

    rate("ingress MAC sign (HMAC-SHA256)", n, ingress_sign, repeats)
    rate("ingress MAC verify", n, ingress_verify, repeats)

    def ed_verify(count: int) -> None:
        verify = signing.public_key()
        sig = signing.sign(payloads[0])
        for _ in range(count):
            verify.verify(sig, payloads[0])

    rate("for comparison: Ed25519 verify per record", keyed * 5, ed_verify, repeats)


if __name__ == "__main__":
    main()
