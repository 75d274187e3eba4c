"""Validate submitted values: types, required values, ranges, totals, plausible percentages.

Plain functions over a DataFrame of observations from any number of submissions
(columns `sub, unit, indicator, raw, cell`, optionally `problem` and `percent_cell`), so a
province validates a batch of files in a few vectorised steps. Each finding names the unit,
the indicator, the cell and the rule, in Vietnamese with English alongside.

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


def _finding(row, rule, severity, vi, en) -> dict:
    return {
        "sub": row["sub"],
        "unit": row["unit"],
        "indicator": row.get("indicator", ""),
        "cell": row.get("cell", ""),
        "rule": rule,
        "severity": severity,
        "message_vi": vi,
        "message_en": en,
    }


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
        findings.append(
            _finding(
                row,
                "unknown_indicator",
                "warning",
                f"Mã chỉ tiêu '{row['indicator']}' (ô {row['cell']}) không thuộc biểu mẫu của đơn vị, đã bỏ qua.",
                f"Indicator code '{row['indicator']}' at {row['cell']} is not on this unit's form; ignored.",
            )
        )
    obs = obs[known]
    if "problem" not in obs.columns:
        obs = obs.assign(problem=None)
    dup = obs.duplicated(["sub", "indicator"], keep=False)
    for (_sub, code), rows in obs[dup].groupby(["sub", "indicator"], sort=False):
        ind, first = inds[code], rows.iloc[0]
        cells = ", ".join(str(c) for c in rows["cell"])
        findings.append(
            _finding(
                first,
                "duplicate",
                "error",
                f"Ô {cells}: chỉ tiêu {ind.label} xuất hiện {len(rows)} lần trong tệp; "
                "chỉ giữ một dòng cho mỗi chỉ tiêu rồi gửi lại.",
                f"{code} appears {len(rows)} times ({cells}); keep one row per indicator.",
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
        findings.append(
            _finding(
                row,
                "formula_no_value",
                "error",
                f"Ô {row['cell']}, {ind.label}: ô có công thức nhưng tệp không lưu kết quả tính. "
                "Mở tệp bằng Excel để Excel tính lại, lưu rồi gửi lại.",
                f"{row['cell']}: a formula without a computed value; open in Excel, save, resend.",
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
        what = "một ngày (dd/mm/yyyy)" if ind.type == "date" else "một số"
        findings.append(
            _finding(
                row,
                "type",
                "error",
                f"{ind.label} ({ind.code}), ô {row['cell']}: '{row['raw']}' không phải {what}.",
                f"{ind.code} at {row['cell']}: '{row['raw']}' is not a {'date' if ind.type == 'date' else 'number'}.",
            )
        )
    ints = obs[(obs["type"] == "integer") & obs["value_num"].notna()]
    for _, row in ints[ints["value_num"] % 1 != 0].iterrows():
        ind = inds[row["indicator"]]
        findings.append(
            _finding(
                row,
                "integer",
                "error",
                f"{ind.label} ({ind.code}), ô {row['cell']}: phải là số nguyên, nhận được {row['raw']}.",
                f"{ind.code} at {row['cell']}: must be a whole number, got {row['raw']}.",
            )
        )
    for _, row in obs[obs["value_num"].notna() & obs["type"].ne("date")].iterrows():
        ind, value = inds[row["indicator"]], row["value_num"]
        low, high = ind.min, ind.max if ind.max is not None else SANE_MAX.get(ind.type)
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = (
                f"[{'' if low is None else vnformat.number(low, 3).rstrip('0').rstrip(',')}; "
                f"{'' if high is None else vnformat.number(high, 3).rstrip('0').rstrip(',')}]"
            )
            findings.append(
                _finding(
                    row,
                    "range",
                    "error",
                    f"{ind.label} ({ind.code}), ô {row['cell']}: giá trị {row['raw']} ngoài khoảng cho phép {bounds}.",
                    f"{ind.code} at {row['cell']}: {row['raw']} is outside the allowed range {bounds}.",
                )
            )

    present = obs[~obs["blank"] | formula].groupby("sub")["indicator"].apply(set).to_dict()
    for sub, unit in obs[["sub", "unit"]].drop_duplicates().itertuples(index=False):
        for ind in cfg.indicators_of(report, unit):
            if ind.required and ind.code not in present.get(sub, set()):
                cell = obs.loc[(obs["sub"] == sub) & (obs["indicator"] == ind.code), "cell"]
                findings.append(
                    _finding(
                        {
                            "sub": sub,
                            "unit": unit,
                            "indicator": ind.code,
                            "cell": cell.iloc[0] if len(cell) else "",
                        },
                        "required",
                        "error",
                        f"{ind.label} ({ind.code}): chưa điền giá trị{' (ô ' + cell.iloc[0] + ')' if len(cell) else ''}, đây là chỉ tiêu bắt buộc.",
                        f"{ind.code}: required value is missing{' at ' + cell.iloc[0] if len(cell) else ''}.",
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

    def fmt(code, value):
        ind = inds[code]
        return vnformat.number(value, ind.decimals if ind.type == "decimal" else 0)

    for rule in report.sum_rules:
        total, parts = col(nums, rule.total), [col(nums, p) for p in rule.parts]
        have = total.notna() & np.logical_and.reduce([p.notna() for p in parts])
        sums = sum(parts)
        bad = have & ((total - sums).abs() > rule.tolerance)
        for sub, unit in bad[bad].index:
            key = (sub, unit)
            cell = col(cells, rule.total)[key]
            parts_txt = " + ".join(fmt(p, nums.at[key, p]) for p in rule.parts)
            labels = " + ".join(inds[p].label for p in rule.parts)
            findings.append(
                {
                    "sub": sub,
                    "unit": unit,
                    "indicator": rule.total,
                    "cell": cell,
                    "rule": rule.id,
                    "severity": rule.severity,
                    "message_vi": (
                        f"Quy tắc {rule.id}: {inds[rule.total].label} (ô {cell}) = "
                        f"{fmt(rule.total, total[key])} nhưng tổng các thành phần ({labels}) = "
                        f"{parts_txt} = {fmt(rule.total, sums[key])}. Kiểm tra lại số tổng hoặc các số thành phần."
                    ),
                    "message_en": (
                        f"Rule {rule.id}: {rule.total} at {cell} is {fmt(rule.total, total[key])} but "
                        f"the parts ({', '.join(rule.parts)}) add up to {fmt(rule.total, sums[key])}."
                    ),
                }
            )
    for rule in report.not_above_rules:
        part, whole = col(nums, rule.part), col(nums, rule.whole)
        bad = part.notna() & whole.notna() & (part > whole)
        for key in bad[bad].index:
            cell = col(cells, rule.part)[key]
            findings.append(
                {
                    "sub": key[0],
                    "unit": key[1],
                    "indicator": rule.part,
                    "cell": cell,
                    "rule": rule.id,
                    "severity": rule.severity,
                    "message_vi": (
                        f"Quy tắc {rule.id}: {inds[rule.part].label} (ô {cell}) = {fmt(rule.part, part[key])} "
                        f"lớn hơn {inds[rule.whole].label} = {fmt(rule.whole, whole[key])}."
                    ),
                    "message_en": f"Rule {rule.id}: {rule.part} at {cell} exceeds {rule.whole}.",
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
            findings.append(
                {
                    "sub": key[0],
                    "unit": key[1],
                    "indicator": d.numerator,
                    "cell": cell,
                    "rule": f"plausible:{d.code}",
                    "severity": "warning",
                    "message_vi": (
                        f"{d.label} = {vnformat.percent(pct[key])}, vượt mức hợp lý "
                        f"{vnformat.percent(d.plausible_max)}; kiểm tra lại ô {cell}."
                    ),
                    "message_en": f"{d.code} = {pct[key]:.1f}% is above the plausible {d.plausible_max:g}%; check {cell}.",
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
                    f"Ô {cell}, {ind.label}: {_shown(ind, value)}, trong khi {earlier} là "
                    f"{_shown(ind, before)}; có thể đã nhập "
                    f"{vnformat.number(value, 3).rstrip('0').rstrip(',')} thay vì {meant}. "
                    f"Nếu tỷ lệ đúng là {meant}, sửa ô thành {meant} rồi gửi lại; nếu "
                    f"{_shown(ind, value)} là đúng thì không cần gửi lại.",
                    f"{cell}, {ind.code}: {value:g}% while the previous period ({when}) had "
                    f"{before:g}%; perhaps {value:g} was typed for {value * 100:g}%. Accepted.",
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
                f"Ô {cell}, {ind.label}: {_shown(ind, value)}, {vi} ({when}: "
                f"{_shown(ind, before)}). Kiểm tra lại (nhầm đơn vị tính, thừa hoặc thiếu chữ số "
                "0?); nếu số liệu đúng thì không cần gửi lại.",
                f"{cell}, {ind.code}: {value:,.12g} is {en} ({when}: {before:,.12g}); check it. "
                "Accepted.",
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
