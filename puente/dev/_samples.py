"""Seeded generators of realistic, fictitious agency records, in each agency's own shape.

Every person, unit, vessel and operation here is invented. Records are what the agencies'
systems would export (Spanish labels, accents, two surnames, DMS positions, legacy codes),
and every one of them maps to a valid alert: ``samplegen`` writes them in each format.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

from adapters._codes import norm_key

Rng = random.Random

GIVEN_M = ["José Luis", "Juan Carlos", "Andrés Felipe", "Yeison", "Darwin", "Wilmer", "Kervin", "Jhon Freddy",
           "Luis Ángel", "Héctor", "Iván Darío", "Mohamed", "Jean-Baptiste", "Raúl", "Efraín", "Édgar"]
GIVEN_F = ["María Fernanda", "Ana Lucía", "Génesis", "Luz Marina", "Rosa Elena", "Yuleisy", "Dayana", "Inés",
           "Mónica Patricia", "Sofía", "Mariela", "Nathalie"]
SURNAMES = ["Pérez", "Gómez", "Rodríguez", "Castillo", "Mosquera", "Palacios", "Guerrero", "Díaz", "Rivas", "Núñez",
            "Martínez", "Ospina", "Castro", "Benítez", "Hurtado", "Valencia", "Sánchez", "Ibáñez", "Muñoz", "Cuesta",
            "Peña", "Quiñones", "Córdoba", "Ávila", "Joseph", "Pierre", "González", "Ramírez"]
NATIONALITIES = ["COL", "VEN", "ECU", "HTI", "CUB", "CHN", "IND", "AFG", "CMR", "PER", "NPL", "BGD", "SEN"]
SPANISH_PLURAL = {"COL": "colombianos", "VEN": "venezolanos", "ECU": "ecuatorianos", "HTI": "haitianos",
                  "CUB": "cubanos", "CHN": "chinos", "IND": "indios", "AFG": "afganos", "CMR": "cameruneses",
                  "PER": "peruanos", "NPL": "nepalíes", "BGD": "bangladesíes", "SEN": "senegaleses"}

# (province as typed, sector as typed, place, latitude, longitude)
BORDER_SITES = [
    ("Darién", "Bajo Chiquito", "Bajo Chiquito", 8.040, -77.600),
    ("Darién", "DARIEN_LAJAS_BLANCAS", "Estación de Recepción Migratoria Lajas Blancas", 8.190, -77.740),
    ("Darién", "Yaviza", "Yaviza, muelle", 8.155, -77.690),
    ("Darién", "Boca de Cupe", "Boca de Cupe", 8.030, -77.580),
    ("Darién", "Palo de las Letras", "Hito Palo de las Letras", 7.830, -77.350),
    ("Darién", "Jaqué", "Jaqué, desembocadura del río", 7.515, -78.165),
    ("Comarca Guna Yala", "Puerto Obaldía", "Puerto Obaldía", 8.667, -77.418),
    ("Guna Yala", "La Miel", "La Miel, sendero a Sapzurro", 8.660, -77.370),
    ("Chiriquí", "Paso Canoas", "Paso Canoas, trocha del cementerio", 8.533, -82.839),
    ("Chiriquí", "Río Sereno", "Río Sereno", 8.820, -82.860),
    ("Bocas del Toro", "Guabito", "Guabito, puente sobre el Sixaola", 9.495, -82.611),
]
EVENTS = [("Flujo migratorio", 5), ("FLUJO MIGRATORIO", 1), ("Cruce irregular", 2), ("Avistamiento de grupo armado", 1),
          ("Enfrentamiento", 1), ("Pista clandestina", 1)]
REMARKS = [
    "Sin novedad adicional.",
    "Grupo con {m} menores de edad; se coordinó atención con SNM y SENNIAF.",
    "Presencia de personas armadas en la trocha; se reforzó el puesto.",
    "Se observó embarcación tipo piragua con motor fuera de borda.",
    "Guía local cobraba USD 150 por persona; se informó a la Fiscalía.",
    "Migrantes reportan asalto en el sector de \"La Llorona\"; dos heridos leves.",
    "Huellas recientes de 8 a 10 personas con botas; rumbo sur.\nSe mantiene vigilancia; patrulla de relevo en camino.",
    "Claro de 600 m en la selva; restos de combustible de aviación; coordenadas tomadas con GPS.",
]
PATROLS = ["Patrulla Tigre 3", "Pelotón Halcón 2", "Sección Jaguar", "Patrulla Águila 7", "Pelotón Puma 1"]
BATTALIONS = ["Batallón Oriental", "Batallón de Darién, 3.ª compañía", "Batallón Occidental", ""]
SEA_SITES = [
    ("Darién", "12 mn al suroeste de Jaqué", 7.35, -78.30), ("Veraguas", "25 mn al sur de Isla Coiba", 7.00, -81.75),
    ("Chiriquí", "frente a Punta Burica", 7.90, -82.95), ("Panamá", "Archipiélago de Las Perlas", 8.45, -79.00),
    ("Colón", "Costa Arriba de Colón", 9.65, -79.40), ("Guna Yala", "cerca de Cabo Tiburón", 8.75, -77.30),
    ("Bocas del Toro", "Isla Escudo de Veraguas", 9.10, -81.55), ("Los Santos", "Punta Mala", 7.47, -80.00),
]
VESSELS = [("lancha rápida", 6), ("semisumergible", 1), ("barco pesquero", 2), ("velero", 1), ("buque de carga", 1)]
VESSEL_NAMES = [None, "Sin nombre", "La Negra", "Doña Chepa", "El Rey del Pacífico", "Mar Azul", "Niña Bonita"]
UNITS_SENAN = ["Grupo Aeronaval Oriental", "Fuerza de Tarea Conjunta Pacífico", "Base Aeronaval de Bahía Piña",
               "Grupo Aeronaval Noroccidental"]
OPERATIONS = [None, "Escudo Marino", "Tormenta Marina", "Patria", "Relámpago del Caribe"]
PN_SITES = [("COLON", "PUERTO DE MANZANILLO", 9.36, -79.88), ("COLON", "ZONA LIBRE DE COLÓN", 9.35, -79.90),
            ("PANAMA", "PUERTO DE BALBOA", 8.95, -79.57), ("PANAMA", "AVENIDA ESPAÑA", 8.99, -79.51),
            ("PANAMA", "TOCUMEN CARGA", 9.07, -79.39), ("CHIRIQUI", "PASO CANOAS", 8.53, -82.84),
            ("PANAMA OESTE", "CORREDOR DE ARRAIJÁN", 8.93, -79.66), ("COLON", "SANTA ISABEL", 9.53, -79.17),
            ("BOCAS DEL TORO", "CHANGUINOLA", 9.43, -82.52), ("VERAGUAS", "SANTIAGO, VÍA INTERAMERICANA", 8.10, -80.98)]
PORTS = [("PTY", 8), ("PASO_CANOAS", 2), ("GUABITO", 1), ("DAV", 1), ("PUERTO_OBALDIA", 1), ("RIO_SERENO", 1)]
FLIGHTS = ["CM 204", "CM 827", "AV 243", "CM 478", "UA 1056", "CM 130", "IB 6341"]
COL_PLACES = [("Chocó", "Capurganá", 8.633, -77.350), ("Chocó", "Sapzurro", 8.660, -77.360),
              ("Antioquia", "Necoclí", 8.430, -76.780), ("Antioquia", "Turbo", 8.090, -76.730),
              ("Chocó", "Acandí", 8.510, -77.280), ("Chocó", "Juradó", 7.100, -77.760)]


def _weighted(rng: Rng, options: list[tuple[Any, int]]) -> Any:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def _when(rng: Rng, base: datetime, days: int = 20) -> datetime:
    """A local (Panama) time in the ``days`` before ``base``, to the minute."""
    return (base - timedelta(minutes=rng.randint(60, days * 24 * 60))).replace(second=0, microsecond=0)


def _person(rng: Rng, base: datetime, nationality: str | None = None) -> dict[str, Any]:
    sex = rng.choice("MMMF")
    nats = [nationality or rng.choice(NATIONALITIES)]
    if rng.random() < 0.2:
        nats.append(rng.choice(["ESP", "ITA", "USA", "PAN", "VEN"]))
    born = date(1960, 1, 1) + timedelta(days=rng.randint(0, 16000))
    doc = {"tipo": rng.choice(["pasaporte", "pasaporte", "cédula"]), "pais": nats[0],
           "numero": f"{rng.choice('ABCPRX')}{rng.choice('ABCDEFGHJK')}{rng.randint(1000000, 9999999)}"}
    if doc["tipo"] == "pasaporte":
        doc["vence"] = (base.date() + timedelta(days=rng.randint(90, 3000))).isoformat()
    else:
        doc["numero"] = str(rng.randint(10_000_000, 1_199_999_999))
    return {"nombres": rng.choice(GIVEN_M if sex == "M" else GIVEN_F), "primer_apellido": rng.choice(SURNAMES),
            "segundo_apellido": rng.choice(SURNAMES), "fecha_nacimiento": born.isoformat(), "sexo": sex,
            "nacionalidades": list(dict.fromkeys(nats)), "documentos": [doc]}


def _marking_block(rng: Rng, classes: list[str]) -> dict[str, Any] | None:
    if rng.random() < 0.3:
        return None
    handling = _weighted(rng, [("H0", 6), ("H1", 2), ("H2", 1)])
    return {"clasificacion": rng.choice(classes), "difusion": rng.choice([["COL", "USA", "FEAN"], ["USA", "FEAN"],
                                                                         ["COL", "FEAN"], ["COL", "USA", "CRI"]]),
            "manejo": handling, "calificacion": rng.choice(["A1", "B2", "B2", "B3", "C3"]),
            **({"consentimiento": ["FEAN"]} if handling == "H2" else {})}


# ---- one generator per agency: (sequence number) -> record in the agency's shape --------------------
def senafront(rng: Rng, seq: int, base: datetime, prefix: str = "") -> dict[str, str]:
    province, sector, place, lat, lon = rng.choice(BORDER_SITES)
    event = _weighted(rng, EVENTS)
    when = _when(rng, base)
    report = when + timedelta(minutes=rng.randint(20, 600))
    lat, lon = lat + rng.uniform(-0.03, 0.03), lon + rng.uniform(-0.03, 0.03)
    flow = "migra" in event.lower() or "cruce" in event.lower()
    count = rng.randint(8, 900) if flow else rng.randint(2, 40)
    nats = rng.sample(NATIONALITIES[:9], rng.randint(1, 3)) if flow else ["COL"]
    row = {
        "N° Informe": f"IP-{prefix}{norm_key(province)[:3]}-{when.year}-{seq:06d}",
        "Fecha": when.strftime("%d/%m/%Y"), "Hora": when.strftime("%H:%M"),
        "Fecha del informe": report.strftime("%d/%m/%Y"), "Hora del informe": report.strftime("%H:%M"),
        "Provincia": province, "Sector": sector, "Lugar": place,
        "Latitud": _dms(lat, "NS") if seq % 2 else f"{lat:.5f}",
        "Longitud": _dms(lon, "EO") if seq % 2 else f"{lon:.5f}",
        "Tipo de evento": event, "Cantidad de personas": str(count),
        "Dirección": rng.choice(["Norte", "Norte", "Sur", "Hacia Panamá"]) if flow else "",
        "Nacionalidades": ", ".join(SPANISH_PLURAL[n] for n in nats) if seq % 3 else "; ".join(nats),
        "Unidad": rng.choice(PATROLS), "Batallón": rng.choice(BATTALIONS),
        "Observaciones": rng.choice(REMARKS).format(m=rng.randint(2, 60)),
        "Clasificación": "", "Difusión": "", "Manejo": "", "Texto de manejo": "", "Calificación": "",
    }
    roll = rng.random()
    if roll < 0.15:
        row |= {"Clasificación": "Confidencial", "Difusión": "REL TO COL, USA", "Calificación": "B2"}
    elif roll < 0.22:
        row |= {"Difusión": "SOLO PANAMÁ", "Manejo": "H1"}
    elif roll < 0.26:
        row |= {"Manejo": "H3", "Texto de manejo": "No difundir a medios de comunicación ni a terceros"}
    return row


def _dms(value: float, hemispheres: str) -> str:
    hemi = hemispheres[0] if value >= 0 else hemispheres[1]
    tenths = round(abs(value) * 36000)  # whole tenths of a second, so that 59.96" never prints as 60.0"
    deg, rest = divmod(tenths, 36000)
    minutes, tenth_seconds = divmod(rest, 600)
    return f"{deg}°{minutes:02d}'{tenth_seconds / 10:04.1f}\"{hemi}"


def senan(rng: Rng, seq: int, base: datetime, prefix: str = "") -> dict[str, Any]:
    zone, ref, lat, lon = rng.choice(SEA_SITES)
    when = _when(rng, base)
    vessel = _weighted(rng, VESSELS)
    packages = rng.randint(40, 3000)
    cargo: list[dict[str, Any]] = [{"tipo": "droga", "descripcion": rng.choice(["cocaína", "cocaína", "marihuana"]),
                                    "cantidad": packages, "unidad": "paquetes", "peso_kg": round(packages * 1.04, 1)}]
    if rng.random() < 0.25:
        cargo.append({"tipo": "arma", "descripcion": rng.choice(["fusil", "pistola"]), "cantidad": rng.randint(1, 6),
                      "unidad": "unidades"})
        cargo.append({"tipo": "munición", "descripcion": "cartuchos", "cantidad": rng.randint(30, 900),
                      "unidad": "cartuchos"})
    crew = [_person(rng, base, rng.choice(["COL", "COL", "ECU", "PAN"])) for _ in range(rng.randint(0, 4))]
    for member in crew:
        member["detenido"] = rng.random() > 0.1
    doc: dict[str, Any] = {
        "numero_operacion": f"FTC-{prefix}{when.year}-{seq:06d}",
        "fecha_hora": when.strftime("%Y-%m-%dT%H:%M:00-05:00"),
        "fecha_hora_reporte": (when + timedelta(hours=rng.randint(1, 10))).strftime("%Y-%m-%dT%H:%M:00-05:00"),
        "unidad": rng.choice(UNITS_SENAN), "operacion": rng.choice(OPERATIONS),
        "posicion": {"latitud": round(lat + rng.uniform(-0.25, 0.25), 5),
                     "longitud": round(lon + rng.uniform(-0.25, 0.25), 5), "zona": zone, "referencia": ref},
        "embarcacion": {"tipo": vessel, "nombre": rng.choice(VESSEL_NAMES),
                        "matricula": rng.choice(["S/M", f"PA-{rng.randint(10000, 99999)}-PE"]),
                        "bandera": rng.choice(["COL", "PAN", "ECU", None]), "motores": rng.randint(1, 4)},
        "carga": cargo,
        "tripulacion": crew,
    }
    marks = _marking_block(rng, ["CONFIDENCIAL", "CONFIDENCIAL", "RESTRINGIDO", "SECRETO"])
    if marks:
        doc["marcado"] = marks
    return doc


def pn(rng: Rng, seq: int, base: datetime, prefix: str = "") -> dict[str, Any]:
    province, place, lat, lon = rng.choice(PN_SITES)
    when = _when(rng, base)
    drug = rng.choice(["COCAINA", "COCAINA", "MARIHUANA", "HEROINA"])
    amount, unit = (rng.randint(1, 900), rng.randint(0, 9)), rng.choice(["KG", "PAQ"])
    items = [("DR", drug, f"{amount[0]}.{amount[1]}" if unit == "KG" else str(amount[0]), unit)]  # whole packages
    if rng.random() < 0.3:
        items.append(("AR", rng.choice(["PISTOLA", "FUSIL", "REVOLVER"]), str(rng.randint(1, 5)), "UNI"))
    if rng.random() < 0.2:
        items.append(("EF", "DOLARES", str(rng.randint(5, 900) * 100), "USD"))
    persons = []
    for _ in range(rng.randint(0, 3)):
        p = _person(rng, base, rng.choice(["PAN", "PAN", "COL", "VEN"]))
        upper = rng.random() < 0.5  # the old screens typed names in capitals, with or without accents
        persons.append({"surname1": p["primer_apellido"].upper() if upper else p["primer_apellido"],
                        "surname2": p["segundo_apellido"].upper() if upper else p["segundo_apellido"],
                        "given": p["nombres"].upper() if upper else p["nombres"],
                        "born": p["fecha_nacimiento"].replace("-", ""), "sex": p["sexo"],
                        "nationality": p["nacionalidades"][0], "doc_type": "PA" if rng.random() < 0.5 else "CE",
                        "doc_number": f"{rng.randint(1, 9)}-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
                        "doc_country": p["nacionalidades"][0]})
    marks = rng.random()
    # Drawn in the order they always were, so that a seed still gives the same cases.
    # A couple of km around the place: wider, Balboa's positions crossed the canal into Panamá Oeste.
    lat_text, lon_text = f"{lat + rng.uniform(-0.02, 0.02):+09.5f}", f"{lon + rng.uniform(-0.02, 0.02):+010.5f}"
    unit_name = rng.choice(["DIJ COLÓN", "DIJ CHIRIQUÍ", "FEAN", "DIJ PANAMÁ NORTE", "DNIA"])
    operation = rng.choice(["", "", "OPERACION CENTINELA", "OPERACION TORMENTA"])
    conveyance = rng.choice(["VH", "CA", "", "LA"])
    plate = f"{rng.choice('ABCDE')}{rng.randint(100000, 999999)}"
    return {
        "case": f"{prefix or 'DIJ'}-{when.strftime('%y')}-{seq:07d}"[-14:],
        "date": when.strftime("%Y%m%d"), "time": when.strftime("%H%M"), "province": province,
        "place": place, "lat": lat_text, "lon": lon_text, "unit": unit_name, "operation": operation,
        # a plate and a flag belong to a conveyance: a case without one has neither (the adapter refuses them alone)
        "conveyance": conveyance, "plate": plate if conveyance else "", "flag": "PAN" if conveyance else "",
        "classification": "S" if marks < 0.05 else ("R" if marks < 0.2 else ""),
        "handling": "H2" if marks < 0.05 else "", "grading": "A2" if marks > 0.9 else "",
        "release": "USA FEAN" if marks > 0.8 else "", "items": items, "persons": persons,
    }


def snm(rng: Rng, seq: int, base: datetime, prefix: str = "") -> dict[str, Any]:
    port = _weighted(rng, PORTS)
    when = _when(rng, base).replace(second=rng.randint(0, 59))
    lst = _weighted(rng, [("INTERPOL_RED_NOTICE", 2), ("notificación roja", 1), ("PAN_NATIONAL", 3),
                          ("impedimento de entrada", 1), ("USA_PARTNER", 2), ("COL_PARTNER", 2), ("INTERPOL_SLTD", 1)])
    v = _person(rng, base)
    if rng.random() < 0.15:  # some posts send both surnames in one field
        v["apellidos"] = f"{v.pop('primer_apellido')} {v.pop('segundo_apellido')}"
    doc: dict[str, Any] = {
        "id_control": f"{port[:3]}-{prefix}{when.strftime('%Y%m%d')}-{seq:06d}", "puesto": port,
        "fecha_hora": when.strftime("%Y-%m-%d %H:%M:%S"),
        "viajero": v,
        "coincidencia": {"lista": lst, "motivo": rng.choice(["nombre y fecha de nacimiento", "número de pasaporte",
                                                            "biometría facial"]),
                         "puntaje": round(rng.uniform(0.72, 1.0), 3)},
        "riesgo": (risk := rng.choice(["bajo", "medio", "alto", "alto", "crítico"])),
        "accion": rng.choice(["admitido", "inspección secundaria"] if risk in ("bajo", "medio")
                             else ["inspección secundaria", "inadmitido", "aprehendido"]),
    }
    if port in ("PTY", "DAV"):
        doc["vuelo"] = rng.choice(FLIGHTS)
    else:
        doc["cruce"] = f"ventanilla {rng.randint(1, 6)}"
    marks = _marking_block(rng, ["RESTRINGIDO", "RESTRINGIDO", "CONFIDENCIAL"])
    if marks and rng.random() < 0.5:
        doc["marcado"] = marks
    return doc


def combifron(rng: Rng, seq: int, base: datetime, prefix: str = "") -> dict[str, Any]:
    kind = _weighted(rng, [("EVENTO_FRONTERA", 3), ("INCAUTACION", 2), ("ALERTA_MIGRATORIA", 2)])
    province, place, lat, lon = rng.choice(COL_PLACES)
    when = _when(rng, base)
    entity = {"EVENTO_FRONTERA": rng.choice(["EJC", "ARC"]), "INCAUTACION": rng.choice(["ARC", "PONAL"]),
              "ALERTA_MIGRATORIA": rng.choice(["MIGRACION", "DIJIN"])}[kind]
    consent = rng.choice([["FEAN"], ["FEAN"], ["FEAN", "USA"], []])
    msg: dict[str, Any] = {
        "version": "1.0", "id_mensaje": f"COL-{entity}-{prefix}{when.year}-{seq:06d}", "tipo": kind, "entidad": entity,
        "fecha_evento": when.strftime("%Y-%m-%dT%H:%M:00-05:00"),
        "fecha_envio": (when + timedelta(hours=rng.randint(1, 12))).strftime("%Y-%m-%dT%H:%M:00-05:00"),
        "ubicacion": {"latitud": round(lat + rng.uniform(-0.02, 0.02), 5),
                      "longitud": round(lon + rng.uniform(-0.02, 0.02), 5), "provincia": province, "lugar": place},
        "restricciones": {"clasificacion": rng.choice(["RESTRINGIDA", "RESERVADA", "RESERVADA"]),
                          "difusion": ["COL", "FEAN"] + (["USA"] if "USA" in consent else []),
                          "manejo": rng.choice(["H2", "H2", "H1"]), "consentimiento": consent,
                          "calificacion": rng.choice(["A2", "B2", "B3"])},
    }
    if kind == "EVENTO_FRONTERA":
        event = rng.choice(["GRUPO_ARMADO", "FLUJO_MIGRATORIO", "PISTA_CLANDESTINA", "CRUCE"])
        flow = event in ("FLUJO_MIGRATORIO", "CRUCE")
        people = rng.randint(20, 400) if flow else rng.randint(2, 30)
        msg["contenido"] = {"tipo_evento": event, "cantidad_personas": people,
                            "direccion": rng.choice(["HACIA_PANAMA", "NORTE"]),
                            "nacionalidades": rng.sample(NATIONALITIES[:6], 2) if flow else ["COL"],
                            "observaciones": "Información de fuente humana; corroborada por sobrevuelo."}
    elif kind == "INCAUTACION":
        captured = [_person(rng, base, "COL") for _ in range(rng.randint(0, 2))]
        msg["contenido"] = {"elementos": [{"tipo": "droga", "descripcion": "clorhidrato de cocaína",
                                           "cantidad": rng.randint(50, 4000), "unidad": "kg"}],
                            "medio": {"tipo": "semisumergible" if rng.random() < 0.2 else "lancha rápida",
                                      "bandera": "COL"},
                            "capturados": [{**{k: v for k, v in p.items() if "apellido" not in k},
                                            "apellidos": f"{p['primer_apellido']} {p['segundo_apellido']}"}
                                           for p in captured],
                            "operacion": rng.choice(["Orión", "Armada del Pacífico", None])}
    else:
        msg["ubicacion"] = {"provincia": "Guna Yala", "sector": "Puerto Obaldía", "lugar": "Puerto Obaldía"}
        person = _person(rng, base, "COL")
        msg["contenido"] = {"persona": {**{k: v for k, v in person.items() if "apellido" not in k},
                                        "apellidos": f"{person['primer_apellido']} {person['segundo_apellido']}"},
                            "lista": "COL_PARTNER", "propietario": "COL", "motivo": "orden de captura vigente",
                            "riesgo": rng.choice(["alto", "crítico", "medio"]), "puesto": "PUERTO_OBALDIA",
                            "accion": "inspección secundaria"}
    return msg


GENERATORS = {"senafront": senafront, "senan": senan, "pn": pn, "snm": snm, "combifron": combifron}


def records(name: str, count: int, *, seed: int, base: datetime, prefix: str = "") -> Iterator[Any]:
    """``count`` records for adapter ``name``, deterministic for a seed and base time (Panama local)."""
    rng = random.Random(f"{name}:{seed}")  # noqa: S311 - fictitious data, not secrets
    make = GENERATORS[name]
    for seq in range(1, count + 1):
        yield make(rng, seq, base, prefix)
