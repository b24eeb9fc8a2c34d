"""Area outlines: point-in-polygon, the areas.yaml loader, the outlines themselves, and area conditions that
trust an alert's labels only as far as its coordinates agree with them."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.config import Vocabulary, load_config, make_context
from adapters.core import convert
from adapters.registry import get
from policies import DEFAULT_DIR, Areas, PolicySet, decide, load_areas
from policies._areas import point_in_polygon
from policies._lint import lint
from puente.errors import PolicyError

ROOT = Path(__file__).resolve().parents[3]
SQUARE = [(0.0, 0.0), (0.0, 10.0), (10.0, 10.0), (10.0, 0.0)]
# [lat, lon] corners of a U opening north: its notch (longitude 4 to 6, north of latitude 4) is outside.
U_SHAPE = [(0.0, 0.0), (0.0, 10.0), (10.0, 10.0), (10.0, 6.0), (4.0, 6.0), (4.0, 4.0), (10.0, 4.0), (10.0, 0.0)]
AT = datetime(2025, 6, 2, 14, 0, tzinfo=UTC)
SHIPPED = load_areas()

# Real places, (latitude, longitude), and the outline each lies in.
PLACES = [
    ("PANAMA", 8.983, -79.517, "Panama City"), ("PANAMA", 9.071, -79.384, "Tocumen"),
    ("PANAMA_OESTE", 8.880, -79.783, "La Chorrera"), ("COLON", 9.359, -79.901, "Colón"),
    ("CHIRIQUI", 8.427, -82.431, "David"), ("BOCAS_DEL_TORO", 9.430, -82.520, "Changuinola"),
    ("VERAGUAS", 8.100, -80.983, "Santiago"), ("HERRERA", 7.962, -80.430, "Chitré"),
    ("LOS_SANTOS", 7.767, -80.275, "Las Tablas"), ("COCLE", 8.519, -80.357, "Penonomé"),
    ("DARIEN", 8.155, -77.691, "Yaviza"), ("DARIEN", 8.412, -78.143, "La Palma"),
    ("GUNA_YALA", 9.558, -78.946, "El Porvenir"), ("GUNA_YALA", 8.667, -77.418, "Puerto Obaldía"),
    ("CHOCO", 8.509, -77.280, "Acandí"), ("ANTIOQUIA", 8.094, -76.728, "Turbo"),
    ("DARIEN_PUERTO_OBALDIA", 8.667, -77.418, "Puerto Obaldía"), ("DARIEN_JAQUE", 7.517, -78.167, "Jaqué"),
    ("GUNA_YALA_LA_MIEL", 8.663, -77.368, "La Miel"), ("CHIRIQUI_PASO_CANOAS", 8.533, -82.839, "Paso Canoas"),
    ("CHIRIQUI_RIO_SERENO", 8.820, -82.860, "Río Sereno"), ("BOCAS_GUABITO", 9.495, -82.611, "Guabito"),
]  # fmt: skip
# ... and outlines they are far from.
NOT_IN = [
    ("DARIEN", 8.983, -79.517, "Panama City"), ("PANAMA", 8.155, -77.691, "Yaviza"),
    ("CHIRIQUI", 9.359, -79.901, "Colón"), ("BOCAS_DEL_TORO", 8.427, -82.431, "David"),
    ("DARIEN_PUERTO_OBALDIA", 7.830, -77.360, "Palo de las Letras"), ("DARIEN_JAQUE", 8.155, -77.691, "Yaviza"),
    ("CHIRIQUI_PASO_CANOAS", 8.820, -82.860, "Río Sereno"), ("GUNA_YALA", 8.983, -79.517, "Panama City"),
]  # fmt: skip


@pytest.fixture(scope="module")
def areas() -> Areas:
    """The shipped outlines."""
    return SHIPPED


def _areas_file(tmp_path: Path, body: str) -> Path:
    (tmp_path / "areas.yaml").write_text(body, encoding="utf-8")
    return tmp_path


VALID = """source: hand-drawn for a test
precision_km: 10
provinces:
  BOX:
    name: A box
    outline:
      - [[0, 0], [0, 1], [1, 1], [1, 0]]
border_sectors:
  CORNER:
    name: A corner
    outline:
      - [[0, 0], [0, 0.5], [0.5, 0.5], [0.5, 0]]
"""


# ---- point in polygon -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("lat", "lon", "inside"),
    [(5, 5, True), (0.1, 9.9, True), (11, 5, False), (5, -0.1, False), (-5, -5, False), (5, 10.5, False)],
)
def test_point_in_square(lat: float, lon: float, inside: bool) -> None:
    """A point is inside a square exactly when it lies within its sides; the ring closes by itself."""
    assert point_in_polygon(lat, lon, SQUARE) is inside


@pytest.mark.parametrize(
    ("lat", "lon", "inside"), [(5, 2, True), (5, 8, True), (2, 5, True), (5, 5, False), (8, 5, False), (5, 11, False)]
)
def test_point_in_concave_polygon(lat: float, lon: float, inside: bool) -> None:
    """In a U-shaped polygon the notch between the arms is outside, the arms and the base inside."""
    assert point_in_polygon(lat, lon, U_SHAPE) is inside


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_point_that_is_not_a_finite_number_is_inside_nothing(bad: float) -> None:
    """NaN and infinite coordinates are never inside a polygon."""
    assert not point_in_polygon(bad, 5, SQUARE)
    assert not point_in_polygon(5, bad, SQUARE)


@settings(max_examples=300, deadline=None)
@given(code=st.sampled_from(sorted(SHIPPED.outlines)), fy=st.floats(-0.05, 1.05), fx=st.floats(-0.05, 1.05))
def test_compiled_outlines_agree_with_plain_point_in_polygon(code: str, fy: float, fx: float) -> None:
    """The banded lookup an outline uses gives the answer of point_in_polygon over all its rings."""
    outline = SHIPPED.outlines[code]
    south, north, west, east = outline.box
    lat, lon = south + fy * (north - south), west + fx * (east - west)
    expected = sum(point_in_polygon(lat, lon, ring) for ring in outline.rings) % 2 == 1
    assert outline.contains(lat, lon) is expected


# ---- the loader -------------------------------------------------------------------------------
def test_loader_compiles_provinces_and_sectors(tmp_path: Path) -> None:
    """load_areas reads both sections, answers contains() for their codes and None for any other."""
    areas = load_areas(_areas_file(tmp_path, VALID))
    assert areas.provinces == {"BOX"} and areas.border_sectors == {"CORNER"}
    assert areas.contains("BOX", 0.75, 0.75) is True
    assert areas.contains("CORNER", 0.75, 0.75) is False
    assert areas.contains("ELSEWHERE", 0.5, 0.5) is None
    assert (areas.source, areas.precision_km) == ("hand-drawn for a test", 10)


def test_contains_refuses_what_is_not_a_position(areas: Areas) -> None:
    """A code that is not a string has no outline; a position that is not two finite numbers is inside nothing."""
    assert areas.contains(["DARIEN"], 8.155, -77.691) is None  # type: ignore[arg-type]
    for lat, lon in [(math.nan, -77.691), (8.155, "-77.691"), (True, -77.691), (8.155, math.inf)]:
        assert areas.contains("DARIEN", lat, lon) is False  # type: ignore[arg-type]


def test_an_areas_link_to_nothing_is_refused_not_read_as_no_outlines(tmp_path: Path) -> None:
    """A link named areas.yaml whose file moved away is a mistake to report: read as "no outlines", every
    area condition would answer "cannot check" instead of the policy being refused, as load_policy_set does."""
    (tmp_path / "areas.yaml").symlink_to(tmp_path / "moved.yaml")
    with pytest.raises(PolicyError, match=r"a link to .*moved\.yaml, which does not exist"):
        load_areas(tmp_path)
    (tmp_path / "areas.yaml").unlink()
    (tmp_path / "areas.yaml").mkdir()
    with pytest.raises(PolicyError, match="not a regular file"):
        load_areas(tmp_path)


def test_a_directory_without_areas_has_no_outlines(tmp_path: Path) -> None:
    """Without areas.yaml every code is unknown (None): no outline, no check."""
    assert load_areas(tmp_path).contains("DARIEN", 8.155, -77.691) is None


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("[[0, 0], [0, 1], [1, 1], [1, 0]]", "[[0, 0], [0, 1]]", "BOX.outline[0]: List should have at least 3"),
        ("[[0, 0], [0, 1], [1, 1], [1, 0]]", "[[95, 0], [0, 1], [1, 1]]", "less than or equal to 90"),
        ("[[0, 0], [0, 1], [1, 1], [1, 0]]", "[[.nan, 0], [0, 1], [1, 1]]", "finite number"),
        ("[[0, 0], [0, 1], [1, 1], [1, 0]]", "[[0, 0], [1, 1], [2, 2]]", "encloses no area"),
        ("    name: A box\n", "    name: A box\n    colour: red\n", "provinces.BOX.colour: Extra inputs"),
        ("border_sectors:\n  CORNER:", "border_sectors:\n  BOX:", "BOX cannot be both a province and a border sector"),
        ("precision_km: 10\n", "", "precision_km: Field required"),
    ],
)
def test_loader_errors_name_file_line_and_field(tmp_path: Path, old: str, new: str, expected: str) -> None:
    """An outline that does not validate is a PolicyError naming areas.yaml, the line and the field."""
    assert old in VALID
    root = _areas_file(tmp_path, VALID.replace(old, new, 1))
    with pytest.raises(PolicyError) as caught:
        load_areas(root)
    assert "areas.yaml:" in str(caught.value)
    assert expected in str(caught.value)


def _ring(corners: list[tuple[float, float]]) -> str:
    return "[" + ", ".join(f"[{lat:.6f}, {lon:.6f}]" for lat, lon in corners) + "]"


def _saw(teeth: int) -> list[tuple[float, float]]:
    """A ring of long edges each spanning nearly the whole height: every one crosses every latitude band."""
    return [(1.0 if i % 2 == 0 else 0.05, i / teeth) for i in range(teeth)] + [(0.0, 1.0), (0.0, 0.0)]


def _circle(corners: int, lat: float = 0.5, lon: float = 0.5, radius: float = 0.5) -> list[tuple[float, float]]:
    return [(lat + radius * math.sin(2 * math.pi * i / corners), lon + radius * math.cos(2 * math.pi * i / corners))
            for i in range(corners)]


def test_an_outline_of_more_than_a_thousand_corners_is_refused(tmp_path: Path) -> None:
    """A lookup tests one latitude band's edges, and whether two outlines meet (an alert's province and sector with
    no position) looks up every corner of each in the other: an outline of more than 1,000 corners in all its rings
    is refused, naming its line. A saw tooth of some 170,000 corners passed, and the first decision naming it took
    an hour."""
    rings = "\n      - ".join(_ring(r) for r in (_circle(600), _circle(600, radius=0.25)))
    with pytest.raises(PolicyError) as caught:
        load_areas(_areas_file(tmp_path, VALID.replace("[[0, 0], [0, 1], [1, 1], [1, 0]]", rings, 1)))
    assert ("areas.yaml:7: provinces.BOX.outline: Value error, has 1,200 corners in all its rings; at most 1,000"
            in str(caught.value))


def test_outlines_whose_bands_would_hold_too_much_are_refused(tmp_path: Path) -> None:
    """An edge is filed in every latitude band it crosses: two saw teeth of 900 long edges each would file some
    400,000 edges. The file is refused, naming the outline that files most; one saw tooth of 200 loads."""
    body = VALID.replace("[[0, 0], [0, 1], [1, 1], [1, 0]]", _ring(_saw(900)), 1)
    body = body.replace("[[0, 0], [0, 0.5], [0.5, 0.5], [0.5, 0]]", _ring(_saw(898)), 1)
    with pytest.raises(PolicyError) as caught:
        load_areas(_areas_file(tmp_path, body))
    assert "at most 200,000: long edges across much of an outline's height (a saw tooth, say; the most in BOX" \
        in str(caught.value)
    load_areas(_areas_file(tmp_path, VALID.replace("[[0, 0], [0, 1], [1, 1], [1, 0]]", _ring(_saw(200)), 1)))


def test_a_row_of_islands_loads(tmp_path: Path) -> None:
    """70 small islands side by side at one latitude (280 corners, each edge across the outline's whole height): a
    coarse archipelago, accepted, and answered as the plain walk answers it."""
    islands = [[(9.50, -79.0 + i * 0.02), (9.52, -79.0 + i * 0.02), (9.52, -78.99 + i * 0.02),
                (9.50, -78.99 + i * 0.02)] for i in range(70)]
    body = VALID.replace("      - [[0, 0], [0, 1], [1, 1], [1, 0]]",
                         "\n".join(f"      - {_ring(r)}" for r in islands), 1)
    outline = load_areas(_areas_file(tmp_path, body)).outlines["BOX"]
    assert outline.contains(9.51, -78.995) is True and outline.contains(9.51, -78.985) is False


def test_a_detailed_outline_is_filed_in_more_bands_and_answers_as_the_plain_walk(tmp_path: Path) -> None:
    """An outline of 1,000 corners (a circle, in two rings: an annulus) loads, its edges filed in one band per four
    corners, a few edges each, and every lookup agrees with point_in_polygon over its rings."""
    outer, inner = _circle(800), _circle(200, radius=0.25)
    body = VALID.replace("      - [[0, 0], [0, 1], [1, 1], [1, 0]]",
                         f"      - {_ring(outer)}\n      - {_ring(inner)}", 1)
    outline = load_areas(_areas_file(tmp_path, body)).outlines["BOX"]
    assert len(outline.bands) == 250 and max(len(band) for band in outline.bands) <= 128
    for n in range(2_000):
        lat, lon = (n * 0.618034) % 1.0, (n * 0.414214) % 1.0
        expected = sum(point_in_polygon(lat, lon, ring) for ring in outline.rings) % 2 == 1
        assert outline.contains(lat, lon) is expected
    assert outline.contains(0.5, 0.5) is False and outline.contains(0.5, 0.9) is True


def test_a_point_next_to_a_corner_is_looked_up_in_a_band_its_edges_were_filed_in(tmp_path: Path) -> None:
    """With a band count that is no power of two, filing an edge and looking a point up once rounded the band
    differently: a point one step below a corner at latitude 1.553 was looked up in a band that edge was not filed
    in, and read inside an outline 1.5 degrees away. Every vertex latitude, one and two steps either side, at
    several longitudes, now answers as point_in_polygon does."""
    south, north, corner = -2.5, 1.7000000000000002, 1.553
    ring = [(south, 0.0), (corner, 2.0), (north, 4.0), (north, 6.0), (south, 6.0)]
    ring += [(south, 6.0 - (i + 1) * 5.0 / 800) for i in range(800 - len(ring))]
    outline = load_areas(_areas_file(tmp_path, VALID.replace("[[0, 0], [0, 1], [1, 1], [1, 0]]",
                                                             _ring(ring), 1))).outlines["BOX"]
    assert len(outline.bands) == 200
    assert outline.contains(1.5529999999999997, 0.5) is False
    for lat in sorted({y for y, _ in outline.rings[0]}):
        for near in (lat, math.nextafter(lat, -math.inf), math.nextafter(math.nextafter(lat, -math.inf), -math.inf),
                     math.nextafter(lat, math.inf)):
            for lon in (0.5, 1.0, 3.0, 5.0):
                assert outline.contains(near, lon) is point_in_polygon(near, lon, outline.rings[0]), (near, lon)


def test_loader_refuses_a_missing_directory(tmp_path: Path) -> None:
    """load_areas of a directory that does not exist is a PolicyError, not an empty answer."""
    with pytest.raises(PolicyError, match="no such policy directory"):
        load_areas(tmp_path / "nowhere")


# ---- the shipped outlines ---------------------------------------------------------------------
def test_the_source_is_named_at_the_head_of_the_file() -> None:
    """areas.yaml opens with its source, licence and precision, and says it is not for navigation."""
    head = (DEFAULT_DIR / "areas.yaml").read_text(encoding="utf-8").split("\nprovinces:", 1)[0]
    for words in ("OpenStreetMap", "ODbL", "Tommy Guardia", "INEC", "Precision", "never for navigation"):
        assert words in head


def test_every_code_the_adapters_write_has_an_outline(areas: Areas) -> None:
    """Each province, comarca, Colombian department and border sector agencies.yaml accepts has an outline."""
    config = yaml.safe_load((ROOT / "adapters" / "agencies.yaml").read_text(encoding="utf-8"))
    extra = {p for agency in config["agencies"].values() for p in agency.get("extra_provinces", [])}
    provinces = set(config["provinces"]) | extra
    assert provinces - areas.provinces == set()
    assert set(config["border_sectors"]) - areas.border_sectors == set()


@pytest.mark.parametrize(("code", "lat", "lon", "place"), PLACES, ids=[f"{p[3]}-{p[0]}" for p in PLACES])
def test_places_lie_in_their_outlines(areas: Areas, code: str, lat: float, lon: float, place: str) -> None:
    """Real places lie inside the outline of their province, comarca or border sector."""
    assert areas.contains(code, lat, lon) is True, place


@pytest.mark.parametrize(("code", "lat", "lon", "place"), NOT_IN, ids=[f"{p[3]}-{p[0]}" for p in NOT_IN])
def test_places_lie_outside_other_outlines(areas: Areas, code: str, lat: float, lon: float, place: str) -> None:
    """Real places lie outside the outlines of provinces and sectors far from them."""
    assert areas.contains(code, lat, lon) is False, place


def _labelled(alert: dict[str, Any]) -> Iterator[tuple[str, float, float]]:
    loc = alert.get("location") or {}
    if loc.get("latitude") is not None:
        for label in (loc.get("province"), loc.get("border_sector")):
            if label is not None:
                yield label, loc["latitude"], loc["longitude"]


def test_fixtures_and_examples_agree_with_their_outlines(areas: Areas) -> None:
    """Every suite fixture and example alert with a position lies inside the outline of each of its labels."""
    docs = list(yaml.safe_load((DEFAULT_DIR / "fixtures.yaml").read_text(encoding="utf-8"))["alerts"].values())
    docs += [json.loads(p.read_text(encoding="utf-8")) for p in sorted((ROOT / "policies" / "examples").glob("*.json"))]
    checked = [(label, lat, lon) for doc in docs for label, lat, lon in _labelled(doc)]
    assert len(checked) >= 8
    assert [c for c in checked if areas.contains(*c) is not True] == []


# SENAN's interdictions are at sea, often beyond 12 nautical miles, where no province's outline reaches;
# their "zona" names the nearest coast. The other agencies' records are on land or at a port.
@pytest.mark.parametrize(
    ("adapter", "files"),
    [
        ("senafront", ["patrullas-2026-11.csv", "novedades-batallon-occidental-2026-11.csv"]),
        ("snm", ["alertas-migratorias-2026-11.jsonl"]),
        ("pn", ["incautaciones-2026-11.txt"]),
        ("combifron", ["mensajes-colombia-2026-11.jsonl"]),
    ],
)
def test_sample_exports_agree_with_their_outlines(areas: Areas, adapter: str, files: list[str]) -> None:
    """Each record of the sample exports lies inside the outline of the province and sector it names."""
    mapper = get(adapter)
    ctx = make_context(mapper.agency, datetime(2026, 11, 21, tzinfo=UTC), load_config(), Vocabulary.load())
    checked = []
    for name in files:
        with (ROOT / "samples" / adapter / name).open("rb") as stream:
            for result in convert(mapper, stream, ctx):
                assert result.alert is not None, result.error
                checked += [(label, lat, lon, result.item.line) for label, lat, lon in _labelled(result.alert)]
    assert checked
    assert [c for c in checked if areas.contains(*c[:3]) is not True] == []


# ---- the area condition -----------------------------------------------------------------------
def _decide(
    policy_set: PolicySet,
    make_alert: Callable[..., dict[str, Any]],
    changes: dict[str, Any],
    partner: str = "COL",
    name: str = "darien_sighting",
) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    decision = decide(make_alert(name, changes), partner, policy_set, AT)
    return decision.outcome.value, decision.rule_ids, decision.reasons


def test_the_policy_set_carries_the_outlines(policy_set: PolicySet) -> None:
    """The compiled policy set holds the outlines its area conditions use."""
    assert policy_set.areas.contains("DARIEN", 8.155, -77.691) is True
    assert {"DARIEN", "GUNA_YALA", "EMBERA_WOUNAAN", "CHIRIQUI", "BOCAS_DEL_TORO"} <= policy_set.areas.provinces


def test_a_label_the_coordinates_contradict_withholds_naming_no_position(
    policy_set: PolicySet, make_alert: Callable[..., dict[str, Any]]
) -> None:
    """DARIEN with Panama City's coordinates is withheld; the reason names the label's code and never the position,
    not even rounded: reasons reach the audit, and a place is the alert's content."""
    outcome, rules, reasons = _decide(
        policy_set, make_alert, {"location.border_sector": None, "location.latitude": 8.98312,
                                 "location.longitude": -79.51734})  # fmt: skip
    assert (outcome, rules) == ("WITHHOLD", ("COMBIFRON-BORDER.area",))
    assert reasons == ("COMBIFRON-BORDER: the position is outside province DARIEN: "
                       "the coordinates disagree with the label",)  # fmt: skip
    assert not any(ch.isdigit() for ch in "".join(reasons))


def test_the_same_alert_without_coordinates_is_decided_by_its_labels(
    policy_set: PolicySet, make_alert: Callable[..., dict[str, Any]]
) -> None:
    """Without a position, an agreed label is enough, as before outlines existed."""
    outcome, _, _ = _decide(policy_set, make_alert, {"location.latitude": None, "location.longitude": None})
    assert outcome == "DELIVER_REDACTED"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        # A label the policy does not know is never quoted: a code in form, it may still be a name written as one.
        ({"location.border_sector": "DARIEN_NUEVO"}, "border sector (an area the policy does not know) has no outline"),
        ({"location.border_sector": "JUAN_PEREZ_PASAPORTE_AB123456"},
         "border sector (an area the policy does not know) has no outline"),
        ({"location.border_sector": "x" * 300}, "border sector (an area the policy does not know) has no outline"),
        ({"location.latitude": math.nan}, "incomplete or out of range"),
        ({"location.latitude": 1e300}, "incomplete or out of range"),
    ],
)
def test_a_label_or_position_that_cannot_be_confirmed_withholds(
    policy_set: PolicySet, make_alert: Callable[..., dict[str, Any]], changes: dict[str, Any], reason: str
) -> None:
    """With a position, a label no outline knows, or a position out of range, withholds; long values are not quoted.
    A label the policy's areas do not list withholds by ``unknown.area`` too, whatever the agreement."""
    outcome, rules, reasons = _decide(policy_set, make_alert, changes)
    unlisted = "location.border_sector" in changes
    assert (outcome, rules) == ("WITHHOLD", ("unknown.area",) * unlisted + ("COMBIFRON-BORDER.area",))
    assert reason in reasons[-1] and all(len(said) < 200 for said in reasons)


def test_the_cri_area_checks_coordinates_too(policy_set: PolicySet, make_alert: Callable[..., dict[str, Any]]) -> None:
    """A Paso Canoas flow whose position is in Darién is withheld from CRI by the area condition."""
    outcome, rules, _ = _decide(policy_set, make_alert, {"location.latitude": 8.05, "location.longitude": -77.61},
                                partner="CRI", name="paso_canoas_flow")  # fmt: skip
    assert (outcome, rules) == ("WITHHOLD", ("CRI-MIGRATION.area",))


# ---- area codes in agreements -----------------------------------------------------------------
def test_an_area_code_without_an_outline_stops_loading_and_is_a_lint_finding(policy_copy: Any) -> None:
    """A misspelt province in an agreement's area fails loading and lint, at its line, as an area finding."""
    policy_copy.replace("agreements/combifron.yaml", "provinces: [DARIEN, GUNA_YALA,", "provinces: [DARIEN, GUNA_YLA,")
    line = policy_copy.line_of("agreements/combifron.yaml", "GUNA_YLA")
    expected = (f"agreements/combifron.yaml:{line}: [area] COMBIFRON-BORDER: province GUNA_YLA has no outline "
                "(not under provinces in areas.yaml)")  # fmt: skip
    with pytest.raises(PolicyError) as caught:
        policy_copy.load()
    assert expected in str(caught.value)
    assert [str(f) for f in lint(policy_copy.root, now=AT)] == [expected]


def test_a_province_code_among_the_sectors_has_no_outline(policy_copy: Any) -> None:
    """A province named as a border sector is refused: provinces and sectors are looked up apart."""
    policy_copy.replace("agreements/pan-cri.yaml", "border_sectors: [CHIRIQUI_PASO_CANOAS,",
                        "border_sectors: [CHIRIQUI, CHIRIQUI_PASO_CANOAS,")  # fmt: skip
    assert [f.message for f in lint(policy_copy.root, now=AT)] == [
        "CRI-MIGRATION: border sector CHIRIQUI has no outline (not under border_sectors in areas.yaml)"
    ]


def test_without_areas_file_agreements_naming_areas_do_not_load(policy_copy: Any) -> None:
    """Fail closed: with no areas.yaml, every area code an agreement names is a problem that stops loading."""
    (policy_copy.root / "areas.yaml").unlink()
    with pytest.raises(PolicyError) as caught:
        policy_copy.load()
    assert "[area] COMBIFRON-BORDER: province DARIEN has no outline (the policy has no areas.yaml)" in str(caught.value)


def test_outlines_are_part_of_the_version(policy_set: PolicySet, policy_copy: Any) -> None:
    """Moving an outline changes what is released, so it changes the policy version."""
    policy_copy.replace("areas.yaml", "precision_km: 10\n", "precision_km: 11\n")
    assert policy_copy.load().version != policy_set.version
