"""Validate submitted values: types, required values, ranges, totals, plausible percentages.

Plain functions over a DataFrame of observations from any number of submissions
(columns `sub, unit, indicator, raw, cell`, optionally `problem` and `percent_cell`), so a
province validates a batch of files in a few vectorised steps.

Each finding keeps the rule's id (`rule`, for the office) and says in words what a clerk must
fix, with no internal code: the cell without the form's own sheet name, the indicator's
label, the value as typed written the Vietnamese way, and what it should be
("Ô E12, Tổng chi ngân sách Nhà nước: 40.898, nhưng Chi ngân sách huyện + Chi ngân sách xã
= 35.107 + 5.719 = 40.826"). The same pieces are kept apart (`label`, `value`, `expected`)
for the table of findings in a message's HTML part. Numbers that differ are printed with
enough decimals to show that they differ.

The previous period's figures, when the caller passes them (a DataFrame `unit, indicator,
value[, period]`), turn a value that jumps (x10 or more, /100 or less) or a percentage typed as
a fraction (0,9 where last period said 85 %) into a warning to the unit, never a rejection.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd

from baocao import vnformat
from baocao.config import Config, Indicator, ReportDef
from baocao.forms import FORM_SHEET
from baocao.periods import Period

FINDING_COLUMNS = [
    "sub",
    "unit",
    "indicator",
    "cell",
    "rule",
    "severity",
    "message_vi",
    "message_en",
    "label",  # the indicator's label, as the form prints it
    "value",  # what the unit typed, written the Vietnamese way
    "expected",  # what it should be, in words
]
# Where an indicator sets no `max`, the largest value taken as plausible: a count of dossiers
# or people above a billion, or an amount above 10^12 (of the indicator's unit), is a typo.
SANE_MAX = {"integer": 1e9, "decimal": 1e12, "percent": 100.0}
_VI_NUMBER = re.compile(r"^-?\d{1,3}(\.\d{3})+(,\d+)?$|^-?\d+(,\d+)?$")


def parse_number(raw: object) -> float | None:
    """A number from a cell: Excel numbers as they are; text in Vietnamese (`2.266,020`) or
    plain (`2266.02`) notation. None when it is not a number."""
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, int | float | np.integer | np.floating):
        return float(raw) if np.isfinite(raw) else None
    text = str(raw).strip().replace(" ", "").replace("\u00a0", "").rstrip("%")
    if not text:
        return None
    if _VI_NUMBER.match(text):
        number = float(text.replace(".", "").replace(",", "."))
    else:
        try:
            number = float(text)
        except ValueError:
            return None
    return number if np.isfinite(number) else None  # "1e400" is not a number anyone means


def parse_date(raw: object) -> dt.date | None:
    if isinstance(raw, dt.datetime):
        return raw.date()
    if isinstance(raw, dt.date):
        return raw
    text = str(raw).strip()
    for fmt in ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def _blank(raw: object) -> bool:
    return raw is None or (isinstance(raw, float) and np.isnan(raw)) or str(raw).strip() == ""


def _typed(kind: str, raw: object, blank: bool) -> tuple[float, str | None]:
    """(number, text) for one cell: numbers in the first, dates as ISO text plus ordinal."""
    if blank:
        return np.nan, None
    if kind == "text":
        return np.nan, str(raw).strip()[:4000]
    if kind == "date":
        day = parse_date(raw)
        return (float(day.toordinal()), day.isoformat()) if day else (np.nan, None)
    number = parse_number(raw)
    return (np.nan if number is None else number), None


def _percent_of(fraction: object) -> object:
    """0.9 from a cell in a percent format -> 90 (rounded off the float's noise: 0.07 * 100
    is 7.000000000000001)."""
    number = parse_number(fraction)
    return fraction if number is None else round(number * 100, 9)


def place(cell: str) -> str:
    """Where a finding is, as the unit sees its file: `BaoCao!E12` -> "Ô E12" (the form's
    own sheet goes unnamed), `Sheet1!E12` -> "Ô E12 (sheet Sheet1)", `D5` (a CSV) -> "Ô D5"."""
    if not cell:
        return ""
    sheet, _, ref = str(cell).rpartition("!")
    sheet = sheet.strip("'")
    return f"Ô {ref}" if not sheet or sheet == FORM_SHEET else f"Ô {ref} (sheet {sheet})"


def _place_en(cell: str) -> str:
    return place(cell).replace("Ô ", "Cell ", 1) or "Missing row"


def shown(ind: Indicator, value: float, decimals: int | None = None) -> str:
    """A typed value as the unit reads it: `40.898`, `2.266,020`, `90%`, `21/02/2022`."""
    if ind.type == "date":
        return vnformat.date(dt.date.fromordinal(int(value)))
    least = ind.decimals if ind.type == "decimal" else 0
    text = (
        vnformat.number(value, decimals) if decimals is not None else vnformat.figure(value, least)
    )
    return f"{text}%" if ind.type == "percent" else text


def _apart(ind: Indicator, a: float, b: float, other: Indicator | None = None) -> tuple[str, str]:
    """Two different values (`b` of indicator `other`, default the same) written so that they
    read differently: more decimals until they do (5 + 1 = 6 never faces a total of 6,4
    printed as 6)."""
    other = other or ind
    left, right = shown(ind, a), shown(other, b)
    decimals = max(vnformat.decimals_of(a), vnformat.decimals_of(b), ind.decimals)
    while left == right and a != b and decimals < 9 and ind.type != "date":
        decimals += 1
        left, right = shown(ind, a, decimals), shown(other, b, decimals)
    return left, right


def _said(where: str, label: str, value: str, expected: str) -> str:
    """The finding in words: "Ô E12, <label>: <value>, nhưng <what it should be>"."""
    head = ", ".join(x for x in (where, label) if x)
    return f"{head}: {value}, nhưng {expected}" if value else f"{head}: {expected}"


def _finding(row, rule, severity, vi, en, *, label="", value="", expected="") -> dict:
    return {
        "sub": row["sub"],
        "unit": row["unit"],
        "indicator": row.get("indicator", ""),
        "cell": row.get("cell", ""),
        "rule": rule,
        "severity": severity,
        "message_vi": vi,
        "message_en": en,
        "label": label,
        "value": value,
        "expected": expected,
    }


def _raw(raw: object) -> str:
    return f"“{str(raw).strip()[:200]}”"


def _bounds(ind: Indicator) -> tuple[float | None, float | None]:
    """The least and greatest value an indicator accepts (a sane ceiling when none is set)."""
    return ind.min, ind.max if ind.max is not None else SANE_MAX.get(ind.type)


def _out_of_range(obs: pd.DataFrame, inds: dict[str, Indicator]) -> pd.Series:
    """Which typed numbers fall outside their indicator's bounds (dates are not ranged)."""
    bounds = {code: _bounds(ind) for code, ind in inds.items()}
    low = obs["indicator"].map({c: b[0] for c, b in bounds.items()}).astype("float64")
    high = obs["indicator"].map({c: b[1] for c, b in bounds.items()}).astype("float64")
    value = obs["value_num"]
    ranged = value.notna() & obs["type"].ne("date")
    return ranged & ((low.notna() & (value < low)) | (high.notna() & (value > high)))


def convert_values(
    obs: pd.DataFrame, report: ReportDef, cfg: Config
) -> tuple[pd.DataFrame, list[dict]]:
    """Typed values (`value_num`, `value_text`) and the findings of type, required and range."""
    inds = report.indicator_map
    findings: list[dict] = []
    owned = pd.MultiIndex.from_tuples(
        [(u, i.code) for u in obs["unit"].unique() for i in cfg.indicators_of(report, u)],
        names=["unit", "indicator"],
    )
    known = pd.Series(
        pd.MultiIndex.from_frame(obs[["unit", "indicator"]]).isin(owned), index=obs.index
    )
    for _, row in obs[~known].iterrows():
        label = f"mã chỉ tiêu {_raw(row['indicator'])}"
        expected = "mã này không có trong biểu mẫu của đơn vị nên dòng này không được dùng"
        findings.append(
            _finding(
                row,
                "unknown_indicator",
                "warning",
                _said(place(row["cell"]), label, "", expected),
                f"{_place_en(row['cell'])}: indicator code {_raw(row['indicator'])} is not on "
                "this unit's form; the row is ignored.",
                label=label,
                expected=expected,
            )
        )
    obs = obs[known]
    if "problem" not in obs.columns:
        obs = obs.assign(problem=None)
    dup = obs.duplicated(["sub", "indicator"], keep=False)
    for (_sub, code), rows in obs[dup].groupby(["sub", "indicator"], sort=False):
        ind, first = inds[code], rows.iloc[0]
        cells = "Ô " + ", ".join(place(c).removeprefix("Ô ") for c in rows["cell"])
        expected = (
            f"chỉ tiêu này xuất hiện {len(rows)} lần trong tệp; chỉ giữ một dòng cho mỗi chỉ tiêu"
        )
        typed = " / ".join("(trống)" if _blank(r) else str(r).strip() for r in rows["raw"])
        findings.append(
            _finding(
                first,
                "duplicate",
                "error",
                _said(cells, ind.label, typed, expected),
                f"{cells.replace('Ô ', 'Cells ', 1)}, {ind.label}: appears {len(rows)} times; keep one row.",
                label=ind.label,
                value=typed,
                expected=expected,
            )
        )
    obs = obs.drop_duplicates(["sub", "indicator"], keep="first").copy()
    if "percent_cell" in obs.columns:  # Excel stores 90 % as 0.9: the number meant is 90
        scaled = obs["percent_cell"].eq(True) & obs["indicator"].map(
            lambda c: inds[c].type == "percent"
        )
        obs.loc[scaled, "raw"] = [_percent_of(raw) for raw in obs.loc[scaled, "raw"]]
    formula = obs["problem"].eq("formula_no_value")
    for _, row in obs[formula].iterrows():
        ind = inds[row["indicator"]]
        value = "một công thức chưa có kết quả"
        expected = (
            "tệp không lưu kết quả tính; mở tệp bằng Excel để Excel tính lại, lưu rồi gửi lại"
        )
        findings.append(
            _finding(
                row,
                "formula_no_value",
                "error",
                _said(place(row["cell"]), ind.label, value, expected),
                f"{_place_en(row['cell'])}, {ind.label}: a formula without a computed value; "
                "open the file in Excel, save, resend.",
                label=ind.label,
                value=value,
                expected=expected,
            )
        )
    obs["type"] = obs["indicator"].map(lambda c: inds[c].type)
    obs["blank"] = obs["raw"].map(_blank)
    typed = [
        _typed(t, raw, blank)
        for t, raw, blank in zip(obs["type"], obs["raw"], obs["blank"], strict=True)
    ]
    obs["value_num"] = pd.Series([t[0] for t in typed], index=obs.index, dtype="float64")
    obs["value_text"] = pd.Series([t[1] for t in typed], index=obs.index, dtype="object")
    numeric = obs["type"].isin(["integer", "decimal", "percent"]) & ~obs["blank"]
    dates = (obs["type"] == "date") & ~obs["blank"]

    for _, row in obs[(numeric | dates) & obs["value_num"].isna()].iterrows():
        ind = inds[row["indicator"]]
        expected = (
            "ô này cần một ngày dạng ngày/tháng/năm, ví dụ 21/02/2022"
            if ind.type == "date"
            else "ô này cần một số, ví dụ 1.234 hoặc 1.234,5"
        )
        findings.append(
            _finding(
                row,
                "type",
                "error",
                _said(place(row["cell"]), ind.label, _raw(row["raw"]), expected),
                f"{_place_en(row['cell'])}, {ind.label}: {_raw(row['raw'])} is not a "
                f"{'date (dd/mm/yyyy)' if ind.type == 'date' else 'number'}.",
                label=ind.label,
                value=_raw(row["raw"]),
                expected=expected,
            )
        )
    ints = obs[(obs["type"] == "integer") & obs["value_num"].notna()]
    for _, row in ints[ints["value_num"] % 1 != 0].iterrows():
        ind = inds[row["indicator"]]
        value = shown(ind, row["value_num"])
        expected = "ô này cần một số nguyên (không có phần thập phân)"
        findings.append(
            _finding(
                row,
                "integer",
                "error",
                _said(place(row["cell"]), ind.label, value, expected),
                f"{_place_en(row['cell'])}, {ind.label}: {value} must be a whole number.",
                label=ind.label,
                value=value,
                expected=expected,
            )
        )
    for _, row in obs[_out_of_range(obs, inds)].iterrows():
        ind, value = inds[row["indicator"]], row["value_num"]
        low, high = _bounds(ind)
        if (low is not None and value < low) or (high is not None and value > high):
            if low is not None and value < low:
                expected = f"giá trị không được nhỏ hơn {shown(ind, low)}"
            else:
                expected = f"giá trị không được lớn hơn {shown(ind, high)}"
            typed = shown(ind, value)
            findings.append(
                _finding(
                    row,
                    "range",
                    "error",
                    _said(place(row["cell"]), ind.label, typed, expected),
                    f"{_place_en(row['cell'])}, {ind.label}: {typed} is outside the allowed range.",
                    label=ind.label,
                    value=typed,
                    expected=expected,
                )
            )

    filled = obs[~obs["blank"] | formula]
    present = set(zip(filled["sub"], filled["indicator"], strict=True))
    for sub, unit in obs[["sub", "unit"]].drop_duplicates().itertuples(index=False):
        for ind in cfg.indicators_of(report, unit):
            if ind.required and (sub, ind.code) not in present:
                cell = obs.loc[(obs["sub"] == sub) & (obs["indicator"] == ind.code), "cell"]
                at = cell.iloc[0] if len(cell) else ""
                value = "chưa điền" if at else "không có dòng của chỉ tiêu này trong tệp"
                expected = "đây là chỉ tiêu bắt buộc, cần điền số liệu"
                findings.append(
                    _finding(
                        {"sub": sub, "unit": unit, "indicator": ind.code, "cell": at},
                        "required",
                        "error",
                        _said(place(at), ind.label, value, expected),
                        f"{_place_en(at)}, {ind.label}: a required value is missing.",
                        label=ind.label,
                        value=value,
                        expected=expected,
                    )
                )
    return obs.drop(columns=["blank"]), findings


def check_rules(values: pd.DataFrame, report: ReportDef, plans: dict[str, float]) -> list[dict]:
    """Totals equal the sum of their parts, parts do not exceed wholes, percentages are
    plausible: checked per submission on the typed values."""
    inds = report.indicator_map
    nums = values.pivot_table(
        index=["sub", "unit"], columns="indicator", values="value_num", aggfunc="first"
    )
    cells = values.pivot_table(
        index=["sub", "unit"], columns="indicator", values="cell", aggfunc="first"
    )
    findings: list[dict] = []

    def col(frame, code):
        return frame[code] if code in frame.columns else pd.Series(np.nan, index=frame.index)

    for rule in report.sum_rules:
        total, parts = col(nums, rule.total), [col(nums, p) for p in rule.parts]
        have = total.notna() & np.logical_and.reduce([p.notna() for p in parts])
        sums = sum(parts)
        bad = have & ((total - sums).abs() > rule.tolerance)
        for sub, unit in bad[bad].index:
            key = (sub, unit)
            cell = col(cells, rule.total)[key]
            ind = inds[rule.total]
            value, added = _apart(ind, total[key], round(sums[key], 9))
            parts_txt = " + ".join(shown(inds[p], nums.at[key, p]) for p in rule.parts)
            labels = " + ".join(inds[p].label for p in rule.parts)
            expected = f"{labels} = {parts_txt} = {added}"
            findings.append(
                {
                    "sub": sub,
                    "unit": unit,
                    "indicator": rule.total,
                    "cell": cell,
                    "rule": rule.id,
                    "severity": rule.severity,
                    "message_vi": _said(place(cell), ind.label, value, expected),
                    "message_en": (
                        f"{_place_en(cell)}, {ind.label}: {value}, but its parts add up to "
                        f"{parts_txt} = {added}."
                    ),
                    "label": ind.label,
                    "value": value,
                    "expected": expected,
                }
            )
    for rule in report.not_above_rules:
        part, whole = col(nums, rule.part), col(nums, rule.whole)
        bad = part.notna() & whole.notna() & (part > whole)
        for key in bad[bad].index:
            cell = col(cells, rule.part)[key]
            ind = inds[rule.part]
            value, limit = _apart(ind, part[key], whole[key], inds[rule.whole])
            expected = f"không được lớn hơn {inds[rule.whole].label} = {limit}"
            findings.append(
                {
                    "sub": key[0],
                    "unit": key[1],
                    "indicator": rule.part,
                    "cell": cell,
                    "rule": rule.id,
                    "severity": rule.severity,
                    "message_vi": _said(place(cell), ind.label, value, expected),
                    "message_en": (
                        f"{_place_en(cell)}, {ind.label}: {value} is above "
                        f"{inds[rule.whole].label} = {limit}."
                    ),
                    "label": ind.label,
                    "value": value,
                    "expected": expected,
                }
            )
    for d in report.derived:
        num = col(nums, d.numerator)
        if d.denominator.startswith("plan:"):
            plan = plans.get(d.denominator[5:])
            den = pd.Series(np.nan if plan is None else plan, index=nums.index)
        else:
            den = col(nums, d.denominator)
        pct = num / den.where(den != 0) * 100
        bad = pct.notna() & (pct > d.plausible_max)
        for key in bad[bad].index:
            cell = col(cells, d.numerator)[key]
            ind = inds[d.numerator]
            value, ceiling = shown(ind, num[key]), vnformat.percent(d.plausible_max)
            decimals, share = d.decimals, vnformat.percent(pct[key], d.decimals)
            # 100,0004% is not "100%" (nor "100,0%"): as many decimals as it takes to differ
            while vnformat.round_half_up(pct[key], decimals) == d.plausible_max and decimals < 9:
                decimals += 1
                share = vnformat.percent(pct[key], decimals)
            expected = (
                f"khi đó {d.label} = {share}, cao hơn mức hợp lý {ceiling}; "
                "đề nghị kiểm tra lại số này"
            )
            findings.append(
                {
                    "sub": key[0],
                    "unit": key[1],
                    "indicator": d.numerator,
                    "cell": cell,
                    "rule": f"plausible:{d.code}",
                    "severity": "warning",
                    "message_vi": _said(place(cell), ind.label, value, expected),
                    "message_en": (
                        f"{_place_en(cell)}, {ind.label}: {value} makes {d.label} "
                        f"{share}, above the plausible {ceiling}; please check it."
                    ),
                    "label": ind.label,
                    "value": value,
                    "expected": expected,
                }
            )
    return findings


JUMP_FACTOR = 10  # x10 or more, or /100 or less, against the previous period: a warning
DROP_FACTOR = 100


def _shown(ind: Indicator, value: float) -> str:
    """A value as the unit would write it: 1.234; 2.266,02; 85%."""
    if ind.type == "percent":
        return vnformat.percent(value)
    if ind.decimals or value % 1 == 0:
        return vnformat.number(value, ind.decimals)
    return vnformat.number(value, 3).rstrip("0").rstrip(",")


def _times(ratio: float) -> str:
    """12 -> '12'; 12.34 -> '12,3'."""
    return vnformat.number(ratio, 0 if ratio >= 100 else 1).removesuffix(",0")


def _period_label(code: object) -> str:
    """'2021-Q4' -> 'Quý IV/2021'; '' when the previous period is not named."""
    if code is None or (isinstance(code, float) and np.isnan(code)):
        return ""
    try:
        return Period.parse(str(code)).label
    except ValueError:
        return ""


def check_previous(
    values: pd.DataFrame, report: ReportDef, previous: pd.DataFrame | None
) -> list[dict]:
    """Warnings against the same unit's figures of the previous period (`previous`: columns
    unit, indicator, value, and optionally period, the previous period's code): a percentage
    in (0; 1] where the previous one was above 1 (0,9 typed for 90 %), and a number that is
    x10 or more, or 1/100 or less, of the previous one (both non-zero). Never an error."""
    if previous is None or previous.empty or values.empty:
        return []
    inds = report.indicator_map
    prev = previous.dropna(subset=["value"]).drop_duplicates(["unit", "indicator"], keep="last")
    prev = prev.rename(columns={"value": "prev_value", "period": "prev_period"})
    if "prev_period" not in prev.columns:
        prev = prev.assign(prev_period=None)
    numbers = values[
        values["type"].isin(["integer", "decimal", "percent"]) & values["value_num"].notna()
    ]
    both = numbers[["sub", "unit", "indicator", "cell", "value_num"]].merge(
        prev[["unit", "indicator", "prev_value", "prev_period"]], on=["unit", "indicator"]
    )
    findings: list[dict] = []
    for row in both.to_dict("records"):
        ind, value, before = inds[row["indicator"]], row["value_num"], row["prev_value"]
        label = _period_label(row["prev_period"])
        when = label or "kỳ trước"
        earlier = f"kỳ trước ({label})" if label else "kỳ trước"
        cell = row["cell"]
        if ind.type == "percent" and 0 < value <= 1 and before > 1:
            meant = _shown(ind, value * 100)
            findings.append(
                _finding(
                    row,
                    "percent_fraction",
                    "warning",
                    f"{place(cell)}, {ind.label}: {_shown(ind, value)}, trong khi {earlier} là "
                    f"{_shown(ind, before)}; có thể đã nhập "
                    f"{vnformat.number(value, 3).rstrip('0').rstrip(',')} thay vì {meant}. "
                    f"Nếu tỷ lệ đúng là {meant}, sửa ô thành {meant} rồi gửi lại; nếu "
                    f"{_shown(ind, value)} là đúng thì không cần gửi lại.",
                    f"{_place_en(cell)}, {ind.label}: {value:g}% while the previous period "
                    f"({when}) had {before:g}%; perhaps {value:g} was typed for "
                    f"{value * 100:g}%. Accepted.",
                    label=ind.label,
                    value=_shown(ind, value),
                    expected=f"có thể là {meant}",
                )
            )
            continue
        if not value or not before:
            continue
        ratio = abs(value) / abs(before)
        if ratio >= JUMP_FACTOR:
            vi = f"tăng gấp {_times(ratio)} lần so với kỳ trước"
            en = f"{_times(ratio)} times the previous period's value"
        elif ratio <= 1 / DROP_FACTOR:
            vi = f"giảm còn 1/{_times(1 / ratio)} so với kỳ trước"
            en = f"1/{_times(1 / ratio)} of the previous period's value"
        else:
            continue
        findings.append(
            _finding(
                row,
                "jump",
                "warning",
                f"{place(cell)}, {ind.label}: {_shown(ind, value)}, {vi} ({when}: "
                f"{_shown(ind, before)}). Kiểm tra lại (nhầm đơn vị tính, thừa hoặc thiếu chữ số "
                "0?); nếu số liệu đúng thì không cần gửi lại.",
                f"{_place_en(cell)}, {ind.label}: {value:,.12g} is {en} ({when}: "
                f"{before:,.12g}); check it. Accepted.",
                label=ind.label,
                value=_shown(ind, value),
                expected=f"{vi} ({when}: {_shown(ind, before)})",
            )
        )
    return findings


def validate(
    obs: pd.DataFrame,
    report: ReportDef,
    cfg: Config,
    plans: dict[str, float],
    previous: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed values and all findings for a batch of observations; `previous` (unit,
    indicator, value[, period]) holds the units' figures of the previous period, loaded by
    the caller, for the warnings of `check_previous`."""
    values, findings = convert_values(obs, report, cfg)
    findings += check_rules(values, report, plans)
    findings += check_previous(values, report, previous)
    return values, pd.DataFrame(findings, columns=FINDING_COLUMNS)
