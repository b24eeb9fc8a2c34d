"""The ``puente`` command line. Each area registers its own subcommands here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from puente import __version__
from puente.errors import PuenteError

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _registrars() -> list[Register]:
    # Imported lazily so that `puente kafka status` does not pay for the policy engine.
    from adapters.cli import register as adapt
    from broker.cli import register as service
    from broker.demo import register as demo
    from policies.cli import register as policy
    from puente.kafka_cli import register as kafka
    from puente.schema_cli import register as schema

    return [kafka, schema, policy, adapt, service, demo]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="puente",
        description="Puente: interagency alert sharing with agreement-based release, over Apache Kafka.",
    )
    parser.add_argument("--version", action="version", version=f"puente {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in _registrars():
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors print one clear line to stderr and exit non-zero."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except PuenteError as exc:
        print(f"puente: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `puente audit log | head`: the reader left; that is not an error
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("puente: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
