"""Compatibility between schema versions: records must resolve both ways, and keep their meaning.

Backward: a reader on the newer schema reads data written with the older one.
Forward: a reader on the older schema reads data written with the newer one.

Resolution. fastavro has no static checker, so records generated from each writer schema
(every union branch and enum symbol appears over enough samples) are written and read back
under the other schema; any resolution failure is a finding.

Meaning. Resolution that succeeds can still change what a record says: rename
``markings.handling_code`` and a reader fills its default, H0, for the writer's H2. So the two
schemas are also compared as a reader resolves them, field by field, through records, arrays,
maps and union branches. A finding is a field written that the reader does not have (by name,
or by one of the reader field's aliases), a reader field filled from its default because the
writer's record has no such field, an enum symbol read as the reader's default, or a change of
logicalType, precision or scale (Avro's canonical form drops them, so the fingerprint does not
change, but a reader misreads the value), or a promotion that can change a number (a long read
as a double loses what lies beyond 53 bits). A union branch is matched as fastavro's reader
matches it: the first reader branch the written type fits, by name or by promotion, in the
reader's order; the exact type later in the list is not preferred.

The one change that passes is adding a field with a default: the new reader fills it in data
written before it existed, and an older reader skips it. The default must read as a value of its
type, as the codec reads it: a timestamp-millis default is a long, read as its datetime, and one
beyond year 9999 is a finding. And it must state nothing (null; an empty list of caveats says
there are none) unless the field says, in ``OLDER_RECORDS``, why its value is true of every older
record: a reader fills it in for records whose writers never said it, so an added
``markings.cleared_for_court`` defaulting to true would clear every alert published before it
(the writer side already refuses a record that leaves such a default unstated). ``version``,
added in v2 with 1, is one that is true: v1 had no later versions.
"""

from __future__ import annotations

from collections.abc import Iterator
from io import BytesIO
from typing import Any

from fastavro import schemaless_reader, schemaless_writer
from fastavro.utils import generate_many

from schemas._codec import default_mismatch
from schemas._registry import OLDER_RECORDS, SchemaVersion

_NAMED = frozenset({"record", "error", "enum", "fixed"})
_PROMOTIONS = {"int": ("long", "float", "double"), "long": ("float", "double"), "float": ("double",),
               "string": ("bytes",), "bytes": ("string",)}
_MEANING = ("logicalType", "precision", "scale")  # what canonical form drops and a reader depends on
# Promotions the reading type cannot hold every value of: float's significand has 24 bits, double's 53 (int to
# double, int to long and float to double are exact).
_LOSSY = frozenset({("int", "float"), ("long", "float"), ("long", "double")})


def _resolves(writer: SchemaVersion, reader: SchemaVersion, samples: int, seed_note: str) -> str | None:
    for i, record in enumerate(generate_many(writer.parsed, samples)):
        out = BytesIO()
        schemaless_writer(out, writer.parsed, record)
        out.seek(0)
        try:
            schemaless_reader(out, writer.parsed, reader.parsed)
        except Exception as exc:  # noqa: BLE001 - every resolution failure is a finding
            return f"{seed_note}: sample {i} fails: {type(exc).__name__}: {exc}"
    return None


def check_compatible(old: SchemaVersion, new: SchemaVersion, samples: int = 300) -> list[str]:
    """Problems found resolving ``old`` and ``new`` against each other; empty when compatible both ways."""
    problems = []
    for writer, reader, backward in ((old, new, True), (new, old, False)):
        note = f"{'backward' if backward else 'forward'} ({reader.label} reading {writer.label})"
        failure = _resolves(writer, reader, samples, note)
        if failure:
            problems.append(failure)
        problems += [f"{note}: {finding}" for finding in _Meaning(writer, reader, backward).findings()]
    return problems


class _Meaning:
    """What a reader on ``reader`` gets, compared with what ``writer`` wrote, field by field.

    ``backward`` says the reader is the newer schema: then a reader field the writer lacks is an
    added field, not a finding, and attribute changes are reported (once, in this direction).
    Otherwise a writer field the reader lacks is the added field.
    """

    def __init__(self, writer: SchemaVersion, reader: SchemaVersion, backward: bool) -> None:
        self.writer, self.reader, self.backward = writer, reader, backward
        self._named = (writer.parsed.get("__named_schemas", {}), reader.parsed.get("__named_schemas", {}))
        self._open: set[tuple[str, str]] = set()  # record pairs being compared, for records that hold themselves

    def findings(self) -> list[str]:
        return list(self._compare(self.writer.parsed, self.reader.parsed, ""))

    def _compare(self, w: Any, r: Any, path: str) -> Iterator[str]:
        w, r = _node(w, self._named[0]), _node(r, self._named[1])
        if isinstance(w, list):
            yield from self._writer_union(w, r, path)
            return
        if isinstance(r, list):
            branch = _match(w, [_node(b, self._named[1]) for b in r], self._named)
            if branch is not None:  # no branch: resolution fails, and the samples say so
                yield from self._compare(w, branch, path)
            return
        if self.backward:
            for attr in _MEANING:
                was, now = _attr(w, attr), _attr(r, attr)
                if was != now:
                    yield (f"{path or 'the record'}: {attr} changes from {was} ({self.writer.label}) to {now} "
                           f"({self.reader.label}); the fingerprint does not see it, and readers misread the value")
        kind = _kind(w)
        if kind != _kind(r):  # a type change: resolution fails, or promotes
            if (kind, _kind(r)) in _LOSSY:
                yield (f"{path or 'the record'}: {self.writer.label}'s {kind} is read by {self.reader.label} as "
                       f"{_kind(r)}, which does not hold every {kind}: readers may read another number")
            return
        if kind in ("record", "error"):
            yield from self._record(w, r, path)
        elif kind == "enum":
            yield from self._enum(w, r, path)
        elif kind == "array":
            yield from self._compare(w["items"], r["items"], f"{path}[]")
        elif kind == "map":
            yield from self._compare(w["values"], r["values"], f"{path}{{}}")

    def _writer_union(self, branches: list[Any], r: Any, path: str) -> Iterator[str]:
        reader_branches = [_node(b, self._named[1]) for b in (r if isinstance(r, list) else [r])]
        several = sum(b != "null" for b in branches) > 1
        for branch in branches:
            branch = _node(branch, self._named[0])
            match = _match(branch, reader_branches, self._named)
            where = f"{path}({_short(branch)})" if several else path
            if match is None:
                yield f"{where}: {self.reader.label} has no union branch for {self.writer.label}'s {_short(branch)}"
            else:
                yield from self._compare(branch, match, where)

    def _record(self, w: dict[str, Any], r: dict[str, Any], path: str) -> Iterator[str]:
        pair = (w["name"], r["name"])
        if pair in self._open:  # a record that holds itself: its fields are being compared further up
            return
        self._open.add(pair)
        try:
            yield from self._fields(w, r, path)
        finally:
            self._open.discard(pair)

    def _fields(self, w: dict[str, Any], r: dict[str, Any], path: str) -> Iterator[str]:
        read: set[str] = set()
        for field in w["fields"]:
            where = f"{path}.{field['name']}".lstrip(".")
            match = next((f for f in r["fields"] if field["name"] in (f["name"], *f.get("aliases", ()))), None)
            if match is not None:
                read.add(match["name"])
                yield from self._compare(field["type"], match["type"], where)
            elif self.backward:  # in the forward direction, a field the newer writer adds: older readers skip it
                yield (f"{where}: written by {self.writer.label}, but {self.reader.label} has no such field "
                       f"(removed, or renamed without an alias)")
        for field in r["fields"]:
            if field["name"] in read:
                continue
            where = f"{path}.{field['name']}".lstrip(".")
            if self.backward:  # a field the newer reader adds: it fills in the default, which must read as its type
                bad = default_mismatch(self.reader.parsed, field) if "default" in field else None
                if bad is not None:
                    yield (f"{where}: {self.reader.label} fills in its default where {self.writer.label} does not "
                           f"write it, and the default is not a value of its type ({bad})")
                elif "default" in field and not _states_nothing(field["default"]) and not _older_records(field):
                    yield (f"{where}: {self.reader.label} fills in {_shown(field['default'])} for every record "
                           f"{self.writer.label} wrote, which never stated it; give the added field a default that "
                           f"states nothing (null), or say in \"{OLDER_RECORDS}\" why that value is true "
                           "of every older record")
                continue
            got = f"reads its default, {field['default']!r}," if "default" in field else "has no default"
            yield f"{where}: {self.reader.label} {got} as {self.writer.label} does not write it (removed, or renamed)"

    def _enum(self, w: dict[str, Any], r: dict[str, Any], path: str) -> Iterator[str]:
        for symbol in w["symbols"]:
            if symbol in r["symbols"]:
                continue
            if "default" in r:
                yield (f"{path}: symbol {symbol} written by {self.writer.label} is read by {self.reader.label} "
                       f"as its default {r['default']}")
            else:
                yield f"{path}: symbol {symbol} written by {self.writer.label} is unknown to {self.reader.label}"


def _states_nothing(default: Any) -> bool:
    """Whether a default says nothing a writer did not: only null (an empty list of caveats says there are none, the
    loosest marking; the writer side holds records to the same rule)."""
    return default is None


def _older_records(field: dict[str, Any]) -> bool:
    """Whether ``field`` says, in ``OLDER_RECORDS``, why its default is true of every record written before it."""
    why = field.get(OLDER_RECORDS)
    return isinstance(why, str) and bool(why.strip())


def _shown(default: Any) -> str:
    """A default as a finding names it: short (a schema's default is the schema author's text, not alert data)."""
    text = repr(default)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _node(schema: Any, named: dict[str, Any]) -> Any:
    """A schema node with a named type's reference replaced by its definition."""
    if isinstance(schema, str):
        return named.get(schema, schema)
    if isinstance(schema, dict) and not isinstance(schema["type"], str):
        return _node(schema["type"], named)
    return schema


def _kind(node: Any) -> str:
    return node if isinstance(node, str) else str(node["type"])


def _attr(node: Any, name: str) -> Any:
    return node.get(name) if isinstance(node, dict) else None


def _short(node: Any) -> str:
    return str(node["name"]).rpartition(".")[2] if _kind(node) in _NAMED else _kind(node)


def _match(w: Any, branches: list[Any], named: tuple[dict[str, Any], dict[str, Any]]) -> Any | None:
    """The reader branch a writer's value resolves to, as fastavro's read_union picks it: the first branch ``w``
    fits, by name or by promotion, in the reader's order. An exact type later in the list is not preferred
    (``[null, double, long]`` reads a long as a double)."""
    return next((b for b in branches if _fits(w, b, named)), None)


def _fits(w: Any, r: Any, named: tuple[dict[str, Any], dict[str, Any]]) -> bool:
    """Whether a value written as ``w`` is read as ``r``: fastavro's match_types, whose rules these are."""
    w, r = _node(w, named[0]), _node(r, named[1])
    if isinstance(w, list) or isinstance(r, list):
        return True  # a union within: its branch is matched when read
    kind, other = _kind(w), _kind(r)
    if kind in _NAMED and other in _NAMED:  # by unqualified name or an alias, as fastavro compares them
        if kind == other == "fixed" and w["size"] != r["size"]:
            return False
        short, aliases = str(w["name"]).rpartition(".")[2], r.get("aliases", ())
        return short == str(r["name"]).rpartition(".")[2] or w["name"] in aliases or short in aliases
    if kind == other == "array":
        return _fits(w["items"], r["items"], named)
    if kind == other == "map":
        return _fits(w["values"], r["values"], named)
    return kind == other or other in _PROMOTIONS.get(kind, ())
