"""Fixtures for the policy tests: the shipped policy set, an alert factory, editable policy copies.

pytest runs with --import-mode=importlib, so tests take their helpers as fixtures, not imports.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from policies import DEFAULT_DIR, PolicySet, load_policy_set
from policies._alerts import alert_value, with_changes
from policies._load import schema_fields

NOW = datetime(2025, 6, 2, 14, 0, tzinfo=UTC)  # every shipped agreement is in force
KEY = b"unit-test-pseudonym-key-32-bytes"
FIXTURE_DOCS: dict[str, dict[str, Any]] = yaml.safe_load((DEFAULT_DIR / "fixtures.yaml").read_text("utf-8"))["alerts"]


def build_alert(name: str = "darien_sighting", changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """A decoded alert from a suite fixture, with ``{"dotted.path[0]": value}`` changes."""
    return alert_value(with_changes(FIXTURE_DOCS[name], changes or {}), schema_fields(), name)


def values_at(value: Any, path: str) -> list[Any]:
    """Every value at a field path, following ``[]`` into each item: ``payload.detainees[].surnames``."""
    found = [value]
    for part in path.split("."):
        name, many = (part[:-2], True) if part.endswith("[]") else (part, False)
        found = [v.get(name) for v in found if isinstance(v, dict)]
        if many:
            found = [item for v in found for item in (v or [])]
    return found


class PolicyCopy:
    """A copy of the shipped policy directory that a test may edit."""

    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.copytree(DEFAULT_DIR, root)

    def text(self, relative: str) -> str:
        return (self.root / relative).read_text(encoding="utf-8")

    def replace(self, relative: str, old: str, new: str) -> None:
        """Replace text in one file; the old text must be there, so a test cannot silently edit nothing."""
        body = self.text(relative)
        assert old in body, f"{old!r} not in {relative}"
        (self.root / relative).write_text(body.replace(old, new, 1), encoding="utf-8")

    def write(self, relative: str, body: str) -> None:
        (self.root / relative).write_text(body, encoding="utf-8")

    def line_of(self, relative: str, text: str) -> int:
        """The 1-based line where ``text`` first appears."""
        for n, line in enumerate(self.text(relative).splitlines(), start=1):
            if text in line:
                return n
        raise AssertionError(f"{text!r} not in {relative}")

    def load(self) -> PolicySet:
        return load_policy_set(self.root)


@pytest.fixture(scope="session")
def policy_set() -> PolicySet:
    """The shipped policy set, loaded once."""
    return load_policy_set()


@pytest.fixture(scope="session")
def make_alert() -> Callable[..., dict[str, Any]]:
    """Factory: make_alert("gofast_seizure", {"markings.classification": "SECRETO"})."""
    return build_alert


@pytest.fixture(scope="session")
def now() -> datetime:
    """A decision time at which every shipped agreement is in force."""
    return NOW


@pytest.fixture(scope="session")
def key() -> bytes:
    """A pseudonym key for views."""
    return KEY


@pytest.fixture(scope="session")
def find() -> Callable[[Any, str], list[Any]]:
    """values_at: every value at a field path with [] (payload.detainees[].surnames)."""
    return values_at


@pytest.fixture
def policy_copy(tmp_path: Path) -> PolicyCopy:
    """An editable copy of policies/data in a temporary directory."""
    return PolicyCopy(tmp_path / "policy")
