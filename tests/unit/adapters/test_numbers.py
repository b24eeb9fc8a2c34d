"""Numbers from text: only digits 0-9, a sign and one separator reach int() or float(), whatever else they read."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from adapters import _fields as f
from puente.errors import AdapterError

PN_HEADER = "HSIIP-DIJ  20261120120000DIJ"
PN_CASE = ("SDIJ-26-0000001202611151128PANAMA          AVENIDA                       +09.03197 -079.49227 "
           "DIJ COLON               OPERACION X         LAABC123      PANR")


def _reason(call: Callable[[str], object], value: str) -> str:
    with pytest.raises(AdapterError) as caught:
        call(value)
    assert str(caught.value)
    return caught.value.reason


@pytest.mark.parametrize("amount", ["1,250e0", "1.2_50", "1_250", "1.250E0", "1e3", "12E-1", "nan", "inf",
                                    "-inf", "Infinity", ".", ",", "1.2.3", "1,2,3", "0x10", "1 250", "12\x1f",
                                    "\x0b12", "1\u00a0250"])
def test_a_quantity_float_reads_but_digits_and_one_separator_do_not_write_is_refused(amount: str) -> None:
    """An exponent, '_' between digits, a special value or a separator without digits on both sides is refused
    as invalid: float() reads them, and '1,250e0' or '1.2_50' got past the thousands check as 1.25."""
    assert _reason(lambda v: f.quantity(v, "cantidad"), amount) == f.INVALID


def test_a_quantity_of_digits_and_one_separator_is_still_read() -> None:
    """Plain amounts, a decimal comma, a sign and spaces around are read as before."""
    assert f.quantity("1250", "q") == 1250 and f.quantity("1250,5", "q") == 1250.5
    assert f.quantity("+0.250", "q") == 0.25 and f.quantity(" 12\t", "q") == 12
    assert _reason(lambda v: f.quantity(v, "q"), "-12") == f.NEGATIVE
    # As exports write them: a fraction without its 0 (a database's number-to-text), a whole with its point, and
    # the blanks a spreadsheet leaves around a cell (a no-break space, a line end).
    assert f.quantity(".5", "q") == f.quantity(",5", "q") == 0.5 and f.quantity("5.", "q") == 5
    assert f.quantity("12\u00a0", "q") == f.quantity("\u00a012\r\n", "q") == 12


@pytest.mark.parametrize("count", ["1_000", "1e3", "\x1f12", "12\u2003", "\u20031"])
def test_a_count_int_reads_but_digits_do_not_write_is_refused(count: str) -> None:
    """'_' and blanks other than spaces and tabs (which int() strips) are refused in a count."""
    assert _reason(lambda v: f.integer(v, "Cantidad de personas"), count) == f.INVALID


def test_a_count_with_spaces_around_and_a_sign_is_read() -> None:
    """' 12 ', '\\t12' and '+12' are still the count 12."""
    assert f.integer(" 12 ", "n") == f.integer("\t12", "n") == f.integer("+12", "n") == 12
    assert f.integer("12\u00a0", "n") == f.integer("12\r\n", "n") == 12  # a spreadsheet's blanks


@pytest.mark.parametrize("amount", ["1,250e0", "1.2_50", "1_250", "1.250E0"])
def test_a_pn_item_with_an_exponent_or_underscore_in_its_quantity_is_refused(
        amount: str, reason: Callable[..., str]) -> None:
    """The fixed-width I line's quantity goes through the same check: no seizure of 1.25 or 1250 from them."""
    item = "IDIJ-26-0000001DRMARIHUANA   " + amount.rjust(12) + "KG  "
    data = "\r\n".join([PN_HEADER, PN_CASE, item, "T00000001"]) + "\r\n"
    assert reason("pn", data.encode("cp1252")) == f.INVALID
