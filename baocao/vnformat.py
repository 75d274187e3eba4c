"""Vietnamese number and date formatting, as official documents print them.

`.` groups thousands and `,` marks decimals (`112.108`, `2.266,020`, `43,5%`); dates are
`dd/mm/yyyy` (`21/02/2022`); small counts are often zero-padded (`01 văn bản`); quarters
are written `Quý I/2022`. Number grouping comes from babel's `vi` locale.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.numbers import format_decimal

LOCALE = "vi_VN"
_ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}


def round_half_up(value: float | Decimal, decimals: int = 1) -> Decimal:
    """Round like people do on paper (3,45 -> 3,5), not banker's rounding."""
    q = Decimal(1).scaleb(-decimals)
    d = Decimal(str(value))
    digits = max(28, d.adjusted() + decimals + 2)  # 1e30 typed in a cell is still printable
    return d.quantize(q, rounding=ROUND_HALF_UP, context=Context(prec=digits))


def number(value: float | int | Decimal, decimals: int = 0, pad: int = 0) -> str:
    """`112108` -> `112.108`; `2266.02, decimals=3` -> `2.266,020`; `1, pad=2` -> `01`."""
    return _number(value, decimals, pad)


# babel takes ~40 µs a figure, and a national batch formats the same few hundred values tens of
# thousands of times (forms, receipts, appendices). The text depends only on the numeric value
# (5, 5.0 and Decimal("5.00") print alike, and equal values hash alike), so a cache is exact.
@lru_cache(maxsize=1 << 16)
def _number(value: float | int | Decimal, decimals: int, pad: int) -> str:
    d = round_half_up(value, decimals)
    d = abs(d) if d == 0 else d  # never "-0"
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    with localcontext() as ctx:  # babel rounds again in the current context
        ctx.prec = max(28, d.adjusted() + decimals + 2)
        text = format_decimal(d, format=pattern, locale=LOCALE)
    if pad and d >= 0 and decimals == 0:
        text = text.zfill(pad)
    return text


def decimals_of(value: float | int | Decimal, most: int = 6) -> int:
    """The decimals a value was typed with (at most `most`): 2266.02 -> 2, 40898.0 -> 0."""
    d = round_half_up(value, most).normalize()
    return max(0, -d.as_tuple().exponent)


@lru_cache(maxsize=1 << 16)  # exact for the same reason as `_number`
def figure(value: float | int | Decimal, decimals: int = 0, most: int = 6) -> str:
    """A value as the unit typed it, the Vietnamese way: at least `decimals` decimals, and as
    many more as it has (up to `most`), so 6,4 never prints as 6. `40898` -> `40.898`;
    `2266.02, 3` -> `2.266,020`; `6.4` -> `6,4`."""
    return number(value, max(decimals, min(decimals_of(value, most), most)))


def percent(value: float | int | Decimal, decimals: int = 1) -> str:
    """`43.5` -> `43,5%`; a whole value prints without decimals: `100` -> `100%`.

    Whether a value is whole is decided before rounding: `47.03` -> `47,0%` (it is not 47),
    `47.0` -> `47%`. A `Decimal` says it by its exponent, as `derive` writes them: a figure
    already rounded to its decimals keeps them (`Decimal("47.0")` -> `47,0%`), an exact whole
    one has none (`Decimal("47")` -> `47%`)."""
    if isinstance(value, Decimal):
        whole = value == value.to_integral_value() and value.as_tuple().exponent >= 0
    else:
        whole = float(value).is_integer()
    if whole:
        return f"{number(value, 0)}%"
    return f"{number(round_half_up(value, decimals), decimals)}%"


def date(value: dt.date) -> str:
    """`2022-02-21` -> `21/02/2022`."""
    return value.strftime("%d/%m/%Y")


def weekday(value: dt.date) -> str:
    """`2026-11-25` -> `Thứ Tư` (babel's `vi` day names)."""
    return format_date(value, "EEEE", locale=LOCALE)


def moment(value: dt.datetime) -> str:
    """A time of day in Vietnam: `16:40 ngày 14/03/2022` (the value must be aware)."""
    local = value.astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))
    return f"{local:%H:%M} ngày {local:%d/%m/%Y}"


def long_date(value: dt.date) -> str:
    """The dateline of a document: `ngày 05 tháng 4 năm 2022` (day padded, month 1-2 not)."""
    month = f"{value.month:02d}" if value.month < 3 else str(value.month)
    return f"ngày {value.day:02d} tháng {month} năm {value.year}"


def quarter(q: int, year: int) -> str:
    """`Quý I/2022`."""
    return f"Quý {_ROMAN[q]}/{year}"


def roman(n: int) -> str:
    return _ROMAN[n]
