"""Puente's log pipeline: the level setting filters, JSON when asked, and aiokafka's own lines go through it."""

from __future__ import annotations

import ast
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

import broker.service  # noqa: F401 - imported for what it must not do: change aiokafka's loggers
from puente import logs
from puente.settings import PuenteSettings


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Where ``logs.configure`` writes; the root logger and structlog are put back as they were afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    try:
        yield out
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()


def _configured(monkeypatch: pytest.MonkeyPatch, stream: io.StringIO, **env: str) -> None:
    # Through the settings, as the long-running commands do: PUENTE_LOG_LEVEL and PUENTE_LOG_FORMAT.
    for name in ("PUENTE_LOG_LEVEL", "PUENTE_LOG_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    cfg = PuenteSettings()
    logs.configure(cfg.log_level, cfg.log_format, stream)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_the_level_setting_filters_lines(monkeypatch: pytest.MonkeyPatch, stream: io.StringIO) -> None:
    """With PUENTE_LOG_LEVEL=warning, info and debug lines are dropped and warnings and errors kept."""
    _configured(monkeypatch, stream, PUENTE_LOG_LEVEL="warning", PUENTE_LOG_FORMAT="json")
    log = logs.get("puente.test.level")
    log.debug("a debug line")
    log.info("an info line")
    log.warning("a warning line")
    log.error("an error line")
    assert [(line["event"], line["level"]) for line in _lines(stream)] == [
        ("a warning line", "warning"), ("an error line", "error")]


def test_debug_lets_every_line_through(monkeypatch: pytest.MonkeyPatch, stream: io.StringIO) -> None:
    """With PUENTE_LOG_LEVEL=debug, debug lines are written too."""
    _configured(monkeypatch, stream, PUENTE_LOG_LEVEL="debug", PUENTE_LOG_FORMAT="json")
    logs.get("puente.test.debug").debug("a debug line")
    assert [line["event"] for line in _lines(stream)] == ["a debug line"]


def test_json_when_asked_with_its_fields(monkeypatch: pytest.MonkeyPatch, stream: io.StringIO) -> None:
    """PUENTE_LOG_FORMAT=json writes one JSON object per line, with level, logger, UTC time and the fields given."""
    _configured(monkeypatch, stream, PUENTE_LOG_FORMAT="json")
    logs.get("puente.test.json").info("broker starting", workers=2, group="g")
    [line] = _lines(stream)
    assert line["event"] == "broker starting" and line["level"] == "info" and line["logger"] == "puente.test.json"
    assert line["workers"] == 2 and line["group"] == "g" and line["timestamp"].endswith("Z")


def test_json_tracebacks_are_structured(monkeypatch: pytest.MonkeyPatch, stream: io.StringIO) -> None:
    """An exception logged in JSON is a list of frames, not a block of text."""
    _configured(monkeypatch, stream, PUENTE_LOG_FORMAT="json")
    try:
        raise ValueError("boom")
    except ValueError:
        logs.get("puente.test.trace").exception("worker failed")
    [line] = _lines(stream)
    [raised] = line["exception"]
    assert raised["exc_type"] == "ValueError" and raised["exc_value"] == "boom" and raised["frames"]


def test_the_console_form_is_not_json(monkeypatch: pytest.MonkeyPatch, stream: io.StringIO) -> None:
    """By default a line is text for a terminal, naming the event and its fields."""
    _configured(monkeypatch, stream)
    logs.get("puente.test.console").info("broker starting", workers=2)
    text = stream.getvalue()
    assert "broker starting" in text and "workers=2" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


@pytest.mark.parametrize("form", ["console", "json"])
def test_text_from_outside_stays_on_its_line_with_nothing_a_terminal_acts_on(
        monkeypatch: pytest.MonkeyPatch, stream: io.StringIO, form: str) -> None:
    """A library's message or an error's text may quote what came from outside: a line break, U+2028 or an escape
    sequence in it reaches the log escaped, in either form, so no line seems Puente's own and no screen is
    rewritten."""
    _configured(monkeypatch, stream, PUENTE_LOG_FORMAT=form)
    hostile = "topic x\n2026-12-05T00:00:00Z [error    ] forged\u2028\x1b[2J\x9b31m"
    logging.getLogger("aiokafka.cluster").error("Topic %s is not available", hostile)
    logs.get("puente.test.console").warning("could not read", problem=hostile)
    text = stream.getvalue()
    assert len(text.splitlines()) == 2 and "\x1b" not in text and "\x9b" not in text and "\u2028" not in text


def test_aiokafka_lines_go_through_the_same_pipeline(monkeypatch: pytest.MonkeyPatch, stream: io.StringIO) -> None:
    """aiokafka's standard-library lines come out as Puente's JSON, formatted, and the level setting filters them
    (nothing Puente imported has muted or re-levelled aiokafka's loggers: an error line gets through)."""
    _configured(monkeypatch, stream, PUENTE_LOG_LEVEL="warning", PUENTE_LOG_FORMAT="json")
    coordinator = logging.getLogger("aiokafka.consumer.group_coordinator")
    coordinator.info("Joined group %s", "g")  # below the level: filtered like Puente's own
    coordinator.error("Unable connect to node with id %s: %s", 1, "refused")
    [line] = _lines(stream)
    assert line["logger"] == "aiokafka.consumer.group_coordinator" and line["level"] == "error"
    assert line["event"] == "Unable connect to node with id 1: refused"



def test_at_debug_a_librarys_debug_lines_are_never_written(monkeypatch: pytest.MonkeyPatch,
                                                           stream: io.StringIO) -> None:
    """PUENTE_LOG_LEVEL=debug gives Puente's own debug lines, never a library's: aiokafka's print each request it
    sends (a SASL password, a record's bytes) in free text no field allow-list sees. Its info lines still pass, and
    a logger that only starts with "puente" is not Puente's."""
    _configured(monkeypatch, stream, PUENTE_LOG_LEVEL="debug", PUENTE_LOG_FORMAT="json")
    logging.getLogger("aiokafka.conn").debug("%s Request 3: %s", "<conn>", "sasl_auth_bytes=b'x\\x00Hunter2'")
    logging.getLogger("aiokafka.producer.sender").debug("Sending (key=%r value=%r)", b"k", b"PA1234567")
    logging.getLogger("confluent_kafka").debug("rdkafka debug line")
    logging.getLogger("puentex").debug("not Puente's")
    logging.getLogger("aiokafka.conn").debug({"sasl_plain_password": "Hunter2"})  # a dict is no mark of Puente's
    logging.getLogger("aiokafka.consumer.group_coordinator").info("Joined group %s", "g")
    logs.get("puente.test.debug").debug("a debug line of Puente's")
    assert [(line["logger"], line["level"]) for line in _lines(stream)] == [
        ("aiokafka.consumer.group_coordinator", "info"), ("puente.test.debug", "debug")]
    assert "Hunter2" not in stream.getvalue() and "PA1234567" not in stream.getvalue()

def test_every_field_a_log_call_names_is_in_the_allow_list() -> None:
    """A keyword a Puente log call passes but ``FIELDS`` does not name reaches the log as a marker, silently: the
    stall warning's ``stalled_s`` and the rebalance's ``kept``/``loaded`` once did. Every log call in the
    application's code is read here, and each field it names must be allow-listed (a deliberate addition)."""
    root = Path(__file__).resolve().parents[2]
    unnamed = []
    for package in ("adapters", "broker", "policies", "puente", "schemas"):
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr in ("debug", "info", "warning", "error", "exception", "critical")
                        and isinstance(node.func.value, ast.Name) and node.func.value.id in ("log", "logger")):
                    unnamed += [f"{path.relative_to(root)}:{node.lineno} {kw.arg}" for kw in node.keywords
                                if kw.arg is not None and kw.arg not in logs.FIELDS]
    assert not unnamed, unnamed


def _fail_holding(secret: bytes) -> None:
    payload = secret  # a local, as a record's value or a key is in the frames a failure passes through
    raise RuntimeError(f"could not route a record of {len(payload)} bytes")


@pytest.mark.parametrize("form", ["json", "console"])
@pytest.mark.parametrize("through", ["puente", "library"])
def test_a_traceback_never_shows_the_frames_locals(monkeypatch: pytest.MonkeyPatch, stream: io.StringIO,
                                                    form: str, through: str) -> None:
    """A failure logged with its traceback, by Puente or by a library (asyncio's "exception never retrieved"),
    names the frames and the error, never the values of their local variables: structlog's default renderers
    print them, and in a worker they are records, payloads and keys."""
    _configured(monkeypatch, stream, PUENTE_LOG_FORMAT=form)
    secret = b"NAME=PEREZ-GOMEZ-PASSPORT-X1234567"
    try:
        _fail_holding(secret)
    except RuntimeError:
        if through == "puente":
            logs.get("puente.test.locals").exception("worker failed")
        else:
            logging.getLogger("asyncio").error("Future exception was never retrieved", exc_info=True)
    text = stream.getvalue()
    assert "_fail_holding" in text and "could not route a record of 34 bytes" in text
    assert "PEREZ" not in text and "X1234567" not in text


def test_a_repeated_library_line_is_written_once_with_its_count(monkeypatch: pytest.MonkeyPatch,
                                                                 stream: io.StringIO) -> None:
    """While a node is down aiokafka logs "Unable connect to node" once per retry of every client (hundreds a
    second): the same text gets through once per REPEAT_S, the next carrying how many were left out. Another text
    (another node; librdkafka's lines, which all share one template) is its own line. Puente's own lines are never
    held back."""
    _configured(monkeypatch, stream, PUENTE_LOG_FORMAT="json")
    clock = [1000.0]
    monkeypatch.setattr(logs.time, "monotonic", lambda: clock[0])
    library = logging.getLogger("aiokafka")
    for _ in range(50):
        library.error("Unable connect to node with id %s: %s", 2, "refused")
        logs.get("puente.test.repeat").warning("worker stalled", waiting_for="Kafka")
    library.error("Unable connect to node with id %s: %s", 3, "refused")  # another node: its own first line
    rdkafka = logging.getLogger("confluent_kafka")
    rdkafka.error("%s [%s] %s", "FAIL", "thrd:1", "broker 1 down")
    rdkafka.error("%s [%s] %s", "FAIL", "thrd:2", "broker 2 down")
    clock[0] += logs.REPEAT_S
    library.error("Unable connect to node with id %s: %s", 2, "refused")
    lines = _lines(stream)
    node2 = [line for line in lines if line["event"].startswith("Unable connect to node with id 2")]
    assert [line.get("repeated") for line in node2] == [None, 49]
    assert sum(line["event"].startswith("Unable connect to node with id 3") for line in lines) == 1
    assert sum(line["event"].startswith("FAIL") for line in lines) == 2
    assert sum(line["event"] == "worker stalled" for line in lines) == 50
