"""Small pure helpers the console's pages and templates share: times, durations, safe text, CSV cells."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from jinja2 import Undefined
from markupsafe import Markup

from broker.audit.verify import plain

# What a spreadsheet may run as a formula when a cell starts with it, after any spaces (full-width forms too).
_FORMULA = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_CONTROL = ("\t", "\r")
# A place a reader may start a cell: the cell's own start, or any character a reader may split a line at, whatever the
# file's own (Excel in es-CO or es-CR splits at ``;``; a line break ends a row for a reader that no longer sees the
# quotes, which one splitting at ``;`` does not after the file's first ``,``). Then any blanks and double quotes (a
# reader takes ``""`` there as an empty quoted start and goes on), then a formula's first character: the cell such a
# reader starts would run it.
_SPLIT_FORMULA = re.compile('(?:^|[,;\t\r\n])(?:[^\\S\t\r\n]|")*(?=[' + re.escape("".join(_FORMULA + _CONTROL)) + "])")


def printable(value: Any) -> Any:
    """A value as a template prints it, with its unprintable characters escaped (``plain``: ``\\x1b``,
    ``\\u202e``): the console's Jinja ``finalize``, so every page's every printed value passes here.

    What the console shows was written by partners (a receipt's status, a checkpoint's time), agencies and
    auditors (a query's parameters): autoescaping keeps it from making HTML, not from carrying controls and
    bidi overrides, which reverse or hide what an auditor reads (U+202E + ``DEVIECER`` reads ``RECEIVED``).
    Autoescaping still applies after this. ``Markup`` is HTML the console made (a macro's output, a chart),
    whose line breaks are its layout: it is escaped line by line and stays ``Markup`` (the escapes hold no
    character HTML gives meaning to). Numbers, None and undefined values are Jinja's to print."""
    if isinstance(value, Markup):
        return Markup("\n".join(plain(line, len(line)) for line in value.split("\n")))  # noqa: S704 - see above
    if value is None or isinstance(value, (bool, int, float, Undefined)) or hasattr(value, "__html__"):
        return value
    text = value if isinstance(value, str) else str(value)
    return plain(text, len(text))


def segment(value: Any) -> str:
    """``value`` percent-encoded as one URL path segment: every character outside letters, digits and
    ``-._~`` is encoded, ``/`` included. Ids are chosen by agencies: Jinja's ``urlencode`` keeps ``/``, so
    ``x/../../dead-letters`` in ``/alerts/...`` made a link a browser resolves to another page. The routes
    decode it back (``{alert_id:path}`` takes a decoded ``/``)."""
    return quote("" if value is None else str(value), safe="")


def when(value: Any) -> str:
    """An audit time (ISO text or datetime) as ``2026-11-01 10:00:05 UTC``; ``-`` when absent; anything else as
    ``not a readable time: '...'``."""
    if value in (None, ""):
        return "-"
    # Times come from records others signed: one that is no time, or out of datetime's range (a year-1 time east
    # of UTC, a huge number), is shown as written, cut short and said to be unreadable, never a page that fails nor
    # text passed off as a time (its unprintable characters are escaped as every printed value's: ``printable``).
    try:
        if isinstance(value, (int, float)):
            at = datetime.fromtimestamp(value / 1000, UTC)
        elif isinstance(value, datetime):
            at = value
        else:
            at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (ValueError, OverflowError, OSError):
        return f"not a readable time: '{str(value)[:40]}'"


def duration(ms: Any) -> str:
    """Milliseconds as a person reads them: ``850 ms``, ``12.4 s``, ``3.2 min``, ``5.0 h``."""
    if ms is None:
        return "-"
    value = float(ms)
    if value < 1000:
        return f"{value:.0f} ms"
    if value < 60_000:
        return f"{value / 1000:.1f} s"
    if value < 3_600_000:
        return f"{value / 60_000:.1f} min"
    return f"{value / 3_600_000:.1f} h"


def text(value: Any) -> str:
    """A value from the audit for display: lists joined, None as ``-``."""
    if value is None or value == "":
        return "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(text(v) for v in value) or "-"
    return str(value)


def cell(value: Any) -> str:
    """A CSV cell: lists joined with ``; ``, and text a spreadsheet would run as a formula led by ``'``: a cell that
    starts with one of its characters (``=``, ``+``, ``-``, ``@``, tab, CR: OWASP's list), and every place inside
    where a reader may split (``,``, ``;``, tab, CR, LF) is followed by one, blanks and double quotes between, since
    a spreadsheet that splits the line there (a locale whose separator is ``;``, which then no longer sees the
    file's quotes, so a line break inside a cell ends its row) starts a cell with it. At those places the ``'``
    goes right before the formula's character, not only before the whole cell: the piece a split leaves is what
    the sheet reads (``SNM:9;'=cmd``, ``SNM:9;"'=cmd``, ``note\n'=HYPERLINK``). It stays in the text a reader of
    the file's own ``,`` sees (``ALERT;'-5``): the cost of keeping a reader that splits elsewhere from running it.
    A number (int or float; a bool as ``True``/``False``) is written as one: only text can hold a formula,
    and a quote would make ``-1500`` text in the sheet. The ``-`` that stands for "none" is a sign alone,
    which computes nothing: it stays as it is."""
    if value is None:
        return ""
    if isinstance(value, (bool, int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        value = "; ".join(cell(v) if not isinstance(v, dict) else _change(v) for v in value)
    elif isinstance(value, dict):
        value = _change(value)
    out = str(value)
    if out == "-":
        return out
    led = "'" + out if out.startswith(_CONTROL) or out.lstrip().startswith(_FORMULA) else out
    return _SPLIT_FORMULA.sub(lambda found: found.group() + "'", led)


def _change(change: dict[str, Any]) -> str:
    parts = [str(change.get("field", "")), str(change.get("action", ""))]
    if change.get("rule"):
        parts.append(f"rule {change['rule']}")
    return " ".join(p for p in parts if p)


_PATH_SAFE = "/?#&=;:@!$'()*+,~%-._"
"""What ``local_path`` leaves as it is: RFC 3986's characters of a path, query and fragment, ``%`` for what is
already escaped. Any other character (a tab, a newline, a space, a backslash, a letter beyond ASCII) is escaped."""


def local_path(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never ``//host`` or ``https://...``). An allow-list,
    not a filter of what browsers are known to read as another site: the target must start with one ``/``, and
    every character outside ``_PATH_SAFE`` is percent-escaped, so a character a browser strips or reads as a
    slash (a tab after the first slash, a backslash) stays a character of a path here, whatever quoting the framework's
    redirect does after this."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    out = quote(target[:500], safe=_PATH_SAFE)
    return out if out.startswith("/") and not out.startswith("//") else "/"


def redactions(changes: Any) -> dict[str, list[dict[str, Any]]]:
    """A decision's field changes grouped by what was done (dropped, masked, pseudonymised, generalised)."""
    names = {"drop": "dropped", "mask": "masked", "pseudonymise": "pseudonymised", "generalise": "generalised"}
    out: dict[str, list[dict[str, Any]]] = {}
    for change in changes or ():
        if isinstance(change, dict):
            out.setdefault(names.get(str(change.get("action")), str(change.get("action"))), []).append(change)
    return out
