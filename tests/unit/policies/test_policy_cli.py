"""``puente policy lint|test|explain``: read the policy the broker reads, say which, fail in one line on bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from broker.crypto import KeyKind
from broker.keystore import Keystore
from policies import DEFAULT_DIR
from puente.cli import main

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "policies" / "examples" / "senan-gofast-seizure.json"
AT = "2025-06-02T09:00:00-05:00"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No PUENTE_* setting from the caller's environment leaks into a test."""
    for name in list(os.environ):
        if name.startswith("PUENTE_"):
            monkeypatch.delenv(name)
    return monkeypatch


def _expire_cri(policy_copy: Any) -> None:
    policy_copy.replace("agreements/pan-cri.yaml", "valid_until: 2027-12-31", "valid_until: 2025-01-31")


# ---- PUENTE_POLICY_DIR ------------------------------------------------------------------------
def test_lint_reads_the_policy_dir_setting_like_the_broker(policy_copy: Any, tmp_path: Path) -> None:
    """`python -m puente.cli policy lint` with PUENTE_POLICY_DIR reports that directory's findings and names it."""
    _expire_cri(policy_copy)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUENTE_")}
    env["PUENTE_POLICY_DIR"] = str(policy_copy.root)
    done = subprocess.run(
        [sys.executable, "-m", "puente.cli", "policy", "lint", "--at", "2026-06-01T00:00:00Z"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "agreements/pan-cri.yaml:" in done.stdout and "[expired] PAN-CRI expired on 2025-01-31" in done.stdout
    assert done.stdout.splitlines()[-1] == f"1 finding(s) in {policy_copy.root.resolve()} (PUENTE_POLICY_DIR)"


def test_without_the_setting_the_shipped_policy_is_read_and_named(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With neither --dir nor PUENTE_POLICY_DIR, lint reads the shipped policy and says so."""
    assert main(["policy", "lint", "--at", "2026-06-01T00:00:00Z"]) == 0
    assert capsys.readouterr().out == f"{DEFAULT_DIR} (the shipped policy): no findings\n"


def test_dir_wins_over_the_setting(
    clean_env: pytest.MonkeyPatch, policy_copy: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dir names the directory explicitly, so it is read whatever PUENTE_POLICY_DIR says."""
    _expire_cri(policy_copy)
    clean_env.setenv("PUENTE_POLICY_DIR", str(policy_copy.root))
    assert main(["policy", "lint", "--dir", str(DEFAULT_DIR), "--at", "2026-06-01T00:00:00Z"]) == 0
    assert capsys.readouterr().out == f"{DEFAULT_DIR} (--dir): no findings\n"


def test_test_and_explain_read_the_setting_too(
    clean_env: pytest.MonkeyPatch, policy_copy: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """`policy test` and `policy explain` decide under PUENTE_POLICY_DIR's policy and name it."""
    policy_copy.replace(
        "agreements/combifron.yaml", "categories: [DRUGS, ARMS, AMMUNITION, CASH]", "categories: [CASH]"
    )
    clean_env.setenv("PUENTE_POLICY_DIR", str(policy_copy.root))
    named = f"{policy_copy.root.resolve()} (PUENTE_POLICY_DIR)"
    assert main(["policy", "test", "--suite", "combifron"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith(f"policy {named}, version sha256:")
    assert "go-fast seizure reaches COL with detainees pseudonymised" in out and "FAIL" in out
    assert main(["policy", "explain", str(EXAMPLE), "--partner", "COL", "--at", AT]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Policy dir {named}\n")
    assert "Decision   WITHHOLD" in out and "COMBIFRON-SEIZURE.categories" in out


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("PUENTE_REPLICATION", "three", "puente: error: invalid setting PUENTE_REPLICATION: Input should be a valid"),
        ("PUENTE_POLICY_DIR", "/nowhere/policy", "puente: error: PUENTE_POLICY_DIR=/nowhere/policy: no such policy"),
    ],
)
def test_a_bad_setting_is_one_line(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, value: str, expected: str
) -> None:
    """An invalid or dangling setting stops lint with exit 2 and a single line on stderr."""
    clean_env.setenv(name, value)
    assert main(["policy", "lint"]) == 3
    err = capsys.readouterr().err
    assert err.startswith(expected) and err.count("\n") == 1


# ---- explain reads its alert strictly ---------------------------------------------------------
def _text() -> str:
    return EXAMPLE.read_text(encoding="utf-8")


HOSTILE: list[tuple[str, Any, str]] = [
    ("deep", "[" * 100_000 + "]" * 100_000, "nested deeper than 32 levels; not an alert"),
    ("deep-object", '{"a": ' * 40 + "1" + "}" * 40, "nested deeper than 32 levels"),
    ("nan", lambda: _text().replace('"quantity": 1250.0', '"quantity": NaN'), "NaN is not a JSON number"),
    ("infinity", lambda: _text().replace('"quantity": 1250.0', '"quantity": -Infinity'), "-Infinity is not a JSON"),
    ("overflow", lambda: _text().replace('"quantity": 1250.0', '"quantity": 1e999'), "too large for a double"),
    ("digits", lambda: _text().replace('"quantity": 1250.0', '"quantity": ' + "9" * 5000), "of 5000 digits is too"),
    ("duplicate", lambda: _text().replace('"alert_type": "SEIZURE"', '"alert_type": "SEIZURE", "alert_type": "X"'),
     "key 'alert_type' appears twice in one object"),
    # A key that may be data (a person's name and number) is told by its length only, duplicated or stray.
    ("duplicate-data", lambda: _text().replace('"alert_type": "SEIZURE"',
                                               '"alert_type": "SEIZURE", "Juan Perez 8-123-456": 1, '
                                               '"Juan Perez 8-123-456": 2'),
     "a key of 20 characters appears twice in one object"),
    ("stray-data", lambda: _text().replace('"alert_type": "SEIZURE"',
                                           '"alert_type": "SEIZURE", "PA0987654 Josue Batista": 1'),
     "fields the SEIZURE schema lacks: <a key of 23 characters>"),
    # A lower-case key is data as much as any (a first name); only a name the schema gives a field is quoted, and a
    # typo of one is named by the field it is close to.
    ("stray-lower-data", lambda: _text().replace('"alert_type": "SEIZURE"', '"alert_type": "SEIZURE", "josue": 1'),
     "fields the SEIZURE schema lacks: <a key of 5 characters>"),
    ("duplicate-lower-data", lambda: _text().replace('"alert_type": "SEIZURE"',
                                                     '"alert_type": "SEIZURE", "josue": 1, "josue": 2'),
     "a key of 5 characters appears twice in one object"),
    ("stray-field", lambda: _text().replace('"alert_type": "SEIZURE"', '"alert_type": "SEIZURE", "sumary": "x"'),
     "fields the SEIZURE schema lacks: <a key of 6 characters (did you mean 'summary'?)>"),
    ("stray-known-name", lambda: _text().replace('"alert_type": "SEIZURE"',
                                                 '"alert_type": "SEIZURE", "border_sector": "x"'),
     "fields the SEIZURE schema lacks: border_sector"),
    ("huge", lambda: _text()[:-2] + ', "x": "' + "a" * 1_100_000 + '"}', "larger than 1024 KiB; not an alert"),
    ("latin-1", lambda: _text().encode("latin-1"), "not UTF-8 text (byte"),
    ("array", "[1, 2]", "an alert is a JSON object"),
    ("syntax", '{"alert_type": }', ":1:16: not valid JSON: Expecting value"),
    ("surrogate", lambda: _text().replace('"12 millas', '"\\ud800'), "does not fit"),
    ("string-for-list", lambda: _text().replace('"caveats": [\n      "PII"\n    ]', '"caveats": "PII"'),
     "markings.caveats: expected a list, got str"),  # fastavro wrote it as the caveats P, I, I
    ("float-for-int", lambda: _text().replace('"persons_detained": 3', '"persons_detained": 2.9'),
     "payload.persons_detained: expected an int, got float"),  # fastavro wrote 2
    ("bool-for-double", lambda: _text().replace('"quantity": 2.0', '"quantity": true'),
     "payload.items[1].quantity: expected a number, got bool"),  # fastavro wrote 1.0
]  # fmt: skip


@pytest.mark.parametrize(("name", "body", "expected"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_explain_refuses_hostile_json_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, body: Any, expected: str
) -> None:
    """Deep nesting, NaN, infinities, huge numbers, duplicate keys, oversize or non-UTF-8 files: exit 2, one line."""
    content = body() if callable(body) else body
    path = tmp_path / f"{name}.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    assert main(["policy", "explain", str(path), "--partner", "COL", "--at", AT]) == 3
    captured = capsys.readouterr()
    assert captured.err.startswith(f"puente: error: {path}") and captured.err.count("\n") == 1
    assert expected in captured.err
    assert "Juan" not in captured.err and "josue" not in captured.err.lower()
    assert captured.out == ""


def test_the_hostile_files_differ_from_the_example_only_where_meant() -> None:
    """Each edited example really carries its planted fault (so the refusals above are the reader's doing)."""
    for name, body, _ in HOSTILE:
        if callable(body):
            assert body() != _text(), name


# ---- explain --key-file -----------------------------------------------------------------------
def test_explain_uses_a_pseudonym_key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--key-file takes a pseudonym key file from the keystore; its pseudonyms differ from the demonstration key's."""
    store = Keystore(tmp_path / "keys")
    store.generate(KeyKind.PSEUDONYM, "COMBIFRON", generation="2026a", now=datetime.now(UTC))
    args = ["policy", "explain", str(EXAMPLE), "--partner", "COL", "--at", AT]
    assert main(args) == 0
    demo = capsys.readouterr().out
    assert main([*args, "--key-file", str(store.path / "COMBIFRON-pseudo-2026a.json")]) == 0
    real = capsys.readouterr().out
    assert "demonstration key" in demo and "demonstration key" not in real
    assert '"surnames": "ps:' in real and real != demo


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        ("raw", "file is not valid JSON"),
        ("other-kind", "kind is partner-encryption, expected pseudonym"),
        ("missing", "no key file at"),
        ("other-agreement", "is agreement PAN-USA's pseudonym key, but the view pseudonymises under agreement "
                            "COMBIFRON"),
        ("reference", "is the broker's alert-reference key"),
    ],
)
def test_explain_refuses_what_is_not_a_pseudonym_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: str, expected: str
) -> None:
    """Raw bytes, a key of another kind, another agreement's pseudonym key (COL's view is COMBIFRON's), the broker's
    alert-reference key or no file at all: exit 3 with one line, not a silent wrong pseudonym."""
    folder = tmp_path / "keys"
    folder.mkdir(mode=0o700)
    if make == "raw":
        path = folder / "COMBIFRON-pseudo-2026a.json"
        path.write_bytes(b"0123456789abcdef0123456789abcdef")
        path.chmod(0o600)
    elif make == "other-kind":
        Keystore(folder).generate(KeyKind.PARTNER_ENCRYPTION, "COL", generation="2026a", now=datetime.now(UTC))
        path = folder / "COL-enc-2026a.json"
    elif make in ("other-agreement", "reference"):
        owner = "PAN-USA" if make == "other-agreement" else "broker"
        Keystore(folder).generate(KeyKind.PSEUDONYM, owner, generation="2026a", now=datetime.now(UTC))
        path = folder / f"{owner}-pseudo-2026a.json"
    else:
        path = folder / "none.json"
    assert main(["policy", "explain", str(EXAMPLE), "--partner", "COL", "--at", AT, "--key-file", str(path)]) == 3
    err = capsys.readouterr().err
    assert err.startswith("puente: error: --key-file: ") and err.count("\n") == 1
    assert expected in err
