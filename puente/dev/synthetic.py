"""A seeded generator of realistic synthetic alerts, for the demo, tests and benchmarks.

Every alert it makes is fictitious. The mix follows what the agencies publish:
SENAFRONT border events in Darién and on the Costa Rica border, SENAN and
police seizures, and migration watchlist hits at Tocumen and the land
crossings, with markings spread over the classification scale, releasability
lists, caveats and handling codes so that every policy path is exercised.
"""

from __future__ import annotations

import contextlib
import itertools
import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from adapters.publisher import IngressPublisher
from broker.access import agency_principal
from broker.credentials import CLIENT_CONFIG, party_connection, party_folder
from broker.kafka import KafkaConnection
from broker.keystore import Keystore
from broker.topology import TopicNames
from puente.settings import PuenteSettings

_GIVEN = ["José Luis", "María Fernanda", "Juan Carlos", "Ana Lucía", "Yeison", "Darwin", "Wilmer", "Génesis",
          "Kervin", "Mohamed", "Jean-Baptiste", "Luz Marina", "Andrés Felipe", "Rosa Elena"]
_SURNAMES = ["Pérez Gómez", "Rodríguez Castillo", "Mosquera Palacios", "Guerrero Díaz", "Rivas Núñez",
             "Martínez Ospina", "Castro Benítez", "Hurtado Valencia", "Sánchez Ibáñez", "Joseph Pierre"]
_NATIONALITIES = ["COL", "VEN", "ECU", "HTI", "CUB", "CHN", "IND", "AFG", "CMR", "PAN", "PER", "NPL"]
_PORTS = ["PTY", "PASO_CANOAS", "GUABITO", "DAVID", "COLON_CRISTOBAL"]
_BORDER = [
    ("GUNA_YALA", "DARIEN_PUERTO_OBALDIA", 8.67, -77.42, "Puerto Obaldía"),  # the port is in Guna Yala
    ("DARIEN", "DARIEN_BAJO_CHIQUITO", 8.04, -77.60, "Bajo Chiquito"),
    ("DARIEN", "DARIEN_LAJAS_BLANCAS", 8.19, -77.74, "Lajas Blancas"),
    ("GUNA_YALA", "GUNA_YALA_LA_MIEL", 8.66, -77.37, "La Miel"),
    ("CHIRIQUI", "CHIRIQUI_PASO_CANOAS", 8.53, -82.84, "Paso Canoas"),
    ("BOCAS_DEL_TORO", "BOCAS_GUABITO", 9.49, -82.61, "Guabito"),
]
_SEAS = [("COLON", 9.60, -79.40, "Costa Arriba"), ("DARIEN", 7.90, -78.40, "Golfo de San Miguel"),
         ("VERAGUAS", 7.40, -81.50, "Isla Coiba"), ("PANAMA", 8.60, -79.05, "Archipiélago de las Perlas")]
_CLASSES = ["PUBLICO", "RESTRINGIDO", "RESTRINGIDO", "CONFIDENCIAL", "CONFIDENCIAL", "SECRETO"]
_RELEASE = [["COL", "USA", "FEAN"], ["COL", "FEAN"], ["USA", "FEAN"], ["COL", "USA", "CRI", "FEAN"], ["FEAN"],
            ["COL", "USA", "CRI", "FEAN"]]


def _ts(rng: random.Random, base: datetime) -> datetime:
    return base - timedelta(minutes=rng.randint(5, 60 * 24 * 3))


def _markings(rng: random.Random, agency: str, unit: str) -> dict[str, Any]:
    handling = rng.choices(["H0", "H1", "H2", "H3"], weights=[6, 2, 2, 1])[0]
    caveats = ["PANAMA_ONLY"] if rng.random() < 0.08 else []
    if rng.random() < 0.1:
        caveats.append("ORCON")
    consent = rng.sample(["COL", "USA", "CRI"], rng.randint(0, 2)) if handling in ("H1", "H2") else []
    return {
        "classification": rng.choice(_CLASSES),
        "releasable_to": list(rng.choice(_RELEASE)),
        "caveats": caveats,
        "handling_code": handling,
        "handling_text": "No difundir a medios de comunicación" if handling == "H3" else None,
        "originator_consent": consent,
        "source_reliability": rng.choices("ABCDEF", weights=[3, 5, 4, 2, 1, 1])[0],
        "information_credibility": rng.choices("123456", weights=[3, 5, 4, 2, 1, 1])[0],
        "originator": {"agency": agency, "unit": unit, "country": "PAN"},
        "review_at": None,
        "expires_at": None,
    }


def _person(rng: random.Random) -> dict[str, Any]:
    nats = rng.sample(_NATIONALITIES, rng.choice([1, 1, 1, 2]))
    return {
        "given_names": rng.choice(_GIVEN),
        "surnames": rng.choice(_SURNAMES),
        "date_of_birth": date(1960, 1, 1) + timedelta(days=rng.randint(0, 16000)),
        "birth_year": None,
        "sex": rng.choice(["M", "F", "M"]),
        "nationalities": nats,
        "documents": [{
            "document_type": "PASSPORT",
            "number": f"{rng.choice('ABCPRX')}{rng.randint(1000000, 9999999)}",
            "issuing_country": nats[0],
            "expires_on": date(2027, 1, 1) + timedelta(days=rng.randint(0, 3000)),
        }],
    }


def watchlist_hit(rng: random.Random, seq: int, now: datetime) -> dict[str, Any]:
    """A Migration Service watchlist hit at an airport or land crossing."""
    port = rng.choice(_PORTS)
    lst = rng.choice([("INTERPOL_RED_NOTICE", "INTERPOL"), ("PAN_NATIONAL", "PAN"), ("USA_PARTNER", "USA"),
                      ("COL_PARTNER", "COL")])
    when = _ts(rng, now)
    return {
        "alert_id": f"SNM:SCR-{seq:08d}",
        "alert_type": "WATCHLIST_HIT",
        "agency": "SNM",
        "occurred_at": when,
        "reported_at": min(when + timedelta(minutes=rng.randint(1, 30)), now),
        "source_timezone": "America/Panama",
        "location": {"latitude": 9.0714 if port == "PTY" else None, "longitude": -79.3835 if port == "PTY" else None,
                     "province": "PANAMA" if port == "PTY" else None, "border_sector": None, "place_name": port},
        "markings": _markings(rng, "SNM", "Dirección de Inteligencia Migratoria"),
        "summary": "Coincidencia en lista de alerta migratoria",
        "payload": {
            "person": _person(rng),
            "list_name": lst[0],
            "list_owner": lst[1],
            "match_reason": rng.choice(["nombre y fecha de nacimiento", "número de pasaporte", "biometría facial"]),
            "match_score": round(rng.uniform(0.7, 1.0), 3),
            "risk_level": rng.choice(["LOW", "MEDIUM", "HIGH", "HIGH", "CRITICAL"]),
            "port_of_entry": port,
            "encounter": f"CM {rng.randint(100, 999)}" if port == "PTY" else "cruce terrestre",
            "encountered_at": when,
            "action_taken": rng.choice(["SECONDARY_INSPECTION", "REFUSED_ENTRY", "DETAINED", "ADMITTED"]),
        },
    }


def seizure(rng: random.Random, seq: int, now: datetime) -> dict[str, Any]:
    """A SENAN interdiction at sea or a National Police seizure."""
    agency = rng.choice(["SENAN", "PN"])
    province, lat, lon, place = rng.choice(_SEAS)
    items = [{"category": "DRUGS", "kind": rng.choice(["COCAINE", "MARIJUANA", "HEROIN"]),
              "quantity": float(rng.randint(20, 2500)), "unit": "PACKAGES"}]
    if rng.random() < 0.3:
        items.append({"category": "ARMS", "kind": rng.choice(["RIFLE", "PISTOL"]),
                      "quantity": float(rng.randint(1, 12)), "unit": "UNITS"})
    if rng.random() < 0.2:
        items.append({"category": "CASH", "kind": "USD", "quantity": float(rng.randint(10, 900) * 1000),
                      "unit": "USD"})
    detained = rng.randint(0, 4)
    kind = rng.choice(["GO_FAST", "SEMI_SUBMERSIBLE", "FISHING_VESSEL"]) if agency == "SENAN" else "VEHICLE"
    when = _ts(rng, now)
    return {
        "alert_id": f"{agency}:OP-{seq:08d}",
        "alert_type": "SEIZURE",
        "agency": agency,
        "occurred_at": when,
        "reported_at": min(when + timedelta(hours=rng.randint(1, 12)), now),
        "source_timezone": "America/Panama",
        "location": {"latitude": round(lat + rng.uniform(-0.3, 0.3), 5),
                     "longitude": round(lon + rng.uniform(-0.3, 0.3), 5),
                     "province": province, "border_sector": None, "place_name": place},
        "markings": _markings(rng, agency, "Fuerza de Tarea Conjunta" if agency == "SENAN" else "DIJ"),
        "summary": "Incautación de sustancias ilícitas",
        "payload": {
            "items": items,
            "conveyance": {
                "kind": kind,
                "name": rng.choice([None, "La Niña", "Don Chepe", "Sin nombre"]),
                "identifier": f"PA-{rng.randint(10000, 99999)}",
                "flag_country": rng.choice(["PAN", "COL", None]),
            },
            "persons_detained": detained,
            "detainees": [_person(rng) for _ in range(detained)],
            "operation_name": rng.choice(["Patria", "Escudo", "Tormenta Marina", None]),
        },
    }


def border_event(rng: random.Random, seq: int, now: datetime) -> dict[str, Any]:
    """A SENAFRONT patrol report from the Darién or the Costa Rica border."""
    province, sector, lat, lon, place = rng.choice(_BORDER)
    etype = rng.choice(["MIGRANT_FLOW", "MIGRANT_FLOW", "CROSSING", "ARMED_GROUP_SIGHTING", "CLASH",
                        "CLANDESTINE_AIRSTRIP"])
    when = _ts(rng, now)
    return {
        "alert_id": f"SENAFRONT:PAT-{seq:08d}",
        "alert_type": "BORDER_EVENT",
        "agency": "SENAFRONT",
        "occurred_at": when,
        "reported_at": min(when + timedelta(hours=rng.randint(1, 8)), now),
        "source_timezone": "America/Panama",
        "location": {"latitude": round(lat + rng.uniform(-0.05, 0.05), 5),
                     "longitude": round(lon + rng.uniform(-0.05, 0.05), 5),
                     "province": province, "border_sector": sector, "place_name": place},
        "markings": _markings(rng, "SENAFRONT", "Batallón de Fronteras " + province.title()),
        "summary": "Reporte de patrulla",
        "payload": {
            "event_type": etype,
            "headcount": rng.randint(5, 900) if etype in ("MIGRANT_FLOW", "CROSSING") else rng.randint(2, 40),
            "direction": rng.choice(["NORTHBOUND", "SOUTHBOUND"]),
            "nationalities_observed": rng.sample(_NATIONALITIES, rng.randint(1, 4)),
            "patrol_unit": f"Patrulla {rng.randint(1, 40)}",
            "remarks": rng.choice(["Sin novedad adicional", "Grupo con menores de edad", "Se observó embarcación",
                                   "Presencia de personas armadas en la trocha"]),
        },
    }


_MAKERS = (watchlist_hit, seizure, border_event)


def generate(count: int, *, seed: int = 7, now: datetime | None = None, first: int = 0) -> Iterator[dict[str, Any]]:
    """``count`` alerts, a deterministic mix for a given seed and time, numbered from ``first`` (alert ids
    come from the number: two calls with ranges apart never share one)."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not secrets
    base = now or datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    for seq in range(first, first + count):
        yield {**rng.choice(_MAKERS)(rng, seq, base), "version": 1, "lifecycle": None}


MAX_COUNT = 10_000_000  # the most `puente publish --count` takes: a benchmark's worth, not a typo's
CHUNK = 10_000  # alerts generated and sent at a time, so memory stays flat whatever the count


async def publish_synthetic(cfg: PuenteSettings, conn: KafkaConnection, count: int, seed: int,
                            first: int = 0) -> Counter[str]:
    """Publish ``count`` generated alerts (numbered from ``first``), each as its agency's adapter would:
    signed with its MAC key, and logged in as the agency when its client configuration is in its folder
    (else as ``conn``). They are generated as they are sent, ``CHUNK`` at a time."""
    alerts = generate(count, seed=seed, now=datetime.now(UTC), first=first)
    sent: Counter[str] = Counter()
    publishers: dict[str, IngressPublisher] = {}
    async with contextlib.AsyncExitStack() as stack:
        while chunk := list(itertools.islice(alerts, CHUNK)):
            by_agency: dict[str, list[dict[str, Any]]] = {}
            for alert in chunk:
                by_agency.setdefault(alert["agency"], []).append(alert)
            for agency, batch in sorted(by_agency.items()):
                if agency not in publishers:
                    publishers[agency] = await stack.enter_async_context(_publisher(cfg, conn, agency))
                sent[agency] += await publishers[agency].publish(batch)
    return sent


def _publisher(cfg: PuenteSettings, conn: KafkaConnection, agency: str) -> IngressPublisher:
    """``agency``'s publisher: its MAC key, and its own login when its folder holds one."""
    mac = Keystore(cfg.keys / "agencies" / agency).load_agency_mac(agency)
    own = party_folder(cfg.login_root, agency_principal(agency)) / CLIENT_CONFIG
    login = party_connection(cfg.login_root, agency_principal(agency), conn.timeout_s) if own.exists() else conn
    return IngressPublisher(login, agency, mac.key_id, mac, TopicNames(cfg.topic_prefix))
