"""Every message baocao sends, built here as typed notices (`baocao.notices.Notice`).

One builder per kind, each from plain data: the stages decide who is told what (open a
period, take a file in, remind, publish, approve) and call these; `queue_notices` puts the
result in the outbox, in the caller's transaction.

Reminders and escalations are built from `Outstanding` items (one unit owing one report for
one period, as of a day) and grouped by recipient: a unit gets one reminder listing what it
owes, a head or an office one digest listing every late unit. Today an item is always of the
one report being run; the grouping and the intent keys already take items of several
reports (issue 9: a unit late for two reports on the same day gets one reminder).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from baocao import vnformat
from baocao.config import Approver, Indicator, Person, ReportDef, Unit
from baocao.notices import Notice, NoticeKind, build_notice, position
from baocao.periods import Period, as_vn
from baocao.runtime import Runtime
from tasks.validate import place, shown

MAX_FINDINGS_IN_MESSAGE = 20


def last_day(deadline: dt.datetime) -> dt.date:
    """The day a deadline of 24:00 falls on, in Vietnam: 24:00 of 16/03 is "16/03/2022"."""
    return (as_vn(deadline) - dt.timedelta(seconds=1)).date()


def _unit_addressee(unit: Unit) -> str:
    return unit.name


def _person_addressee(name: str, title: str) -> str:
    """A person by name and title ("Đồng chí Nguyễn Ngọc Trân, Chủ tịch UBND huyện"); a name
    that already says the title ("Chánh Văn phòng HĐND và UBND huyện") is said once."""
    if title and title.casefold() in name.casefold():
        return name
    return f"Đồng chí {name}" + (f", {title}" if title else "")


def _head_addressee(person: Person, unit: Unit) -> str:
    return _person_addressee(person.name, position(person.title, unit.name))


def _office_addressee(person: Person) -> str:
    """An office of body.yaml: its name, under the title of its head ("Chánh Văn phòng" +
    "Văn phòng HĐND và UBND huyện" -> "Chánh Văn phòng HĐND và UBND huyện")."""
    return position(person.title, person.name)


def _to_unit(
    rt: Runtime,
    kind: NoticeKind,
    *,
    unit_code: str,
    period: Period,
    intent: str,
    context: dict,
    attachments: Sequence[str] = (),
    force_tag: str | None = None,
) -> Notice:
    """A notice to a unit's registered contacts about one period: keyed
    `<kind>:<report>:<period>:<unit>[:<intent>]`, with `unit` and `period` in its context."""
    unit = rt.cfg.unit_map[unit_code]
    return build_notice(
        rt.env,
        rt.cfg,
        kind,
        key=":".join(filter(None, (kind.value, rt.report.id, period.code, unit_code, intent))),
        recipient=unit_code,
        contacts=unit.contacts,
        addressee=_unit_addressee(unit),
        report=rt.report,
        context={"unit": unit, "period": period, **context},
        attachments=attachments,
        period=period.code,
        unit=unit_code,
        force_tag=force_tag,
    )


# ---- request -----------------------------------------------------------------------------


def request_notice(
    rt: Runtime,
    *,
    unit_code: str,
    period: Period,
    window: tuple[dt.date, dt.date],
    deadline: dt.datetime,
    form_path: str,
    now: dt.datetime,
    force_tag: str | None = None,
) -> Notice:
    """A unit is asked for its figures, its pre-filled form attached."""
    form = Path(form_path)
    return _to_unit(
        rt,
        NoticeKind.REQUEST,
        unit_code=unit_code,
        period=period,
        intent="",
        context={
            "deadline": vnformat.date(last_day(deadline)),
            "overdue": now >= deadline,
            "window_start": vnformat.date(window[0]),
            "window_end": vnformat.date(window[1]),
            "form_name": form.name,
            "indicators": rt.cfg.indicators_of(rt.report, unit_code),
        },
        attachments=[str(form.resolve())],
        force_tag=force_tag,
    )


# ---- what a file brought -----------------------------------------------------------------


def _finding_view(f: dict) -> dict:
    """A finding as a message shows it: the sentence, and its pieces for the table."""
    return {
        "severity": f.get("severity", "error"),
        "place": place(f.get("cell") or ""),
        "label": f.get("label") or "",
        "value": f.get("value") or "",
        "expected": f.get("expected") or "",
        "message_vi": f.get("message_vi") or "",
        "message_en": f.get("message_en") or "",
    }


def rejection_notice(
    rt: Runtime,
    *,
    unit_code: str,
    period: Period,
    version: int,
    file_name: str,
    received: dt.datetime,
    findings: Sequence[dict],
    deadline: dt.datetime,
) -> Notice:
    """What is wrong with a version: the first findings and a count of the rest, so a file
    with a hundred thousand mistakes is still a short mail. It is the version's receipt."""
    views = [_finding_view(f) for f in findings]
    errors = [f for f in views if f["severity"] == "error"]
    warnings = [f for f in views if f["severity"] != "error"]
    return _to_unit(
        rt,
        NoticeKind.REJECTION,
        unit_code=unit_code,
        period=period,
        intent=f"v{version}",
        context={
            "version": int(version),
            "file_name": file_name,
            "received": vnformat.moment(received),
            "errors": errors[:MAX_FINDINGS_IN_MESSAGE],
            "warnings": warnings[: max(0, MAX_FINDINGS_IN_MESSAGE - len(errors))],
            "error_count": len(errors),
            "more": max(0, len(views) - MAX_FINDINGS_IN_MESSAGE),
            "deadline": vnformat.date(last_day(deadline)),
            "overdue": received >= deadline,
        },
    )


def unreadable_notice(
    rt: Runtime,
    *,
    unit_code: str,
    period: Period,
    file_name: str,
    sha256: str,
    reason: str,
    received: dt.datetime,
    deadline: dt.datetime,
) -> Notice:
    """A file bearing the unit's name could not be read: told to the unit's registered
    contacts (not to whoever sent the file), once per file content."""
    return _to_unit(
        rt,
        NoticeKind.UNREADABLE,
        unit_code=unit_code,
        period=period,
        intent=sha256[:16],
        context={
            "file_name": file_name,
            "received": vnformat.moment(received),
            "reason": reason,
            "form_name": f"{unit_code}_{period.code}.xlsx",
            "deadline": vnformat.date(last_day(deadline)),
            "overdue": received >= deadline,
        },
    )


def recorded_figures(
    indicators: Iterable[Indicator], values: Mapping[str, tuple[float | None, str | None]]
) -> list[dict]:
    """The figures of a version as recorded (`values`: indicator code -> (number, text)), in
    the form's order: label, value written the Vietnamese way, unit of measure. A blank
    optional value says so."""
    out = []
    for ind in indicators:
        num, text = values.get(ind.code, (None, None))
        unit = "" if ind.unit == "%" else ind.unit
        if ind.type == "text":
            value = (text or "").strip()
            if len(value) > 300:
                value = value[:300].rstrip() + "…"
            value = value or "(để trống)"
            unit = ""
        elif pd.isna(num):
            value, unit = "(để trống)", ""
        else:
            value = shown(ind, num)
        out.append({"code": ind.code, "label": ind.label, "value": value, "unit": unit})
    return out


def receipt_notice(
    rt: Runtime,
    *,
    unit_code: str,
    period: Period,
    version: int,
    file_name: str,
    received: dt.datetime,
    late: bool,
    deadline: dt.datetime,
    values: Mapping[str, tuple[float | None, str | None]],
    findings: Sequence[dict] = (),
) -> Notice:
    """A valid version was recorded: when it came, its number, and the figures as recorded
    (with any warning), so the unit sees what the office will use. Once per version."""
    return _to_unit(
        rt,
        NoticeKind.RECEIPT,
        unit_code=unit_code,
        period=period,
        intent=f"v{version}",
        context={
            "version": int(version),
            "file_name": file_name,
            "received": vnformat.moment(received),
            "late": bool(late),
            "deadline": vnformat.date(last_day(deadline)),
            "figures": recorded_figures(rt.cfg.indicators_of(rt.report, unit_code), values),
            "warnings": [_finding_view(f) for f in findings][:MAX_FINDINGS_IN_MESSAGE],
        },
    )


# ---- reminders and escalations -----------------------------------------------------------


@dataclass(frozen=True)
class Outstanding:
    """One unit owing one report for one period, as of a reminder day."""

    report: ReportDef
    period: Period
    unit: Unit
    deadline: dt.date  # the units' last day
    days: int  # working days left; negative once overdue
    step: str  # the policy's step of the day: before-3, due-day, overdue-4, manual
    state: str  # missing | rejected
    version: int | None = None  # the latest version, when one came
    errors: int = 0
    form_path: str | None = None
    indicators: tuple[Indicator, ...] = ()

    @property
    def scope(self) -> str:
        return f"{self.report.id}:{self.period.code}"


def _steps(items: Sequence[Outstanding]) -> str:
    """The part of an intent key naming what a message is about: `report:period:step` of
    each item, joined (one report today: `cchc-quarterly:2022-Q1:overdue-4`)."""
    return "+".join(sorted({f"{i.scope}:{i.step}" for i in items}))


def _periods(items: Sequence[Outstanding]) -> str:
    return ",".join(sorted({i.period.code for i in items}))


def _item_context(i: Outstanding) -> dict:
    return {
        "report": i.report,
        "period": i.period,
        "deadline": vnformat.date(i.deadline),
        "days": int(i.days),
        "state": i.state,
        "version": None if i.version is None else int(i.version),
        "errors": int(i.errors),
        "indicators": list(i.indicators),
        "form_name": Path(i.form_path).name if i.form_path else "",
    }


def reminder_notices(
    rt: Runtime, items: Sequence[Outstanding], *, force_tag: str | None = None
) -> list[Notice]:
    """One reminder per unit, listing everything it owes on the day, its forms attached.

    Keyed `reminder:<report>:<period>:<unit>:<step>` (several items: their report:period:step
    joined by `+`), so a step reaches a unit once."""
    by_unit: dict[str, list[Outstanding]] = {}
    for i in items:
        by_unit.setdefault(i.unit.code, []).append(i)
    out = []
    for code, mine in by_unit.items():
        unit = mine[0].unit
        if len(mine) == 1:
            key = f"reminder:{mine[0].scope}:{code}:{mine[0].step}"
        else:
            key = f"reminder:{_steps(mine)}:{code}"
        forms = [str(Path(i.form_path).resolve()) for i in mine if i.form_path]
        out.append(
            build_notice(
                rt.env,
                rt.cfg,
                NoticeKind.REMINDER,
                key=key,
                recipient=code,
                contacts=unit.contacts,
                addressee=_unit_addressee(unit),
                report=mine[0].report if len(mine) == 1 else None,
                context={"unit": unit, "items": [_item_context(i) for i in mine]},
                attachments=forms,
                period=_periods(mine),
                unit=code,
                force_tag=force_tag,
            )
        )
    return out


@dataclass(frozen=True)
class _Recipient:
    key: str  # head:NV | an office key of body.yaml
    person: Person
    addressee: str
    unit: Unit | None  # the head's unit


def _escalation_recipients(rt: Runtime, item: Outstanding, escalate_to: Sequence[str]):
    for target in escalate_to:
        if target == "head" and item.unit.head:
            head = item.unit.head
            yield _Recipient(
                f"head:{item.unit.code}", head, _head_addressee(head, item.unit), item.unit
            )
        elif target in rt.cfg.body.offices:
            office = rt.cfg.body.offices[target]
            yield _Recipient(target, office, _office_addressee(office), None)


def escalation_notices(
    rt: Runtime,
    items: Sequence[Outstanding],
    *,
    today: dt.date,
    escalate_to: Sequence[str],
    selection: Sequence[str] | None = None,
    force_tag: str | None = None,
) -> list[Notice]:
    """One digest per recipient for the day: a unit's head gets its unit, an office (the
    chairman's) ONE message listing every late unit with its days late and state.

    Keyed `escalation:<report>:<period>:<step>:<recipient>` (several reports: their
    report:period:step joined by `+`), so a rerun never sends the same digest twice; a run
    for some units only (`selection`) is its own intent, so it does not stand for the day's
    full digest."""
    by_recipient: dict[str, tuple[_Recipient, list[Outstanding]]] = {}
    for i in items:
        for r in _escalation_recipients(rt, i, escalate_to):
            by_recipient.setdefault(r.key, (r, []))[1].append(i)
    only = ""
    if selection:
        only = ":only-" + hashlib.sha256(",".join(sorted(selection)).encode()).hexdigest()[:10]
    order = {u.code: n for n, u in enumerate(rt.cfg.units)}  # as units.yaml lists them
    out = []
    for rkey, (r, mine) in by_recipient.items():
        groups: dict[str, dict] = {}
        for i in sorted(mine, key=lambda i: (i.days, order.get(i.unit.code, 0))):  # latest first
            g = groups.setdefault(
                i.scope,
                {
                    "report": i.report,
                    "period": i.period,
                    "deadline": vnformat.date(i.deadline),
                    "units": [],
                },
            )
            g["units"].append(
                {
                    "code": i.unit.code,
                    "name": i.unit.name,
                    "days": -int(i.days),
                    "state": i.state,
                    "version": None if i.version is None else int(i.version),
                    "errors": int(i.errors),
                }
            )
        reports = {i.report.id: i.report for i in mine}
        out.append(
            build_notice(
                rt.env,
                rt.cfg,
                NoticeKind.ESCALATION,
                key=f"escalation:{_steps(mine)}:{rkey}{only}",
                recipient=rkey,
                contacts=r.person.contacts,
                addressee=r.addressee,
                report=next(iter(reports.values())) if len(reports) == 1 else None,
                context={
                    "today": vnformat.date(today),
                    "to_head": r.unit is not None,
                    "count": len({i.unit.code for i in mine}),
                    "groups": list(groups.values()),
                },
                period=_periods(mine),
                unit=r.unit.code if r.unit else None,
                force_tag=force_tag,
            )
        )
    return out


# ---- the report and its approval ---------------------------------------------------------


def report_notice(
    rt: Runtime,
    *,
    period: Period,
    version: int,
    recipient: str,
    contacts: Sequence,
    title: str,
    attachments: Sequence[str],
    completeness: str,
    timeliness: str,
    force_tag: str | None = None,
    number: str = "",
    replaces: dict | None = None,
    changes: Sequence[str] | None = None,
) -> Notice:
    """The report to one recipient of Nơi nhận: `number` its Số and date ("" for a courtesy
    copy), `replaces` the earlier report it replaces (number, sent_on), `changes` what
    changed since, figure by figure."""
    return build_notice(
        rt.env,
        rt.cfg,
        NoticeKind.REPORT,
        key=f"report:{rt.report.id}:{period.code}:v{version}:{recipient}",
        recipient=recipient,
        contacts=contacts,
        addressee=recipient,
        report=rt.report,
        context={
            "period": period,
            "title": title,
            "files": [Path(a).name for a in attachments],
            "completeness": completeness,
            "timeliness": timeliness,
            "number": number,
            "symbol": rt.report.symbol,
            "replaces": replaces,
            "changes": list(changes or []),
        },
        attachments=attachments,
        period=period.code,
        force_tag=force_tag,
    )


def approval_notice(
    rt: Runtime,
    *,
    key: str,
    period: Period,
    version: int,
    approver: Approver,
    code: str,
    expires: dt.datetime,
    attachments: Sequence[str],
    files: Sequence[str],
    completeness: str,
    timeliness: str,
    notes: Sequence[str] = (),
) -> Notice:
    """A one-time approval code to one approver's own contacts, with what to know first."""
    local = as_vn(expires)
    return build_notice(
        rt.env,
        rt.cfg,
        NoticeKind.APPROVAL,
        key=key,
        recipient=approver.name,
        contacts=approver.contacts,
        addressee=_person_addressee(approver.name, approver.title),
        report=rt.report,
        context={
            "period": period,
            "period_code": period.code,
            "approver": approver,
            "version": int(version),
            "code": code,
            "expires": f"{local:%H:%M} ngày {vnformat.date(local.date())}",
            "files": list(files),
            "completeness": completeness or "?",
            "timeliness": timeliness or "?",
            "notes": list(notes),
        },
        attachments=attachments,
        period=period.code,
    )
