"""Reading input without letting it say two things at once: bounded files, JSON without duplicate keys.

``json.loads`` keeps the last of two equal keys and reads ``NaN`` and ``Infinity``; on a marking
or in a key file that silently changes what a document means. Every reader of JSON that comes
from outside Puente (agency exports, alert files, key files) uses ``unique_keys`` and
``no_constants`` here, and every file a person names is opened by ``open_regular``
(``read_bounded``). Bottom layer: no Puente imports.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import unicodedata
from pathlib import Path
from typing import Any, BinaryIO

# Characters Unicode says to draw as nothing (Default_Ignorable_Code_Point) that are not format (Cf)
# characters, which are refused as such: the combining grapheme joiner, the Hangul fillers, the Khmer
# inherent vowels, the Mongolian variation selectors and the variation selectors. They print as nothing, yet
# make two equal names compare unequal ("Pére\u034fz" is not "Pérez" to a watchlist match).
_IGNORABLE = re.compile("[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180d\u180f\u3164\ufe00-\ufe0f\uffa0"
                        "\U000e0100-\U000e01ef]")


def unseen_mark(text: str) -> str | None:
    """The first character of ``text`` that is drawn as nothing though not a format or control character
    (``_IGNORABLE``), or that no version of Unicode this Python knows assigns (Cn), described as
    ``the invisible character U+XXXX NAME`` or ``the unassigned character U+XXXX``; None when there is none.
    (Control, format and surrogate characters are each reader's own to name.)"""
    found = _IGNORABLE.search(text)
    first = found.start() if found is not None else len(text)
    if not text.isprintable():
        for char in text[:first]:
            if not char.isprintable() and unicodedata.category(char) == "Cn":
                return f"the unassigned character U+{ord(char):04X}"
    if found is None:
        return None
    char = found.group()
    return f"the invisible character U+{ord(char):04X} {unicodedata.name(char, '')}".rstrip()


class DuplicateKey(ValueError):
    """A JSON object gave the same key twice; ``key`` is that key (a name, never a value)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key {key[:40]!r} appears twice in one object")
        self.key = key


def printable(text: str) -> str:
    """``text`` for a terminal: each character that is not printable escaped as Python writes it (``\x1b``,
    ``\u202e``), but for the line breaks between its lines. An escape sequence, a C1 control or a bidi override
    in a name a person or a file gave must not reach the terminal as one (it could clear the screen, retitle
    it, or reorder what a line appears to say)."""
    if text.isprintable():
        return text
    return "\n".join("".join(c if c.isprintable() else repr(c)[1:-1] for c in line) for line in text.split("\n"))


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook``: an object's members as a dict, refusing a key given twice (the hook
    sees every object, so at any depth). The common case costs one dict and one length check."""
    doc = dict(pairs)
    if len(doc) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return doc


def no_constants(name: str) -> Any:
    """``parse_constant``: ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON numbers."""
    raise ValueError(f"{name} is not a JSON number")


class TooLarge(ValueError):
    """A file over the size a reader accepts."""


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading: a regular file, or a pipe (``<(pass show x)``, ``/dev/stdin`` fed by
    one); OSError as open gives it, and OSError (strerror "not a regular file or a pipe") for anything
    else, a folder or a device such as /dev/zero, which never ends. Opened without blocking, so a FIFO no
    one writes to reads as empty instead of hanging the command. Every file a person names is read
    through this (``read_bounded``, or a reader that streams it with a bound of its own)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    fh = os.fdopen(fd, "rb")
    mode = os.fstat(fd).st_mode
    if stat.S_ISFIFO(mode):
        os.set_blocking(fd, True)  # a writer that is there may take its time; one that is not gives EOF
    elif not stat.S_ISREG(mode):
        fh.close()
        raise OSError(errno.EINVAL, "not a regular file or a pipe", str(path))
    return fh


def read_bounded(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of the regular file ``path`` (``open_regular``); TooLarge when there are more."""
    with open_regular(path) as fh:
        raw = fh.read(limit + 1)
    if len(raw) > limit:
        raise TooLarge(f"{path} is larger than {limit:,} bytes")
    return raw
