"""What every command shares: settings, the Kafka connection, time arguments, running a coroutine."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO, TypeVar

from broker.kafka import KafkaConnection, connection
from puente.errors import ConfigError
from puente.settings import PuenteSettings, load_settings
from puente.strict import one_line
from puente.wire import parse_time

T = TypeVar("T")

Subparsers = argparse._SubParsersAction  # the type argparse gives add_subparsers


def kafka_options() -> argparse.ArgumentParser:
    """A parent parser for commands that talk to Kafka: ``--command-config FILE``."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--command-config", type=Path, metavar="FILE",
                        help="a Kafka client properties file (security.protocol, sasl.*, ssl.*, bootstrap.servers), "
                             "as Kafka's own tools take it; default: PUENTE_CLIENT_CONFIG")
    return parent


def settings(args: argparse.Namespace | None = None, **flags: object) -> PuenteSettings:
    """The settings, with ``--command-config`` in place of ``PUENTE_CLIENT_CONFIG`` when given, and each
    of a command's ``flags`` that was given (not None) in place of its ``PUENTE_*`` variable."""
    given = {name: value for name, value in flags.items() if value is not None}
    config = getattr(args, "command_config", None)
    if config is not None:
        given["client_config"] = config
    try:
        return load_settings(**given)
    except ConfigError as exc:
        for name in given:  # a value the command line gave is named as the person typed it
            variable = f"PUENTE_{name.upper()}"
            flag = "--command-config" if name == "client_config" else "--" + name.replace("_", "-")
            if variable in str(exc):
                raise ConfigError(str(exc).replace(variable, f"{flag} ({variable})", 1)) from None
        raise


def say(*lines: object, file: TextIO | None = None, flush: bool = False) -> None:
    """Print each of ``lines`` on a line of its own, through ``one_line`` (standard output unless ``file``). What a
    command prints names paths, ids and values that came from a file, a variable, the command line or Kafka: one
    holding a line break or an escape sequence must neither start a line that seems Puente's own nor reach the
    terminal as a control sequence. The error boundary (``puente.cli``) escapes errors the same way."""
    for line in lines:
        print(one_line(str(line)), file=file, flush=flush)


def given_folder(named: str, path: Path) -> None:
    """Refuse a file named on the command line (or in a variable: ``named`` says which) whose folder is not there,
    in one line naming it: a mistyped path is not made into folders. Only a default, which Puente names, is."""
    folder = path.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise ConfigError(f"{named} {path}: its folder {folder} {what}; make it first, or name a file in a folder "
                          "that is there")


def kafka(cfg: PuenteSettings, name: str) -> KafkaConnection:
    """The Kafka connection of this command, named ``name`` in Kafka's client ids."""
    return connection(cfg, name)


def when(text: str) -> datetime:
    """An argparse type for times a person types (ISO 8601; without an offset, UTC), within what every offset can
    still express two days either side (times are compared in UTC, dates in partners' local time, and a window
    reaches past its ends): 9999-12-31 in UTC would overflow before a command read it."""
    try:
        value = parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    try:
        (value - timedelta(days=2)).astimezone(UTC), (value + timedelta(days=2)).astimezone(UTC)
    except OverflowError:
        raise argparse.ArgumentTypeError("give a time between the years 0001 and 9999") from None
    return value


def seconds(low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a number of seconds from ``low`` to ``high`` (not NaN, not infinite), else a usage error."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError("not a number of seconds") from None
        if not low <= value <= high:  # NaN fails both comparisons
            raise argparse.ArgumentTypeError(f"give {low:g} to {high:g} seconds")
        return value

    return parse


def whole(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``, else a usage error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError("not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"give a whole number from {low:,} to {high:,}")
        return value

    return parse


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one command's coroutine to its end."""
    return asyncio.run(coro)
