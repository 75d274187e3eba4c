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
