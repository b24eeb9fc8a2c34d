"""Write agency export files of any size, in each agency's own format, for samples and benchmarks.

    python -m puente.dev.samplegen senafront --count 100000 --out /tmp/senafront-100k.csv
    python -m puente.dev.samplegen all --count 40 --out samples/      # one file per adapter

Records come from ``puente.dev._samples`` (seeded, fictitious) and are written as the agency's
system would: SENAFRONT as Excel's "CSV UTF-8" (byte-order mark, ';'), SENAN as pretty JSON
documents, PN as Windows-1252 fixed-width lines with header and trailer, SNM and COMBIFRON as
JSON Lines. ``--prefix`` makes record ids distinct between files of the same adapter.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from adapters.pn import LAYOUTS
from puente.dev import _samples

SUFFIX = {"senafront": ".csv", "senan": ".json", "pn": ".txt", "snm": ".jsonl", "combifron": ".jsonl"}
FILE_NAMES = {"senafront": "patrullas", "senan": "interdicciones", "pn": "incautaciones", "snm": "alertas-migratorias",
              "combifron": "mensajes-colombia"}
SENAFRONT_HEADER = ["N° Informe", "Fecha", "Hora", "Fecha del informe", "Hora del informe", "Provincia", "Sector",
                    "Lugar", "Latitud", "Longitud", "Tipo de evento", "Cantidad de personas", "Dirección",
                    "Nacionalidades", "Unidad", "Batallón", "Observaciones", "Clasificación", "Difusión", "Manejo",
                    "Texto de manejo", "Calificación"]


def _fixed(kind: str, fields: dict[str, str]) -> str:
    """One fixed-width line; values are cut to their width, as the legacy system does."""
    return "".join(str(fields.get(name, kind if name == "kind" else "")).ljust(width)[:width]
                   for name, width in LAYOUTS[kind])


def write_senafront(out: BinaryIO, rows: Iterable[dict[str, str]]) -> int:
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")
    writer = csv.writer(text, delimiter=";", lineterminator="\r\n")
    writer.writerow(SENAFRONT_HEADER)
    n = 0
    for row in rows:
        writer.writerow([row[h] for h in SENAFRONT_HEADER])
        n += 1
    text.flush()
    text.detach()
    return n


def write_json_documents(out: BinaryIO, docs: Iterable[dict[str, Any]]) -> int:
    n = 0
    for doc in docs:
        out.write(json.dumps(doc, ensure_ascii=False, indent=2).encode() + b"\n")
        n += 1
    return n


def write_json_lines(out: BinaryIO, docs: Iterable[dict[str, Any]]) -> int:
    n = 0
    for doc in docs:
        out.write(json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
        n += 1
    return n


def write_pn(out: BinaryIO, cases: Iterable[dict[str, Any]], exported: datetime) -> int:
    lines = [_fixed("H", {"system": "SIIP-DIJ", "exported": exported.strftime("%Y%m%d%H%M%S"),
                          "unit": "DIJ, SECCIÓN ESTADÍSTICA"})]
    n = 0
    for case in cases:
        n += 1
        lines.append(_fixed("S", case))
        lines += [_fixed("I", {"case": case["case"], "category": c, "item": k, "quantity": q.rjust(12), "unit": u})
                  for c, k, q, u in case["items"]]
        lines += [_fixed("P", {"case": case["case"], **p}) for p in case["persons"]]
        if len(lines) > 2000:
            out.write(("\r\n".join(lines) + "\r\n").encode("cp1252"))
            lines = []
    lines.append(_fixed("T", {"count": f"{n:08d}"}))
    out.write(("\r\n".join(lines) + "\r\n").encode("cp1252"))
    return n


def write(name: str, out: BinaryIO, count: int, *, seed: int = 2026, base: datetime | None = None,
          prefix: str = "") -> int:
    """Write ``count`` records of adapter ``name`` to ``out``; returns how many were written.

    ``base`` is Panama local time (naive); records fall in the 20 days before it.
    """
    base = base or datetime(2026, 11, 20, 12, 0)
    recs = _samples.records(name, count, seed=seed, base=base, prefix=prefix)
    if name == "senafront":
        return write_senafront(out, recs)
    if name == "senan":
        return write_json_documents(out, recs)
    if name == "pn":
        return write_pn(out, recs, base)
    return write_json_lines(out, recs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("adapter", choices=[*_samples.GENERATORS, "all"])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--base", help="latest local (Panama) time, ISO; default 2026-11-20T12:00")
    parser.add_argument("--days-ago", type=float, help="base = now minus this many days (for fresh benchmark data)")
    parser.add_argument("--prefix", default="", help="added to every record id, e.g. B1")
    parser.add_argument("--out", type=Path, required=True, help="a file, or a folder with 'all'")
    args = parser.parse_args(argv)
    base = datetime.fromisoformat(args.base) if args.base else None
    if args.days_ago is not None:
        base = datetime.now(ZoneInfo("America/Panama")).replace(tzinfo=None) - timedelta(days=args.days_ago)
    names = list(_samples.GENERATORS) if args.adapter == "all" else [args.adapter]
    for name in names:
        path = args.out / f"{FILE_NAMES[name]}{SUFFIX[name]}" if args.adapter == "all" else args.out
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as out:
            n = write(name, out, args.count, seed=args.seed, base=base, prefix=args.prefix)
        print(f"{name:<10} {n:>8} records -> {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
