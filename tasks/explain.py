"""Where a printed figure comes from (`baocao explain`, and the office's sources page): the
units, versions, received files (SHA-256) and cells that make it, the owners whose valid
version is still missing, and for a percentage its formula and its inputs."""

from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from baocao import crud, vnformat
from baocao.config import Config, ReportDef, inputs_file
from baocao.db import session_scope
from baocao.document import plain
from baocao.periods import Period, as_vn
from baocao.runtime import Runtime
from tasks.consolidate import Consolidated, consolidate_frames, latest_valid, load_period
from tasks.render import format_figures, output_names


class UnknownFigureError(ValueError):
    """The indicator code names no figure of the report; the message lists close names."""


@dataclass(frozen=True)
class Contribution:
    """One unit's part of a figure: its value as read from its latest valid version."""

    unit: str
    name: str
    version: int
    value: str  # as the report prints it
    cell: str  # "Bieu_mau!D12"
    file_name: str
    sha256: str
    archive_path: str
    received_at: dt.datetime  # Asia/Ho_Chi_Minh
    credential: str  # how the file proved whose it is: token, sender, office
    source: str  # folder, mail, cli
    sender: str | None = None


@dataclass(frozen=True)
class Missing:
    """An owner of the figure with no valid version carrying a value."""

    unit: str
    name: str


@dataclass(frozen=True)
class Explanation:
    """A figure as printed and what makes it. `kind`: sum (across units), single (one owner's
    value), derived (a percentage of `parts`), plan (a plan figure of the year)."""

    code: str
    label: str
    measure: str  # unit of measure: "hồ sơ", "%"
    kind: str
    printed: str | None  # None when the report has no value for it
    coverage: str  # "9/11" of owners sent it
    formula: str = ""
    contributions: tuple[Contribution, ...] = ()
    missing: tuple[Missing, ...] = ()
    parts: tuple[Explanation, ...] = ()
    note: str = ""

    def to_dict(self) -> dict:
        """JSON-ready (times as ISO text)."""
        return asdict(self)


@dataclass(frozen=True)
class _Sources:
    """What explaining needs beyond the consolidation: the values' cells and the files."""

    values: pd.DataFrame  # submission_id, indicator, value_num, value_text, cell (latest valid)
    chosen: pd.DataFrame  # unit -> its latest valid submission (consolidate.latest_valid)
    files: dict[int, tuple]  # submission id -> (Submission, Receipt)


def figure_codes(report: ReportDef) -> list[str]:
    """Every figure a text can print, in the report's order."""
    return [i.code for i in report.indicators] + [d.code for d in report.derived]


def check_code(report: ReportDef, code: str) -> None:
    """Refuse a code that names no figure, suggesting the close ones."""
    codes = figure_codes(report)
    if code in codes:
        return
    close = difflib.get_close_matches(code, codes, n=5, cutoff=0.5)
    hint = f"; gần giống / did you mean: {', '.join(close)}" if close else ""
    raise UnknownFigureError(
        f"không có chỉ tiêu '{code}' trong báo cáo {report.id} / no such indicator{hint}"
    )


def load_sources(rt: Runtime, period: Period) -> tuple[Consolidated, _Sources]:
    """The period consolidated as publish does, with the cells and files of what it used."""
    subs, values = load_period(rt, period)
    result = consolidate_frames(subs, values, rt.cfg, rt.report, period)
    chosen = latest_valid(subs)
    ids = [int(i) for i in chosen["submission_id"]]
    with session_scope(rt.engine) as s:
        files = crud.submission_receipts(s, submission_ids=ids)
    used = values[values["submission_id"].isin(ids)]
    return result, _Sources(used, chosen, files)


def explain_figure(rt: Runtime, period: Period, code: str) -> Explanation:
    """Where the figure `code` of `period` comes from."""
    check_code(rt.report, code)
    result, sources = load_sources(rt, period)
    return build_explanation(result, sources, rt.cfg, rt.report, code)


def explain_all(rt: Runtime, period: Period) -> list[Explanation]:
    """Every figure of the report explained (the sources page), in the report's order."""
    result, sources = load_sources(rt, period)
    return [
        build_explanation(result, sources, rt.cfg, rt.report, c) for c in figure_codes(rt.report)
    ]


def build_explanation(
    result: Consolidated, sources: _Sources, cfg: Config, report: ReportDef, code: str
) -> Explanation:
    """The explanation of one figure, from the consolidation and its sources."""
    printed = format_figures(result.values, report, result.coverage).get(code)
    cov = result.coverage.get(code)
    coverage = cov.text if cov else ""
    derived = {d.code: d for d in report.derived}.get(code)
    if derived is not None:
        return _derived(result, sources, cfg, report, derived, printed, coverage)
    ind = report.indicator_map[code]
    contributions = tuple(
        c
        for u in cfg.resolve_owners(ind.owners)
        if (c := _contribution(sources, cfg, report, code, u)) is not None
    )
    note = ""
    if ind.type == "text" and not result.values.get(code):
        note = "Không đơn vị nào ghi nội dung: báo cáo in câu mặc định của định nghĩa."
    missing = tuple(Missing(u, cfg.unit_map[u].name) for u in (cov.missing if cov else ()))
    return Explanation(
        code=code,
        label=ind.label,
        measure=ind.unit,
        kind="sum" if ind.aggregate == "sum" else "single",
        printed=plain(printed) if printed is not None else None,
        coverage=coverage,
        formula="Tổng của các đơn vị" if ind.aggregate == "sum" else "Số liệu của đơn vị chủ trì",
        contributions=contributions,
        missing=missing,
        note=note,
    )


def _derived(result, sources, cfg, report, d, printed, coverage) -> Explanation:
    """A percentage: numerator / denominator x 100, with both explained."""
    num = build_explanation(result, sources, cfg, report, d.numerator)
    if d.denominator.startswith("plan:"):
        den = _plan(cfg, report, result.period.year, d.denominator[5:])
    else:
        den = build_explanation(result, sources, cfg, report, d.denominator)
    return Explanation(
        code=d.code,
        label=d.label,
        measure="%",
        kind="derived",
        printed=printed,
        coverage=coverage,
        formula=f"{num.label} / {den.label} × 100, làm tròn {d.decimals} chữ số thập phân",
        parts=(num, den),
    )


def _plan(cfg: Config, report: ReportDef, year: int, code: str) -> Explanation:
    """A plan figure of the year, from the year's plans file."""
    ind = report.indicator_map[code]
    value = cfg.plan(report.id, year).get(code)
    return Explanation(
        code=f"plan:{code}",
        label=f"Kế hoạch năm {year}: {ind.label}",
        measure=ind.unit,
        kind="plan",
        printed=vnformat.number(value, ind.decimals) if value is not None else None,
        coverage="",
        formula=f"Kế hoạch năm {year}: {inputs_file(cfg.root, 'plans', report.id, str(year))}",
    )


def _contribution(
    sources: _Sources, cfg: Config, report: ReportDef, code: str, unit: str
) -> Contribution | None:
    """`unit`'s value of `code` in its latest valid version, with the file it came in."""
    if unit not in sources.chosen.index:
        return None
    sid = int(sources.chosen.at[unit, "submission_id"])
    rows = sources.values[
        (sources.values["submission_id"] == sid) & (sources.values["indicator"] == code)
    ]
    if rows.empty:
        return None
    row = rows.iloc[0]
    ind = report.indicator_map[code]
    raw = row["value_text"] if ind.type in ("text", "date") else row["value_num"]
    if raw is None or (isinstance(raw, float) and raw != raw) or str(raw).strip() == "":
        return None
    if ind.type == "date":
        raw = dt.date.fromisoformat(str(raw)[:10])
    shown = format_figures({code: raw}, report).get(code, str(raw))
    sub, rec = sources.files[sid]
    return Contribution(
        unit=unit,
        name=cfg.unit_map[unit].name,
        version=int(sub.version),
        value=plain(shown),
        cell=str(row["cell"] or ""),
        file_name=rec.original_name,
        sha256=rec.sha256,
        archive_path=rec.archive_path,
        received_at=as_vn(sub.received_at),
        credential=str(sub.credential),
        source=rec.source,
        sender=rec.sender,
    )


def sources_name(html_name: str) -> str:
    """`BC-CCHC-...html` -> `BC-CCHC-...-Nguon-so-lieu.html`: the office's sources page."""
    return f"{html_name.removesuffix('.html')}-Nguon-so-lieu.html"


def write_sources(rt: Runtime, result: Consolidated, folder: Path) -> Path:
    """The office's sources page beside its HTML report: one anchor per figure (never sent)."""
    names = output_names(rt.report, result.period, rt.cfg.body)
    path = folder / sources_name(names.html)
    page = rt.env.get_template("sources.html.j2").render(
        figures=explain_all(rt, result.period),
        period=result.period.label,
        report=names.html,
        moment=vnformat.moment,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
