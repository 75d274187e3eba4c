"""Vietnamese number and date formatting, exactly as the documents print it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from baocao import vnformat


@pytest.mark.parametrize(
    ("value", "kwargs", "text"),
    [
        (112108, {}, "112.108"),
        (2266.02, {"decimals": 3}, "2.266,020"),
        (1, {"pad": 2}, "01"),
        (12, {"pad": 2}, "12"),
        (0, {}, "0"),
        (1234567, {}, "1.234.567"),
        (Decimal("40898"), {}, "40.898"),
    ],
)
def test_number(value, kwargs, text):
    assert vnformat.number(value, **kwargs) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(43.5, "43,5%"), (100, "100%"), (100.0, "100%"), (Decimal("21.7"), "21,7%"), (0, "0%")],
)
def test_percent(value, text):
    assert vnformat.percent(value) == text


def test_percent_of_report_figures():
    assert vnformat.percent(2266.02 / 65214 * 100) == "3,5%"
    assert vnformat.percent(12746 / 58708 * 100) == "21,7%"
    assert vnformat.percent(112108 / 257700 * 100) == "43,5%"


def test_dates():
    assert vnformat.date(dt.date(2022, 2, 21)) == "21/02/2022"
    assert vnformat.long_date(dt.date(2022, 4, 5)) == "ngày 05 tháng 4 năm 2022"
    assert vnformat.long_date(dt.date(2022, 2, 3)) == "ngày 03 tháng 02 năm 2022"
    assert vnformat.long_date(dt.date(2022, 12, 25)) == "ngày 25 tháng 12 năm 2022"


def test_quarter():
    assert vnformat.quarter(1, 2022) == "Quý I/2022"
    assert vnformat.quarter(4, 2023) == "Quý IV/2023"


def test_round_half_up():
    assert vnformat.round_half_up(3.45, 1) == Decimal("3.5")
    assert vnformat.round_half_up(2.5, 0) == Decimal("3")  # not banker's 2
    assert vnformat.round_half_up(2.675, 2) == Decimal("2.68")
    assert vnformat.round_half_up(Decimal("43.45"), 1) == Decimal("43.5")
    assert str(vnformat.round_half_up(3, 1)) == "3.0"


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        (47.03, 1, "47,0%"),  # not whole: one decimal even when it rounds to 47,0
        (47.0, 1, "47%"),  # exactly whole
        (47, 1, "47%"),
        (Decimal("47.0"), 1, "47,0%"),  # a figure already rounded from 47,03 (derive)
        (Decimal("47"), 1, "47%"),  # an exactly whole one (derive)
        (99.96, 1, "100,0%"),  # rounds up to a whole number: still not 100%
        (47.034, 2, "47,03%"),  # a derived figure's own decimals
        (3.45, 1, "3,5%"),  # half up
        (Decimal("0"), 1, "0%"),
    ],
)
def test_percent_decides_whole_before_rounding(value, decimals, text):
    assert vnformat.percent(value, decimals) == text
