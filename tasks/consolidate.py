"""Consolidate a period with pandas: the latest valid version of each unit, one table of
values across units, sums where the definition says so, derived percentages (one decimal,
half up), comparison with the previous period, completeness and timeliness.

Pure `DataFrame -> DataFrame` steps; `load_period` is the only one that reads the store.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from baocao import crud, vnformat
from baocao.config import Config, ConfigError, Indicator, ReportDef, read_facts, require_plan
from baocao.db import session_scope
from baocao.errors import IncompleteError
from baocao.periods import Period
from baocao.runtime import Runtime


@dataclass(frozen=True)
class Coverage:
    """Who sent a figure: `units` of the `owners` owning it have a valid version with a value
    (`missing` names the others). A sum over part of its owners is not the district's
    figure; the texts see this as `c.<code>` (`c.tthc_pakn.complete`, `c.tthc_pakn.text`)."""

    units: int
    owners: int
    missing: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return self.units >= self.owners

    @property
    def text(self) -> str:
        return f"{self.units}/{self.owners}"


@dataclass
class Consolidated:
    period: Period
    values: dict[str, object]  # indicator/derived code -> number, date or text (None if missing)
    table: pd.DataFrame  # one row per indicator and derived figure (Phụ lục 01)
    by_unit: pd.DataFrame  # unit x indicator (Phụ lục 02)
    status: pd.DataFrame  # unit, name, state, version, received_at, on_time, errors, warnings
    expected: list[str]
    missing: list[tuple[str, str]] = field(default_factory=list)  # (indicator, unit) unsupplied
    coverage: dict[str, Coverage] = field(default_factory=dict)  # indicator/derived code
    plans: dict[str, float] = field(default_factory=dict)  # the year's plan figures (`p.`)
    facts: dict[str, str] = field(default_factory=dict)  # the period's facts file (`d.`)

    @property
    def units_in(self) -> int:
        return int((self.status["state"] == "valid").sum())

    @property
    def on_time(self) -> int:
        return int(((self.status["state"] == "valid") & self.status["on_time"].eq(True)).sum())

    @property
    def completeness(self) -> str:
        return f"{self.units_in}/{len(self.expected)}"

    @property
    def timeliness(self) -> str:
        return f"{self.on_time}/{self.units_in}"


def latest_valid(subs: pd.DataFrame) -> pd.DataFrame:
    """Per unit, the newest valid submission (a later rejected one does not replace it)."""
    valid = subs[subs["status"] == "valid"].sort_values(["unit", "version"])
    return valid.groupby("unit", as_index=False).tail(1).set_index("unit")


def unit_status(subs: pd.DataFrame, cfg: Config, expected: list[str]) -> pd.DataFrame:
    """One row per expected unit: its state (valid, rejected, missing), version counted, on
    time; set-based, so a province's thousands of units cost one pass."""
    chosen = latest_valid(subs)
    last = subs.sort_values(["unit", "version"]).groupby("unit").tail(1).set_index("unit")
    picked = pd.concat([chosen, last[~last.index.isin(chosen.index)]]).reindex(expected)
    found = picked["version"].notna()
    state = pd.Series("missing", index=picked.index, dtype=object)
    state[found] = "rejected"
    state[picked.index.isin(chosen.index)] = "valid"

    def present(column: str, convert) -> list:
        return [convert(v) if ok else None for v, ok in zip(picked[column], found, strict=True)]

    return pd.DataFrame(
        {
            "unit": expected,
            "name": [cfg.unit_map[code].name for code in expected],
            "state": state.tolist(),
            "version": present("version", int),
            "versions": subs.groupby("unit").size().reindex(expected, fill_value=0).tolist(),
            "received_at": present("received_at", lambda v: v),
            "on_time": present("late", lambda v: not bool(v)),
            "errors": [int(v) if ok else 0 for v, ok in zip(picked["errors"], found, strict=True)],
            "warnings": [
                int(v) if ok else 0 for v, ok in zip(picked["warnings"], found, strict=True)
            ],
        }
    )


def pivot_units(values: pd.DataFrame, report: ReportDef) -> pd.DataFrame:
    """unit x indicator table of typed values (numbers as floats, dates/texts as text)."""
    inds = report.indicator_map
    values = values.assign(
        value=[
            t if inds[i].type in ("text", "date") else n
            for i, n, t in zip(
                values["indicator"], values["value_num"], values["value_text"], strict=True
            )
        ]
    )
    table = values.pivot_table(index="unit", columns="indicator", values="value", aggfunc="first")
    return table.reindex(columns=[i.code for i in report.indicators])


def combine(
    by_unit: pd.DataFrame, report: ReportDef, cfg: Config
) -> tuple[dict[str, object], list]:
    """District figures: sums across units for `aggregate: sum`, the owner's value otherwise."""
    values: dict[str, object] = {}
    missing: list[tuple[str, str]] = []
    for ind in report.indicators:
        owners = cfg.resolve_owners(ind.owners)
        column = by_unit[ind.code] if ind.code in by_unit.columns else pd.Series(dtype=object)
        supplied = column.reindex(owners).dropna()
        missing += [(ind.code, u) for u in owners if u not in supplied.index and ind.required]
        if ind.aggregate == "sum":
            values[ind.code] = float(supplied.astype(float).sum()) if len(supplied) else None
        else:
            values[ind.code] = _typed(ind, supplied.iloc[0]) if len(supplied) else _default(ind)
    return values, missing


def coverage(by_unit: pd.DataFrame, report: ReportDef, cfg: Config) -> dict[str, Coverage]:
    """Per indicator, how many of its owners supplied a value; per derived figure, the
    coverage of the figure it is computed from that is partial (numerator first)."""
    out: dict[str, Coverage] = {}
    for ind in report.indicators:
        owners = cfg.resolve_owners(ind.owners)
        column = by_unit[ind.code] if ind.code in by_unit.columns else pd.Series(dtype=object)
        supplied = column.reindex(owners)
        supplied = supplied[supplied.notna() & (supplied.astype(str).str.strip() != "")]
        out[ind.code] = Coverage(
            len(supplied), len(owners), tuple(u for u in owners if u not in supplied.index)
        )
    for d in report.derived:
        parts = [out[c] for c in (d.numerator, d.denominator) if c in out]
        out[d.code] = next((c for c in parts if not c.complete), parts[0])
    return out


def _typed(ind: Indicator, value: object) -> object:
    if ind.type == "date":
        return dt.date.fromisoformat(str(value))
    if ind.type == "text":
        return str(value)
    return float(value)


def _default(ind: Indicator) -> object:
    return ind.default if ind.type == "text" else None


def derive(
    values: dict[str, object], report: ReportDef, plans: dict[str, float]
) -> dict[str, Decimal | None]:
    """Percentages: numerator / denominator x 100, rounded half up to the definition's
    decimals; an exactly whole one is kept without decimals (`Decimal("100")`, while 47,03
    is `Decimal("47.0")`), so the printed figure knows which it is (`vnformat.percent`)."""
    out: dict[str, Decimal | None] = {}
    for d in report.derived:
        num = values.get(d.numerator)
        den = (
            plans.get(d.denominator[5:])
            if d.denominator.startswith("plan:")
            else values.get(d.denominator)
        )
        if num is None or not den:
            out[d.code] = None
            continue
        # in Decimal: in floats 149 / 2000 * 100 is 7.4499..., which would round to 7.4
        exact = Decimal(str(num)) * 100 / Decimal(str(den))
        out[d.code] = (
            exact.quantize(Decimal(1))
            if exact == exact.to_integral_value()
            else vnformat.round_half_up(exact, d.decimals)
        )
    return out


def figure_table(
    values: dict, derived: dict, report: ReportDef, plans: dict[str, float], previous: dict | None
) -> pd.DataFrame:
    """Phụ lục 01: every indicator and derived figure with plan and previous period."""
    rows = []
    for ind in report.indicators:
        if ind.type == "text":
            continue
        v, prev = values.get(ind.code), (previous or {}).get(ind.code)
        rows.append(
            {
                "code": ind.code,
                "label": ind.label,
                "unit": ind.unit,
                "value": v,
                "plan": plans.get(ind.code),
                "previous": prev,
                "change": (v - prev) if isinstance(v, float) and isinstance(prev, float) else None,
            }
        )
    for d in report.derived:
        v, prev = derived.get(d.code), (previous or {}).get(d.code)
        rows.append(
            {
                "code": d.code,
                "label": d.label,
                "unit": "%",
                "value": float(v) if v is not None else None,
                "plan": None,
                "previous": float(prev) if prev is not None else None,
                "change": float(v - prev) if v is not None and prev is not None else None,
            }
        )
    return pd.DataFrame(rows)


def consolidate_frames(
    subs: pd.DataFrame,
    values: pd.DataFrame,
    cfg: Config,
    report: ReportDef,
    period: Period,
    previous: dict | None = None,
) -> Consolidated:
    """Everything the report and its appendices need, from the period's submissions."""
    expected = cfg.expected_units(report)
    chosen = latest_valid(subs)
    ids = dict(zip(chosen["submission_id"], chosen.index, strict=True))
    values = values[values["submission_id"].isin(list(ids))].assign(
        unit=lambda f: f["submission_id"].map(ids)
    )
    by_unit = pivot_units(values, report).reindex([u for u in expected if u in chosen.index])
    plans = cfg.plan(report.id, period.year)
    combined, missing = combine(by_unit, report, cfg)
    derived = derive(combined, report, plans)
    table = figure_table(combined, derived, report, plans, previous)
    return Consolidated(
        period=period,
        values={**combined, **derived},
        table=table,
        by_unit=by_unit,
        status=unit_status(subs, cfg, expected),
        expected=expected,
        missing=missing,
        coverage=coverage(by_unit, report, cfg),
        plans=plans,
    )


def load_period(rt: Runtime, period: Period) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The period's submissions and their values, as two DataFrames."""
    with session_scope(rt.engine) as s:
        row = crud.get_period(s, report_id=rt.report.id, code=period.code)
        if row is None:
            empty = pd.DataFrame(columns=crud.SUBMISSION_COLUMNS)
            return empty, crud.values_frame(s, submission_ids=[])
        subs = crud.submissions_frame(s, period_id=row.id)
        values = crud.values_frame(s, submission_ids=subs["submission_id"].tolist())
    return subs, values


def consolidate_period(rt: Runtime, period: Period) -> Consolidated:
    """Consolidate `period`, with the previous period's figures when it has any."""
    prev_period = period.previous()
    prev_subs, prev_values = load_period(rt, prev_period)
    previous = None
    if (prev_subs["status"] == "valid").any():
        previous = consolidate_frames(prev_subs, prev_values, rt.cfg, rt.report, prev_period).values
    subs, values = load_period(rt, period)
    result = consolidate_frames(subs, values, rt.cfg, rt.report, period, previous)
    try:  # a draft's figures do not wait for the facts; publishing does (require_complete)
        result.facts = read_facts(rt.cfg, rt.report, period.code)
    except ConfigError:
        pass
    return result


def require_complete(result: Consolidated, cfg: Config, report: ReportDef) -> None:
    """Refuse to render when a figure the text needs has no value, naming who owes it, or
    when the period's facts or the year's plan figures are not written yet (one line naming
    the file to write)."""
    read_facts(cfg, report, result.period.code)
    require_plan(cfg, report, result.period.year)
    singles = [(i, u) for i, u in result.missing if report.indicator_map[i].aggregate == "single"]
    if singles:
        lines = [
            f"{report.indicator_map[i].label} ({i}) - {cfg.unit_map[u].name} ({u})"
            for i, u in singles
        ]
        raise IncompleteError(
            "Chưa đủ số liệu để lập báo cáo / figures missing for the report:\n  "
            + "\n  ".join(lines)
            + "\nChờ đơn vị gửi (baocao status), hoặc nhắc lại (send_reminders)."
        )


@task(name="consolidate-figures", cache_policy=NO_CACHE)
def consolidate_task(rt: Runtime, period: Period) -> Consolidated:
    """Consolidate the period's latest valid submissions."""
    return consolidate_period(rt, period)
