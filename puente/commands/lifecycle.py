"""``puente recall``, ``puente consent grant``, ``puente reclassify``: an agency officer changes a published alert.

Each publishes the alert's next version on the ingress topic of the agency that owns it (the
alert id's prefix), signed as its adapter signs, logged in as that agency (``PUENTE_CLIENT_CONFIG``
or ``--command-config``); the service is ``adapters.lifecycle``. Exit status: 0 published; 2 usage;
3 bad input (an id, partner or marking the policy does not know; an alert not found, already
recalled, already consented), keys or access; 4 Kafka unavailable.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from adapters.lifecycle import Change, Published, change_alert
from puente.commands._common import Subparsers, kafka, kafka_options, run, settings

REASONS = {"error": "ERROR", "legal": "LEGAL", "source-protection": "SOURCE_PROTECTION", "superseded": "SUPERSEDED"}
_ID_HELP = "the alert id, e.g. SNM:PTY-20261103-00231; its prefix names the agency that owns it"
_EPILOG = ("Runs as the agency that owns the alert: its Kafka login (PUENTE_CLIENT_CONFIG or --command-config) and its "
           "keys (PUENTE_KEYS/agencies/<agency>). Reads the alert's latest version from the agency's ingress topic and "
           "publishes the next one. Exit 0: published; 2: usage; 3: bad input, keys or access; 4: Kafka unavailable.")


def _codes(text: str) -> list[str]:
    """A comma-separated list of codes; '' is the empty list."""
    return [c for c in re.split(r"[,\s]+", text.strip()) if c]


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    text = "withdraw a published alert for good: every partner holding it is told to delete it"
    p = sub.add_parser("recall", help=text, description=text, epilog=_EPILOG, parents=[kafka_options()])
    p.add_argument("alert_id", metavar="ALERT_ID", help=_ID_HELP)
    p.add_argument("--reason", required=True, choices=list(REASONS), help="why (a category, never free text)")
    p.set_defaults(func=_recall)

    text = "record the originator's consent to release a published alert to more partners"
    consent = sub.add_parser("consent", help=text, description=text)
    actions = consent.add_subparsers(dest="consent_action", metavar="ACTION", required=True)
    p = actions.add_parser("grant", help=text, description=text, epilog=_EPILOG, parents=[kafka_options()])
    p.add_argument("alert_id", metavar="ALERT_ID", help=_ID_HELP)
    p.add_argument("--partner", action="append", required=True, type=_codes, metavar="ID",
                   help="a partner id from the policy (repeat, or A,B); each must not have consent already")
    p.set_defaults(func=_consent)

    text = "change a published alert's release markings; every partner's delivery is decided again"
    p = sub.add_parser("reclassify", help=text, description=text, epilog=_EPILOG, parents=[kafka_options()])
    p.add_argument("alert_id", metavar="ALERT_ID", help=_ID_HELP)
    p.add_argument("--classification", metavar="LEVEL", help="a level of the policy's scale, e.g. CONFIDENCIAL")
    p.add_argument("--releasable-to", type=_codes, metavar="A,B", help="partners and countries; '' for none")
    p.add_argument("--caveats", type=_codes, metavar="C,D", help="caveats the policy knows; '' for none")
    p.add_argument("--handling-code", metavar="CODE", help="H0, H1, H2 or H3")
    p.add_argument("--handling-text", metavar="TEXT", help="the restriction in words (H3 needs it)")
    p.set_defaults(func=_reclassify, parser=p)


def _publish(args: argparse.Namespace, change: Change) -> int:
    cfg = settings(args)
    # The Kafka settings are read once the alert id, the change and the keys have passed (``change_alert``).
    published = run(change_alert(cfg, lambda: kafka(cfg, "puente-lifecycle"), args.alert_id, change))
    print(_line(published))
    return 0


def _recall(args: argparse.Namespace) -> int:
    return _publish(args, Change("RECALL", reason=REASONS[args.reason]))


def _consent(args: argparse.Namespace) -> int:
    return _publish(args, Change("CONSENT", partners=tuple(p for group in args.partner for p in group)))


def _reclassify(args: argparse.Namespace) -> int:
    given = {"classification": args.classification, "releasable_to": args.releasable_to, "caveats": args.caveats,
             "handling_code": args.handling_code, "handling_text": args.handling_text}
    if all(v is None for v in given.values()):
        args.parser.error("give at least one change: --classification, --releasable-to, --caveats, "
                          "--handling-code or --handling-text")
    return _publish(args, Change("RECLASSIFY", markings={k: v for k, v in given.items() if v is not None}))


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(value) or "none"
    return "none" if value is None else str(value)


def _line(p: Published) -> str:
    if p.action == "RECALL":
        what = f"RECALL, reason {p.reason}"
    elif p.action == "CONSENT":
        what = f"CONSENT to {', '.join(p.partners)}"
    else:
        what = "RECLASSIFY: " + "; ".join(f"{k} {_show(v)}" for k, v in p.changed.items())
    return f"{p.alert_id}: version {p.version} published ({what})"
