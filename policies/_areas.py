"""Area outlines (``areas.yaml``): where a province, comarca or border sector lies, and whether a point is in it.

An agreement's area condition trusts an alert's labels only as far as its
coordinates agree with them; adapters may ask the same question of a record.
Outlines are coarse (the head of ``areas.yaml`` states their source and
precision). The geometry is planar point-in-polygon over latitude and
longitude: sound for areas a few hundred km across, far from the poles and
the antimeridian, which is where Puente's areas are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from policies._model import Number, OptionalWholeNumber, Prose, Text, WholeNumber

# Matched as written (no whitespace stripping): ``"DARIEN "`` is refused, not made a second ``DARIEN``
# whose outline would replace the real one.
AreaCode = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
# A number as YAML reads it (not `true`, not "9.1"), finite, within bounds.
Latitude = Annotated[Number, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[Number, Field(ge=-180, le=180, allow_inf_nan=False)]
MAX_CORNERS = 1_000  # in one outline, all its rings together: coarse outlines (``precision_km``) take a few dozen
MAX_FILED = 200_000  # edges the outlines of one file file in their latitude bands in all (``_banded``): memory
Ring = Annotated[list[tuple[Latitude, Longitude]], Field(min_length=3, max_length=MAX_CORNERS)]
Kind = Literal["province", "border sector"]
_FAR = 1e12  # beyond any coordinate, in degrees or in the units of a test's polygon


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _twice_area(ring: Sequence[tuple[float, float]]) -> float:
    return sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(ring, (*ring[1:], ring[0]), strict=True))


class AreaEntry(_Frozen):
    """One province, comarca or border sector: its name and outline (rings of [latitude, longitude])."""

    name: Text
    note: Text | None = None
    precision_km: OptionalWholeNumber = Field(default=None, ge=1, le=100)  # when coarser than the file's
    outline: list[Ring] = Field(min_length=1, max_length=100)

    @field_validator("outline")
    @classmethod
    def _rings_enclose(cls, rings: list[list[tuple[float, float]]]) -> list[list[tuple[float, float]]]:
        """Each ring encloses an area, and the outline is one a lookup answers in a bounded time: at most
        ``MAX_CORNERS`` corners: a lookup tests at most one band's edges, so at most that many, and whether two
        outlines meet looks up every corner of each in the other, so at most a million edges tested, once for each
        pair. A saw tooth of long edges across an outline of 170,000 corners made one decision take an hour.
        What its bands hold in all is bounded with the file's other outlines (``AreasFile``)."""
        for i, ring in enumerate(rings):
            if abs(_twice_area(ring)) < 1e-9:
                raise ValueError(f"ring {i} encloses no area (its points lie on one line)")
        corners = sum(len(ring) for ring in rings)
        if corners > MAX_CORNERS:
            raise ValueError(f"has {corners:,} corners in all its rings; at most {MAX_CORNERS:,} (outlines are coarse: "
                             "simplify it to the file's precision)")
        return rings


class AreasFile(_Frozen):
    """areas.yaml: the outline of every province and border sector code an agreement's area may name."""

    source: Prose
    precision_km: WholeNumber = Field(ge=1, le=100)
    provinces: dict[AreaCode, AreaEntry] = {}
    border_sectors: dict[AreaCode, AreaEntry] = {}

    @model_validator(mode="after")
    def _one_kind_per_code(self) -> AreasFile:
        both = sorted(set(self.provinces) & set(self.border_sectors))
        if both:
            raise ValueError(f"{', '.join(both)} cannot be both a province and a border sector")
        return self

    @model_validator(mode="after")
    def _bands_bounded(self) -> AreasFile:
        """What the outlines' latitude bands hold in all (``_banded``), at most ``MAX_FILED`` edges: an edge is
        filed in every band its latitudes cross, so long edges across much of an outline's height (a saw tooth)
        are filed hundreds of times each, and a file of them would take gigabytes. A coarse map files each edge
        a few times; so does a row of islands."""
        filed = {code: sum(len(band) for band in _banded(_floats(entry.outline))[1])
                 for code, entry in (*self.provinces.items(), *self.border_sectors.items())}
        if sum(filed.values()) > MAX_FILED:
            most = max(filed, key=lambda code: filed[code])
            raise ValueError(f"the outlines' edges cross {sum(filed.values()):,} latitude bands in all, at most "
                             f"{MAX_FILED:,}: long edges across much of an outline's height (a saw tooth, say; "
                             f"the most in {most}, {filed[most]:,}): simplify them")
        return self


def point_in_polygon(lat: float, lon: float, ring: Sequence[tuple[float, float]]) -> bool:
    """Whether (lat, lon) lies inside the polygon whose corners are ``ring`` (closed implicitly); even-odd rule.

    A point exactly on an edge may count either way: outlines are far coarser
    than that. A coordinate that is not a finite number is inside nothing.
    """
    if not (_is_number(lat) and _is_number(lon)):
        return False
    inside = False
    y0, x0 = ring[-1]
    for y1, x1 in ring:
        # Count the edges a ray from the point towards east crosses.
        if (y1 > lat) != (y0 > lat) and lon < x1 + (lat - y1) * (x0 - x1) / (y0 - y1):
            inside = not inside
        y0, x0 = y1, x1
    return inside


Edge = tuple[float, float, float, float]  # lat, lon of one end, lat, lon of the other
_BANDS = 32  # the fewest horizontal bands an outline's edges are filed under: a lookup tests a few edges, not all


@dataclass(frozen=True, slots=True)
class Outline:
    """One compiled outline: its rings, their bounding box and their edges filed by latitude band.

    ``contains`` gives the answer ``point_in_polygon`` gives over every ring
    (even-odd over all the edges), but tests only the edges that cross the
    point's band: a decision asks this on the hot path.
    """

    code: str
    kind: Kind
    name: str
    precision_km: int
    rings: tuple[tuple[tuple[float, float], ...], ...]
    box: tuple[float, float, float, float]  # south, north, west, east
    bands: tuple[tuple[Edge, ...], ...] = field(repr=False)

    def contains(self, lat: float, lon: float) -> bool:
        """Whether the point lies inside the outline (inside an odd number of its rings)."""
        south, north, west, east = self.box
        if not (south <= lat <= north and west <= lon <= east):  # NaN fails this too
            return False
        band = _band(lat, south, north, len(self.bands))
        inside = False
        for y0, x0, y1, x1 in self.bands[band]:
            if (y1 > lat) != (y0 > lat) and lon < x1 + (lat - y1) * (x0 - x1) / (y0 - y1):
                inside = not inside
        return inside


@dataclass(frozen=True)
class Areas:
    """The outlines of one policy, by code: what area conditions and adapters ask.

    ``contains(code, lat, lon)`` is True or False when an outline of ``code``
    is known, and None when none is: no outline, no check.
    """

    outlines: Mapping[str, Outline] = field(default_factory=dict)
    source: str = "none: the policy has no areas.yaml"
    precision_km: int = 0
    _met: dict[tuple[str, str], bool] = field(default_factory=dict, compare=False, repr=False)

    @property
    def provinces(self) -> frozenset[str]:
        """Codes of provinces and comarcas with an outline."""
        return frozenset(c for c, o in self.outlines.items() if o.kind == "province")

    @property
    def border_sectors(self) -> frozenset[str]:
        """Codes of border sectors with an outline."""
        return frozenset(c for c, o in self.outlines.items() if o.kind == "border sector")

    def contains(self, code: str, lat: float, lon: float) -> bool | None:
        """Whether the outline of ``code`` holds (lat, lon) in WGS84 degrees; None when ``code`` has no outline.

        A position that is not a pair of finite numbers is inside no outline.
        """
        outline = self.outlines.get(code) if isinstance(code, str) else None
        if outline is None:
            return None
        if not (_is_number(lat) and _is_number(lon)):
            return False
        return outline.contains(float(lat), float(lon))


    def meet(self, a: str, b: str) -> bool | None:
        """Whether the outlines of ``a`` and ``b`` meet (a corner of one lies inside the other); None
        when either has no outline. Two labels of one alert whose outlines do not meet contradict
        each other. Outlines are few: each pair is worked out once."""
        first, second = self.outlines.get(a), self.outlines.get(b)
        if first is None or second is None:
            return None
        key = (a, b) if a <= b else (b, a)
        found = self._met.get(key)
        if found is None:
            found = self._met[key] = _corner_inside(first, second) or _corner_inside(second, first)
        return found

    def provinces_at(self, lat: float, lon: float) -> list[str]:
        """The codes of every province or comarca whose outline holds (lat, lon), in code order."""
        if not (_is_number(lat) and _is_number(lon)):
            return []
        return sorted(c for c, o in self.outlines.items()
                      if o.kind == "province" and o.contains(float(lat), float(lon)))


def _corner_inside(outline: Outline, other: Outline) -> bool:
    """Whether a corner of ``outline`` lies inside ``other`` (a sector within a province: all of them)."""
    return any(other.contains(lat, lon) for ring in outline.rings for lat, lon in ring)


def _is_number(value: object) -> bool:
    # Compared, not converted: an int of 400 digits is no float, and NaN and infinities fail the bounds.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and -_FAR < value < _FAR


def _floats(outline: Sequence[Sequence[tuple[float, float]]]) -> tuple[tuple[tuple[float, float], ...], ...]:
    return tuple(tuple((float(lat), float(lon)) for lat, lon in ring) for ring in outline)


def _compile(code: str, kind: Kind, entry: AreaEntry, precision_km: int) -> Outline:
    rings = _floats(entry.outline)
    box, bands = _banded(rings)
    return Outline(code, kind, entry.name, entry.precision_km or precision_km, rings, box, bands)


def _banded(rings: tuple[tuple[tuple[float, float], ...], ...]
            ) -> tuple[tuple[float, float, float, float], tuple[tuple[Edge, ...], ...]]:
    """The rings' bounding box (south, north, west, east) and their edges filed by latitude band: ``_BANDS``
    bands, or one per four corners for an outline of more, so that a band holds a few edges of a detailed outline
    as of a coarse one."""
    lats = [p[0] for ring in rings for p in ring]
    lons = [p[1] for ring in rings for p in ring]
    south, north = min(lats), max(lats)
    count = max(_BANDS, len(lats) // 4)
    bands: list[list[Edge]] = [[] for _ in range(count)]
    for ring in rings:
        for (y0, x0), (y1, x1) in zip((ring[-1], *ring[:-1]), ring, strict=True):
            if y0 == y1:
                continue  # a horizontal edge never crosses the eastward ray
            # File the edge under every band its latitudes meet, by the lookup's own rule (``_band``), and one band
            # more on each side: a point on a band's limit, or one a rounding puts in the next band, finds every
            # edge it could cross.
            low = _band(min(y0, y1), south, north, count)
            high = _band(max(y0, y1), south, north, count)
            for n in range(max(low - 1, 0), min(high + 1, count - 1) + 1):
                bands[n].append((y0, x0, y1, x1))
    return (south, north, min(lons), max(lons)), tuple(map(tuple, bands))


def _band(lat: float, south: float, north: float, count: int) -> int:
    """The band of ``count`` between ``south`` and ``north`` that ``lat`` (within them) is filed and looked up in:
    one expression for both, so that a rounding never puts a point in a band its edges were not filed in."""
    return min(int((lat - south) / (north - south) * count), count - 1)


def compile_areas(doc: AreasFile | None) -> Areas:
    """The outlines of a validated areas file; no file gives no outlines."""
    if doc is None:
        return Areas()
    outlines = {c: _compile(c, "province", e, doc.precision_km) for c, e in doc.provinces.items()}
    outlines |= {c: _compile(c, "border sector", e, doc.precision_km) for c, e in doc.border_sectors.items()}
    return Areas(outlines, doc.source, doc.precision_km)
