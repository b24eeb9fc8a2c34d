"""``puente keys init``: every party's keys, each where its holder keeps it."""

from __future__ import annotations

import argparse

from broker.keystore import provision_all
from puente.commands._common import Subparsers, settings


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="create and inspect keys").add_subparsers(dest="verb", required=True)
    init = keys.add_parser("init", help="create every key the policy names (kept if present)")
    init.set_defaults(func=_init)


def _init(args: argparse.Namespace) -> int:
    made = provision_all(settings(args))
    print(f"keys ready under {made.root}: broker/ (signing, partner public keys, agency MAC, pseudonym keys), "
          "partners/<id>/ (each partner's decryption and receipt-signing keys), "
          "agencies/<code>/ (each agency's MAC key)")
    return 0
