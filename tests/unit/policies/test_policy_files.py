"""Policy YAML files are read strictly: no anchors or aliases, bounded nesting and size, values that exist."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from policies import _yamlio, load_areas
from policies._yamlio import MAX_BYTES, read_yaml
from puente import strict
from puente.cli import main
from puente.errors import PolicyError

BILLION_LAUGHS = """alerts:
  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
  h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
  i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def _read(tmp_path: Path, body: str | bytes) -> Any:
    path = tmp_path / "policy.yaml"
    path.write_bytes(body if isinstance(body, bytes) else body.encode("utf-8"))
    return read_yaml(path, "policy.yaml")[0]


def test_policy_test_refuses_a_billion_laughs_fixture_unexpanded(
    policy_copy: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """`policy test` on a fixtures file of nested aliases fails at once, naming file and line, instead of
    expanding a billion strings."""
    policy_copy.write("fixtures.yaml", BILLION_LAUGHS)
    assert main(["policy", "test", "--dir", str(policy_copy.root)]) == 3
    err = capsys.readouterr().err
    assert err == "puente: error: fixtures.yaml:2: anchor &a refused: policy files may not use anchors or aliases\n"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("a: &x [1]\n", "policy.yaml:1: anchor &x refused"),
        ("a: 1\nb: *x\n", "policy.yaml:2: alias *x refused"),
        ("base: &b {keep: 1}\nmore:\n  <<: *b\n", "policy.yaml:1: anchor &b refused"),
        ("a:\n  - b: &deep x\n", "policy.yaml:2: anchor &deep refused"),
    ],
)
def test_anchors_and_aliases_are_refused_anywhere(tmp_path: Path, body: str, expected: str) -> None:
    """An anchor, an alias or a merge key, at any depth, is a PolicyError naming the file and the line."""
    with pytest.raises(PolicyError) as caught:
        _read(tmp_path, body)
    assert str(caught.value).startswith(expected)


def test_an_anchor_in_an_agreement_stops_loading(policy_copy: Any) -> None:
    """Agreement files are read by the same loader: an anchor there stops the policy from loading."""
    policy_copy.replace("agreements/pan-cri.yaml", "retention_days: 90", "retention_days: &days 90")
    line = policy_copy.line_of("agreements/pan-cri.yaml", "&days")
    with pytest.raises(PolicyError, match=rf"agreements/pan-cri.yaml:{line}: anchor &days refused"):
        policy_copy.load()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("a: " + "[" * 100 + "]" * 100 + "\n", "policy.yaml:1: nested deeper than 40 levels"),
        # libyaml's own bound (1,000 levels) stops the parser before the composer sees the depth
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "policy.yaml:1: exceeded maximum nesting depth"),
        ("a: 1\nb: 2025-02-30\n", "policy.yaml:2: not a valid timestamp: day is out of range for month"),
        ("a: 2025-06-01T25:00:00Z\n", "policy.yaml:1: not a valid timestamp: hour must be in 0..23"),
        ("a: " + "9" * 5000 + "\n", "policy.yaml:1: not a valid int: Exceeds the limit"),
        (b"a: caf\xe9\n", "policy.yaml:1: not UTF-8 text (byte 7)"),
        ("a: 1\nb: \x1b\n", "policy.yaml:2: character #x001b: control characters are not allowed"),
        # every explicit tag is refused before anything is constructed, a Python one first of all
        ("a: !!timestamp nope\n", "policy.yaml:1: tag !!timestamp refused: policy files may not use YAML tags"),
        ("a: !!python/object/apply:os.system [true]\n", "policy.yaml:1: tag !!python/object/apply:os.system refused"),
    ],
)
def test_hostile_yaml_is_a_policy_error_with_its_line(tmp_path: Path, body: str | bytes, expected: str) -> None:
    """Deep nesting, impossible dates, huge integers, bytes not in UTF-8, Python tags: a PolicyError, no crash."""
    with pytest.raises(PolicyError) as caught:
        _read(tmp_path, body)
    assert expected in str(caught.value)


@pytest.mark.parametrize("loader", [_yamlio._LibyamlLoader, _yamlio._PythonLoader], ids=["libyaml", "python"])
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("a: &x [1]\n", "policy.yaml:1: anchor &x refused"),
        ("a:\n  - b: *x\n", "policy.yaml:2: alias *x refused"),
        ("a: " + "[" * 100 + "]" * 100 + "\n", "policy.yaml:1: nested deeper than 40 levels"),
        ("a: 1\nb: 2\na: 3\n", "policy.yaml:3: duplicate key 'a' (first on line 1)"),
        ("a: !!timestamp nope\n", "policy.yaml:1: tag !!timestamp refused"),
        ("a: 1\nb:\n  !!binary YQ==: 2\n", "policy.yaml:3: tag !!binary refused"),
        ("a: {b: [x, {yes: 1}]}\n", "policy.yaml:1: a.b[1]: the key on line 1 is read by YAML as a boolean (yes)"),
        ("a: 1\n2026-01-01: 2\n", "policy.yaml:2: the key on line 2 is read by YAML as a date (2026-01-01); quote it"),
        ("a: off\n", "policy.yaml:1: off is read by YAML as a boolean (false); write true or false"),
        ("a: 0x10\n", "policy.yaml:1: 0x10 is read by YAML as the number 16; write it in plain decimal digits"),
        # after non-ASCII text: libyaml counts the position in bytes, PyYAML's reader in characters
        ("# " + "é" * 40 + "\n" + "x: 1\n" * 5 + "b: \x1b\n", "policy.yaml:7: character #x001b: "),
        ("a: \x00\n", "policy.yaml:1: character #x0000: "),
    ],
)
def test_both_parsers_refuse_the_same_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loader: type,
                                          body: str, expected: str) -> None:
    """libyaml's parser (the default) and PyYAML's own (where libyaml is not built in) pass every node
    through the same checks, and name the same line."""
    monkeypatch.setattr(_yamlio, "_StrictLoader", loader)
    with pytest.raises(PolicyError) as caught:
        _read(tmp_path, body)
    assert str(caught.value).startswith(expected)


def test_libyaml_parses_by_default() -> None:
    assert _yamlio._StrictLoader is _yamlio._LibyamlLoader


def test_an_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    """A file over the size bound is refused before it is parsed."""
    with pytest.raises(PolicyError, match=r"policy\.yaml: larger than 8 MiB; not a policy file"):
        _read(tmp_path, "# " + "x" * MAX_BYTES + "\n")


def test_ordinary_yaml_still_reads(tmp_path: Path) -> None:
    """Nested mappings, lists, dates and numbers within the bounds read as before."""
    assert _read(tmp_path, "a: {b: [1, 2.5, 2025-06-01]}\n") == {"a": {"b": [1, 2.5, date(2025, 6, 1)]}}


@pytest.mark.parametrize(
    ("relative", "old", "new", "expected"),
    [
        ("agreements/combifron.yaml", "valid_until: 2027-02-28", "valid_until: 9999-12-31",
         "valid_until: Input should be less than or equal to 2999-12-31"),
        ("agreements/combifron.yaml", "valid_from: 2024-03-01", "valid_from: 0001-01-01",
         "valid_from: Input should be greater than or equal to 1900-01-01"),
        ("vocabulary.yaml", 'utc_offset: "-05:00"', 'utc_offset: "+25:00"', "home.utc_offset: String should match"),
        ("vocabulary.yaml", 'utc_offset: "-05:00"', 'utc_offset: "+14:59"', "home.utc_offset: String should match"),
        ("vocabulary.yaml", 'utc_offset: "-05:00"', 'utc_offset: "-12:30"', "home.utc_offset: String should match"),
        ("vocabulary.yaml", 'utc_offset: "-05:00"', 'utc_offset: "-0\u09eb:00"',  # a Bengali 5
         "home.utc_offset: String should match"),
        # A date given as an instant (or seconds) would lose its offset and run up to a day and more past it.
        ("agreements/combifron.yaml", "valid_until: 2027-02-28", "valid_until: 2027-02-28T00:00:00+09:00",
         "valid_until: Value error, must be a calendar date, YYYY-MM-DD"),
        ("agreements/combifron.yaml", "valid_until: 2027-02-28", 'valid_until: "2027-02-28T00:00:00Z"',
         "valid_until: Value error, must be a calendar date, YYYY-MM-DD"),
        ("agreements/combifron.yaml", "valid_from: 2024-03-01", "valid_from: 1709251200",
         "valid_from: Value error, must be a calendar date, YYYY-MM-DD"),
    ],
)  # fmt: skip
def test_values_that_would_crash_compiling_are_refused_when_read(
    policy_copy: Any, capsys: pytest.CaptureFixture[str], relative: str, old: str, new: str, expected: str
) -> None:
    """A validity at the end of the calendar or an offset beyond a day fails validation (exit 2, file and line)
    rather than overflowing when the policy compiles."""
    policy_copy.replace(relative, old, new)
    assert main(["policy", "test", "--dir", str(policy_copy.root)]) == 3
    err = capsys.readouterr().err
    assert f"{relative}:{policy_copy.line_of(relative, new.split(':')[0])}: " in err
    assert expected in err


@pytest.mark.parametrize(
    ("old", "new"),
    [("at: 2025-06-02T09:00:00-05:00", "at: 2025-06-02T09:00:00"), ("at: 2027-03-01T00:00:00-05:00", "at: 2027-03-01")],
)
def test_a_suite_time_needs_an_offset(policy_copy: Any, capsys: pytest.CaptureFixture[str], old: str, new: str) -> None:
    """A suite or case time without a UTC offset is refused where it is written, rather than withholding every case."""
    policy_copy.replace("agreements/combifron.tests.yaml", old, new)
    assert main(["policy", "test", "--dir", str(policy_copy.root)]) == 3
    line = policy_copy.line_of("agreements/combifron.tests.yaml", new)
    assert f"agreements/combifron.tests.yaml:{line}: " in capsys.readouterr().err


@pytest.mark.parametrize("relative", ["partners.yaml", "vocabulary.yaml", "agreements/combifron.yaml", "areas.yaml"])
def test_a_policy_file_linked_to_a_device_is_named_as_such_not_missing(policy_copy: Any, relative: str) -> None:
    """A policy file that is a link to a device is refused, unread, as not a regular file, naming the device;
    it is not reported missing, which would send the operator looking for a file that is there."""
    path = policy_copy.root / relative
    path.unlink()
    path.symlink_to("/dev/null")
    with pytest.raises(PolicyError) as caught:
        policy_copy.load()
    assert f"{relative}: not a regular file: a link to the device /dev/null" in str(caught.value).splitlines()
    assert "missing" not in str(caught.value)


def test_a_policy_file_that_is_a_folder_or_a_link_to_one_is_named_as_such(policy_copy: Any, tmp_path: Path) -> None:
    """A folder in a policy file's place, or a link to one, is named a folder, with where the link leads."""
    (policy_copy.root / "partners.yaml").unlink()
    (policy_copy.root / "partners.yaml").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (policy_copy.root / "agreements/combifron.yaml").unlink()
    (policy_copy.root / "agreements/combifron.yaml").symlink_to(elsewhere)
    with pytest.raises(PolicyError) as caught:
        policy_copy.load()
    lines = str(caught.value).splitlines()
    assert "partners.yaml: not a regular file: a folder" in lines
    assert f"agreements/combifron.yaml: not a regular file: a link to the folder {elsewhere.resolve()}" in lines


def test_a_missing_policy_file_or_a_link_to_nothing_is_still_missing(policy_copy: Any, tmp_path: Path) -> None:
    """A file that is not there is "missing"; a link to nothing says so and where it leads."""
    (policy_copy.root / "partners.yaml").unlink()
    (policy_copy.root / "vocabulary.yaml").unlink()
    (policy_copy.root / "vocabulary.yaml").symlink_to(tmp_path / "gone.yaml")
    with pytest.raises(PolicyError) as caught:
        policy_copy.load()
    lines = str(caught.value).splitlines()
    assert "partners.yaml: missing" in lines
    assert f"vocabulary.yaml: missing: a link to {tmp_path / 'gone.yaml'}, which does not exist" in lines


def test_where_a_link_leads_is_shown_on_one_line(policy_copy: Any, tmp_path: Path) -> None:
    """A link to nothing whose target holds a line break is named on one line, the break escaped: what a link
    names is never a line of its own in the error."""
    (policy_copy.root / "vocabulary.yaml").unlink()
    (policy_copy.root / "vocabulary.yaml").symlink_to(tmp_path / "gone\npartners.yaml: all valid")
    with pytest.raises(PolicyError) as caught:
        policy_copy.load()
    lines = str(caught.value).splitlines()
    assert f"vocabulary.yaml: missing: a link to {tmp_path / 'gone'}\\npartners.yaml: all valid, which does not " \
           "exist" in lines
    assert "partners.yaml: all valid, which does not exist" not in lines


def test_read_yaml_names_a_link_to_a_device_and_reads_nothing(tmp_path: Path) -> None:
    """The reader itself (fixtures, suites, areas for the adapters) names what the path is rather than
    "cannot read"; open_regular refuses the device before any byte is read."""
    (tmp_path / "policy.yaml").symlink_to("/dev/null")
    with pytest.raises(PolicyError, match=r"^policy\.yaml: not a regular file: a link to the device /dev/null$"):
        read_yaml(tmp_path / "policy.yaml", "policy.yaml")
    with pytest.raises(PolicyError, match=r"^gone\.yaml: missing$"):
        read_yaml(tmp_path / "gone.yaml", "gone.yaml")


def test_policy_test_names_fixtures_linked_to_a_device(policy_copy: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """`policy test` with fixtures.yaml a link to a device fails on that file (one line), instead of skipping
    it and failing every case on a fixture it cannot find."""
    (policy_copy.root / "fixtures.yaml").unlink()
    (policy_copy.root / "fixtures.yaml").symlink_to("/dev/null")
    assert main(["policy", "test", "--dir", str(policy_copy.root)]) == 3
    err = capsys.readouterr().err
    assert err == "puente: error: fixtures.yaml: not a regular file: a link to the device /dev/null\n"


def _fifo_or_folder(path: Path, kind: str) -> None:
    if path.exists() or path.is_symlink():
        path.unlink()
    if kind == "pipe":
        os.mkfifo(path)  # no writer: opened for reading it would block, or read as empty
    else:
        path.mkdir()


@pytest.mark.timeout(30)  # a FIFO opened for reading without a writer blocks: fail, never hang
@pytest.mark.parametrize("kind", ["pipe", "folder"])
@pytest.mark.parametrize("relative", ["fixtures.yaml", "agreements/combifron.tests.yaml"])
def test_policy_test_names_a_fixtures_or_suite_file_that_is_a_pipe_or_a_folder(
    policy_copy: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, relative: str, kind: str
) -> None:
    """`policy test` with fixtures.yaml or a suite file that is a FIFO or a folder fails on that file, in one
    line saying what it is, without opening it: not with a schema message about an empty document (a FIFO
    read as empty) nor "cannot read: Is a directory". A suite's line comes with the other policy files', as
    the policy loads."""
    path = policy_copy.root / relative
    _fifo_or_folder(path, kind)
    opened: list[Path] = []
    real_open = strict.open_regular

    def spy(p: Path) -> Any:
        opened.append(Path(p))
        return real_open(p)

    monkeypatch.setattr(strict, "open_regular", spy)
    assert main(["policy", "test", "--dir", str(policy_copy.root)]) == 3
    err = capsys.readouterr().err
    shown = f"{relative}: not a regular file: a {kind}"
    if relative.endswith(".tests.yaml"):  # suites are read when the policy loads, with every other policy file
        assert err == f"puente: error: policy files in {policy_copy.root} do not validate:\n{shown}\n"
    else:
        assert err == f"puente: error: {shown}\n"
    assert path not in opened


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["pipe", "folder"])
def test_read_yaml_refuses_a_pipe_or_a_folder_unopened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Every reader of policy YAML gets the refusal: a policy folder is given, not a stream."""
    path = tmp_path / "policy.yaml"
    _fifo_or_folder(path, kind)
    monkeypatch.setattr(strict, "open_regular", lambda p: pytest.fail(f"opened {p}"))
    with pytest.raises(PolicyError, match=rf"^policy\.yaml: not a regular file: a {kind}$"):
        read_yaml(path, "policy.yaml")


@pytest.mark.parametrize("kind", ["folder", "device"])
def test_read_yaml_names_a_file_replaced_after_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """A file replaced by a folder or a device between the check and the open (a race) is still named, not
    "cannot read: Is a directory"."""
    path = tmp_path / "policy.yaml"
    path.write_text("a: 1\n")
    real_check = _yamlio.not_a_file
    calls: list[Path] = []

    def check_then_replace(p: Path, within: Path | None = None) -> str | None:
        calls.append(p)
        if len(calls) == 1:
            problem = real_check(p, within)
            path.unlink()
            if kind == "folder":
                path.mkdir()
            else:
                path.symlink_to("/dev/null")
            return problem
        return real_check(p, within)

    monkeypatch.setattr(_yamlio, "not_a_file", check_then_replace)
    expected = "a folder" if kind == "folder" else "a link to the device /dev/null"
    with pytest.raises(PolicyError, match=rf"^policy\.yaml: not a regular file: {expected}$"):
        read_yaml(path, "policy.yaml")


def test_a_link_out_of_the_policy_folder_is_not_read(policy_copy: Any, tmp_path: Path) -> None:
    """A policy folder handed over for review may hold links: one leading out of the folder (the file's own, or a
    folder's on its way) is refused by name and its target never read, so no line of a file elsewhere (a password
    hash) reaches a finding; a link that stays inside the folder is read as its target."""
    private = tmp_path / "shadow"
    private.write_text("alice: $6$saltsalt$SECRETHASHVALUE\n", encoding="utf-8")
    (policy_copy.root / "areas.yaml").unlink()
    (policy_copy.root / "areas.yaml").symlink_to(private)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "combifron.yaml").write_text("id: SECRETHASHVALUE2\n", encoding="utf-8")
    (policy_copy.root / "agreements/combifron.yaml").unlink()
    (policy_copy.root / "agreements/combifron.yaml").symlink_to(outside / "combifron.yaml")
    with pytest.raises(PolicyError) as caught:
        policy_copy.load()
    text = str(caught.value)
    assert "SECRETHASHVALUE" not in text
    lines = text.splitlines()
    assert f"areas.yaml: not read: a link to {private.resolve()}, outside the policy folder; a policy folder " \
           "holds its own files (copy the file in)" in lines
    assert any(line.startswith("agreements/combifron.yaml: not read: a link to ") for line in lines)
    with pytest.raises(PolicyError, match="outside the policy folder") as caught:
        load_areas(policy_copy.root)
    assert "SECRETHASHVALUE" not in str(caught.value)


def test_a_link_that_stays_inside_the_policy_folder_is_read(policy_copy: Any) -> None:
    """A mounted configuration's files are links into a folder beside them (``..data/partners.yaml``): read."""
    data = policy_copy.root / "..data"
    data.mkdir()
    (policy_copy.root / "partners.yaml").rename(data / "partners.yaml")
    (policy_copy.root / "partners.yaml").symlink_to("..data/partners.yaml")
    assert "USA" in policy_copy.load().partners
