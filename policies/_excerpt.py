"""Bounded quotes of alert values, for reasons and errors.

A decision's reasons go into the audit record and the decision memo, and an
error message into logs and dead letters; a value quoted whole would let one
alert with a megabyte-long marking make each of them a megabyte. So values are
quoted as short excerpts: enough for a person to recognise the value, never
the whole of a long one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

LIMIT = 40  # characters of one quoted value, ellipsis included
SHOWN = 3  # values of a list quoted before "and N more"


def excerpt(value: Any, limit: int = LIMIT) -> str:
    """``repr`` of ``value``, cut to at most ``limit`` characters with an ellipsis.

    Only the start of a long string is looked at, so a huge value costs no more
    than a short one; any other value is shown by its type and ``repr`` only when
    that cannot fail or be large (numbers, None, booleans).
    """
    if isinstance(value, str):
        text = repr(value[:limit])
    elif value is None or (isinstance(value, (bool, int, float)) and not _huge(value)):
        text = repr(value)
    else:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def excerpts(values: Sequence[Any], shown: int = SHOWN, limit: int = LIMIT) -> str:
    """Comma-separated excerpts of the first ``shown`` values, then "and N more"."""
    head = ", ".join(excerpt(v, limit) for v in values[:shown])
    rest = len(values) - shown
    return head + (f" and {rest} more" if rest > 0 else "")


def _huge(value: int | float) -> bool:
    # repr of an int with thousands of digits is slow (and refused above 4300 digits).
    return isinstance(value, int) and not -(10**20) < value < 10**20
