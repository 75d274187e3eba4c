"""Whose figures a file carries, and whether it may give them.

A file counts for a unit only with that unit's form code (the token of its request, in the
form's hidden sheet or a CSV's `ma_bieu_mau` column), when mailed from one of the unit's
registered addresses, or when the office files it for the unit; and only for a period of
the report that has been opened. Anything else is a problem told to the sender, never an
overwrite of a unit's figures.

The form code rules: a form carrying unit A's code counts for A whoever mailed it. When it
was mailed from an address registered for other units only (B's), that is a warning on A's
receipt and version (`Group.notes`), never a change to B's figures: A's clerk may have
asked a colleague to send it, or B's clerk may have filled the wrong unit's form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from baocao import crud
from baocao.config import Config, ReportDef
from baocao.db import session_scope
from baocao.forms import ParsedFile
from baocao.models import Credential, Outcome, ReportingPeriod
from baocao.periods import Period, PeriodError
from baocao.runtime import Runtime

if TYPE_CHECKING:
    from tasks.intake import Arrival

# `NV_2022-Q1.xlsx`, `NV_2026-10.xlsx`, `NV_2026-9M.xlsx`: the unit and the period's code
_NAME = re.compile(r"^(?P<unit>[A-Za-z0-9-]+)_(?P<period>\d{4}(?:-(?:[QqHh][1-4]|9[Mm]|\d\d))?)")


@dataclass
class Group:
    """The rows of one file that belong to one unit, report and period, and how we know it
    is theirs."""

    unit: str
    period: str
    credential: Credential
    rows: list[dict]
    notes: list[str] = field(default_factory=list)  # warnings told with the version
    report: str = ""


@dataclass
class Problem:
    outcome: Outcome
    message: str
    unit: str = ""
    period: str = ""
    report: str = ""


@dataclass(frozen=True)
class Directory:
    """What identification needs, built once per batch, for every report taking files."""

    tokens: dict[str, tuple[str, str, str]]  # token -> (report, unit, period)
    periods: dict[tuple[str, str], ReportingPeriod]  # (report, period) -> the opened period
    expected: dict[str, frozenset[str]]  # report -> its units
    addresses: dict[str, frozenset[str]]  # e-mail address -> units it may submit for
    reports: dict[str, ReportDef]
    owned: dict[tuple[str, str], frozenset[str]]  # (report, unit) -> its indicator codes

    @cached_property  # asked for every group of a batch
    def all_units(self) -> frozenset[str]:
        return frozenset().union(*self.expected.values())


def build_directory(rt: Runtime) -> Directory:
    reports = {r.id: r for r in rt.reports}
    with session_scope(rt.engine) as s:
        tokens = crud.token_map(s, report_ids=list(reports))
        periods = crud.periods_by_code(s, report_ids=list(reports))
    expected = {r.id: frozenset(rt.cfg.expected_units(r)) for r in reports.values()}
    return Directory(
        tokens=tokens,
        periods=periods,
        expected=expected,
        addresses=unit_addresses(rt.cfg),
        reports=reports,
        owned={
            (r, u): frozenset(i.code for i in rt.cfg.indicators_of(reports[r], u))
            for r, units in expected.items()
            for u in units
        },
    )


def unit_addresses(cfg: Config) -> dict[str, frozenset[str]]:
    """Each registered e-mail address of a unit (its contacts and its head's) -> its units."""
    out: dict[str, set[str]] = {}
    for u in cfg.units:
        contacts = list(u.contacts) + (list(u.head.contacts) if u.head else [])
        for c in contacts:
            if c.email:
                out.setdefault(c.email.lower(), set()).add(u.code)
    return {k: frozenset(v) for k, v in out.items()}


def identify(
    parsed: ParsedFile, arrival: Arrival, d: Directory
) -> tuple[list[Group], list[Problem]]:
    """The file's rows grouped by unit and period, each with its credential, and what is
    wrong with the rest (unknown unit or period, closed period, no right to submit)."""
    meta = parsed.meta
    token = (meta.get("token") or "").strip()
    if token and token in d.tokens:
        report, unit, period = d.tokens[token]
        rows = [{**r, "unit": unit, "period": period} for r in parsed.rows]
        tagged = {(report, unit, period): rows}
        credential: dict[tuple[str, str, str], Credential] = {
            (report, unit, period): Credential.TOKEN
        }
    else:
        if parsed.rows and all(r.get("unit") for r in parsed.rows):
            tagged = {}
            for r in parsed.rows:
                key = (str(r["unit"]).strip().upper(), _period_key(r.get("period", "")))
                tagged.setdefault(key, []).append({**r, "unit": key[0], "period": key[1]})
        elif meta.get("unit_code") and meta.get("period"):
            key = (meta["unit_code"].strip().upper(), _period_key(meta["period"]))
            tagged = {key: [{**r, "unit": key[0], "period": key[1]} for r in parsed.rows]}
        elif m := _NAME.match(arrival.name):
            key = (m["unit"].upper(), _period_key(m["period"]))
            tagged = {key: [{**r, "unit": key[0], "period": key[1]} for r in parsed.rows]}
        else:
            return [], [
                Problem(
                    Outcome.UNIDENTIFIED,
                    "Không xác định được đơn vị và kỳ báo cáo của tệp: hãy điền vào biểu mẫu đã "
                    "gửi kèm thư yêu cầu (biểu mẫu có mã riêng của đơn vị) rồi gửi lại.",
                )
            ]
        tagged = {(report_of(u, p, rows, d), u, p): rows for (u, p), rows in tagged.items()}
        credential = {}
        for key, rows in tagged.items():
            row_tokens = {str(r.get("token") or "").strip() for r in rows} - {""}
            if row_tokens and all(d.tokens.get(t) == key for t in row_tokens):
                credential[key] = Credential.TOKEN
            elif arrival.sender and key[1] in d.addresses.get(arrival.sender.lower(), ()):
                credential[key] = Credential.SENDER
            elif arrival.vouched_unit and arrival.vouched_unit == key[1]:
                credential[key] = Credential.OPERATOR
    groups: list[Group] = []
    problems: list[Problem] = []
    for (report, unit, period), rows in tagged.items():
        key = (report, unit, period)
        problem = _check_group(report, unit, period, credential.get(key), token, d)
        if problem:
            problems.append(problem)
        else:
            notes = _sender_notes(unit, arrival, d)
            groups.append(Group(unit, period, credential[key], rows, notes, report=report))
    return groups, problems


def report_of(unit: str, period: str, rows: list[dict], d: Directory) -> str:
    """The report a file's rows are for, when its form code does not say: the one report of
    the unit whose period kind matches and whose indicators the rows fill; "" when none or
    several fit (`_check_group` then says which). Also names the report of a file's name
    (`named_by`) and of a receipt an earlier run finished (it keeps unit and period only)."""
    try:
        kind = Period.parse(period).kind
    except PeriodError:
        return ""
    codes = {str(r.get("indicator", "")) for r in rows} - {""}
    fits = [
        rid
        for rid, report in d.reports.items()
        if unit in d.expected[rid]
        and report.period_kind == kind
        and (not codes or codes & d.owned.get((rid, unit), frozenset()))
    ]
    return fits[0] if len(fits) == 1 else ""


def _period_key(text: object) -> str:
    """The period's code when the text names one (`T10/2026` -> `2026-10`), else the text."""
    try:
        return Period.parse(str(text)).code
    except PeriodError:
        return str(text).strip().upper()


def _sender_notes(unit: str, arrival: Arrival, d: Directory) -> list[str]:
    """A warning when a unit's form came from an address registered for other units only."""
    others = d.addresses.get((arrival.sender or "").lower(), frozenset())
    if not others or unit in others:
        return []
    return [
        f"Biểu mẫu của đơn vị {unit} được gửi từ địa chỉ {arrival.sender.lower()} của đơn vị "
        f"{', '.join(sorted(others))}: số liệu được ghi cho {unit} theo mã biểu mẫu, không "
        f"thay số liệu của {', '.join(sorted(others))}. Nếu {unit} không gửi tệp này, đề nghị "
        "báo ngay cho Văn phòng."
    ]


def _check_group(
    report_id: str,
    unit: str,
    period: str,
    credential: Credential | None,
    token: str,
    d: Directory,
) -> Problem | None:
    if unit not in d.all_units:
        names = ", ".join(r.name for r in d.reports.values())
        return Problem(
            Outcome.UNIDENTIFIED,
            f"Mã đơn vị '{unit}' không có trong danh sách đơn vị báo cáo {names}; "
            "hãy dùng biểu mẫu đã gửi kèm thư yêu cầu.",
            unit,
            period,
        )
    try:
        p = Period.parse(period)
    except PeriodError as exc:
        return Problem(Outcome.UNIDENTIFIED, str(exc), unit, period)
    if not report_id:
        mine = [r for rid, r in d.reports.items() if unit in d.expected[rid]]
        kinds = [r for r in mine if r.period_kind == p.kind]
        why = (
            f"Kỳ '{period}' không phải kỳ của báo cáo nào đơn vị {unit} gửi "
            f"({', '.join(r.name for r in mine)})."
            if not kinds
            else f"Không rõ tệp thuộc báo cáo nào ({', '.join(r.name for r in kinds)}): hãy "
            "điền vào biểu mẫu đã gửi kèm thư yêu cầu của từng báo cáo."
        )
        return Problem(Outcome.UNIDENTIFIED, why, unit, p.code)
    report = d.reports[report_id]
    if (report_id, p.code) not in d.periods:
        return Problem(
            Outcome.CLOSED_PERIOD,
            f"Kỳ {p.label} của báo cáo {report.name} chưa mở hoặc không nhận số liệu; "
            "tệp không được dùng.",
            unit,
            p.code,
            report_id,
        )
    if credential is None:
        why = "mã biểu mẫu trong tệp không đúng" if token else "tệp không có mã biểu mẫu của đơn vị"
        return Problem(
            Outcome.UNAUTHORIZED,
            f"Tệp ghi số liệu của đơn vị {unit} kỳ {p.label} nhưng {why}, và không được gửi từ "
            f"địa chỉ đã đăng ký của đơn vị: không dùng để thay số liệu của {unit}. Đơn vị hãy "
            "điền vào biểu mẫu đã nhận kèm thư yêu cầu, hoặc gửi từ địa chỉ thư của đơn vị.",
            unit,
            p.code,
            report_id,
        )
    return None


# ---- one batch --------------------------------------------------------------------------


def named_by(file_name: str, d: Directory) -> tuple[str | None, str | None, str | None]:
    """(report, unit, period) a file's name claims (`NV_2022-Q1...`), when the unit reports
    for one report of that period kind and the period is open; used only to tell that unit
    about a file it may have sent."""
    m = _NAME.match(file_name)
    if not m or m["unit"].upper() not in d.all_units:
        return None, None, None
    unit = m["unit"].upper()
    try:
        code = Period.parse(m["period"].upper()).code
    except PeriodError:
        return None, None, None
    report = report_of(unit, code, [], d)
    return (report, unit, code) if (report, code) in d.periods else (None, None, None)
