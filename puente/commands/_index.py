"""The audit index's file as the commands name it: ``puente audit index`` builds it, ``puente audit serve`` reads
it; both take ``--index`` or ``PUENTE_AUDIT_INDEX`` and refuse a path that cannot be the index before Kafka is
reached. A module of its own so that ``audit``'s verbs need not load the console's web server to find it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from broker.audit_index import DEFAULT_INDEX
from puente.commands._common import given_folder
from puente.errors import ConfigError


def index_path(given: Path | None) -> tuple[Path, str | None]:
    """The audit index's file: ``--index``, else ``PUENTE_AUDIT_INDEX``, else the default; and how it was named
    (the option or the variable; None for the default)."""
    if given is not None:
        return given, "--index"
    named = os.environ.get("PUENTE_AUDIT_INDEX")
    return (Path(named), "PUENTE_AUDIT_INDEX") if named else (Path(DEFAULT_INDEX), None)

def check_index(index: Path, named: str | None) -> None:
    """Refuse, before Kafka is reached, an index path that is there but is no regular file (a folder, say), or
    whose folder is not there: the catch-up would otherwise fail only after connecting. A missing index is made,
    and the default's folder (``named`` None), never a folder of a path given (``--index``, the variable)."""
    what = f"{named} {index}" if named else f"the audit index {index}"
    try:
        info = os.lstat(index)
    except FileNotFoundError:
        parent = index.parent
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"{what}: {parent} is not a folder") from None
        if named is not None:
            given_folder(named, index)
        return
    except OSError as exc:
        raise ConfigError(f"{what}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{what}: not a regular file (a folder or a link?); name the index's file")
