"""SENAFRONT's report date (Fecha del informe) against the event's: never before it, with a time or without."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from adapters import _fields as f

HEADER = "N° Informe;Fecha;Hora;Fecha del informe;Hora del informe;Tipo de evento"


def _csv(*rows: str) -> bytes:
    return ("\r\n".join([HEADER, *rows]) + "\r\n").encode("utf-8")


def test_a_report_date_alone_before_the_event_date_is_refused(run: Callable[..., list[Any]]) -> None:
    """A report dated days before the event, with no time, is invalid-date as it is with a time: it was made the
    event time, hiding the error. The message names the columns and no date."""
    for report_time in ("", "08:00"):
        results = run("senafront", _csv(f"A-1;14/11/2026;20:54;10/11/2026;{report_time};Cruce"))
        err = results[0].error
        assert err is not None and err.reason == f.INVALID_DATE, err
        assert "10/11/2026" not in str(err) and "2026" not in str(err)


def test_a_report_date_alone_on_the_event_day_is_not_before_the_event(one: Callable[..., dict[str, Any]]) -> None:
    """On the event's own day a date alone means no earlier than the event: reported_at is the event time."""
    alert = one("senafront", _csv("A-1;14/11/2026;20:54;14/11/2026;;Cruce"))
    assert alert["reported_at"] == alert["occurred_at"] == datetime(2026, 11, 15, 1, 54, tzinfo=UTC)


def test_a_report_date_alone_after_the_event_day_is_that_day_s_start(one: Callable[..., dict[str, Any]]) -> None:
    """A later day without a time is that day's midnight, Panama time."""
    alert = one("senafront", _csv("A-1;14/11/2026;20:54;16/11/2026;;Cruce"))
    assert alert["reported_at"] == datetime(2026, 11, 16, 5, 0, tzinfo=UTC)
