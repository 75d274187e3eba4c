"""Open a period: its dates, one collection request per unit with its pre-filled form, and
the request messages in the outbox."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Engine

from baocao import crud, forms
from baocao.config import Config, ConfigError, ReportDef, Schedule, read_facts
from baocao.db import session_scope
from baocao.models import ReportingPeriod
from baocao.notices import Notice, queue_notices
from baocao.periods import Period, add_working_days, end_of_day, next_working_day
from baocao.runtime import Runtime
from baocao.settings import Settings
from tasks.messages import request_notice


@dataclass(frozen=True)
class PeriodDates:
    """The period's calendar, in Vietnam time."""

    window_start: dt.date
    window_end: dt.date
    open_day: dt.date
    unit_deadline: dt.datetime  # 24:00 of the units' last day (set by the district)
    report_deadline: dt.datetime  # the district's report to the province (set by the province)
    province_deadline: dt.datetime  # the province's report to the Ministry of Home Affairs

    @property
    def unit_last_day(self) -> dt.date:
        return (self.unit_deadline - dt.timedelta(seconds=1)).date()


def period_dates(period: Period, schedule: Schedule) -> PeriodDates:
    """Opening day and deadlines in working days around the Decree 09/2019 cut-off."""
    start, cutoff = period.window()
    return PeriodDates(
        window_start=start,
        window_end=cutoff,
        open_day=add_working_days(cutoff, -schedule.open_working_days_before_cutoff),
        unit_deadline=end_of_day(
            add_working_days(cutoff, schedule.unit_deadline_working_days_after_cutoff)
        ),
        report_deadline=end_of_day(
            add_working_days(cutoff, schedule.report_deadline_working_days_after_cutoff)
        ),
        province_deadline=end_of_day(
            next_working_day(dt.date(period.year, period.last_month, schedule.province_report_day))
        ),
    )


def collecting_period(day: dt.date, kind: str, schedule: Schedule) -> Period:
    """The period being collected on `day`: the latest one whose opening day has come.

    On 15/03/2022 that is still 2022-Q1 (its window closed on 14/03, Q2 opens in June):
    reminders, intake and publishing keep working on it until the next one opens."""
    p = Period.containing(day, kind)
    return p if period_dates(p, schedule).open_day <= day else p.previous()


def select_units(cfg: Config, report: ReportDef, units: list[str] | None) -> list[str]:
    """The units asked for (all expected ones by default); unknown codes are a clear error."""
    expected = cfg.expected_units(report)
    if not units:
        return expected
    unknown = [u for u in units if u not in expected]
    if unknown:
        raise ValueError(
            f"unknown unit code(s) {unknown} for report {report.id}; known: {', '.join(expected)}"
        )
    return [u for u in expected if u in units]


def ensure_period_row(
    engine: Engine, cfg: Config, report: ReportDef, period: Period, now: dt.datetime
) -> ReportingPeriod:
    dates = period_dates(period, report.schedule or cfg.schedule)
    row = ReportingPeriod(
        report_id=report.id,
        code=period.code,
        window_start=dates.window_start,
        window_end=dates.window_end,
        unit_deadline=dates.unit_deadline,
        report_deadline=dates.report_deadline,
        opened_at=now,
    )
    with session_scope(engine) as s:
        return crud.ensure_period(s, row=row)


def write_forms(
    settings: Settings,
    cfg: Config,
    report: ReportDef,
    period: Period,
    period_row: ReportingPeriod,
    units: list[str],
    now: dt.datetime,
) -> list[dict]:
    """A request with its form for each unit that has none yet (forms are written once):
    one workbook per layout, each unit's name, code and token stamped into it. Returns the
    `CollectionRequest` rows to insert (plain rows: at ten thousand units ORM objects cost
    seconds)."""
    engine_rows: list[dict] = []
    folder = settings.forms_dir / report.id / period.code
    folder.mkdir(parents=True, exist_ok=True)
    stamper = forms.FormStamper(
        body=cfg.body,
        report=report,
        period=period,
        deadline=period_row.unit_deadline,
        created=now,
    )
    for code in units:
        token = secrets.token_hex(8)
        content = stamper.form(cfg.unit_map[code], cfg.indicators_of(report, code), token)
        path = folder / f"{code}_{period.code}.xlsx"
        path.write_bytes(content)
        engine_rows.append(
            {
                "period_id": period_row.id,
                "unit_code": code,
                "token": token,
                "form_path": str(path),
                "form_sha256": hashlib.sha256(content).hexdigest(),
                "created_at": now,
            }
        )
    return engine_rows


def request_notices(
    rt: Runtime,
    period: Period,
    forms: dict[str, str],
    now: dt.datetime,
    force_tag: str | None = None,
) -> list[Notice]:
    """One request per unit (`forms`: unit code -> its form's path), its form attached."""
    dates = period_dates(period, rt.schedule)
    return [
        request_notice(
            rt,
            unit_code=unit,
            period=period,
            window=(dates.window_start, dates.window_end),
            deadline=dates.unit_deadline,
            form_path=form_path,
            now=now,
            force_tag=force_tag,
        )
        for unit, form_path in forms.items()
    ]


def open_period(
    rt: Runtime, *, period: Period, units: list[str] | None, now: dt.datetime, force: bool = False
) -> dict:
    """Create the period, the missing requests and forms, and queue the request messages.

    A rerun creates nothing twice; `force` queues the messages again as a new intent."""
    chosen = select_units(rt.cfg, rt.report, units)
    period_row = ensure_period_row(rt.engine, rt.cfg, rt.report, period, now)
    with session_scope(rt.engine) as s:
        existing = crud.requests_for(s, period_id=period_row.id)
    new = write_forms(
        rt.settings,
        rt.cfg,
        rt.report,
        period,
        period_row,
        [u for u in chosen if u not in existing],
        now,
    )
    with session_scope(rt.engine) as s:
        crud.add_requests(s, rows=new)
    paths = {u: r.form_path for u, r in existing.items()}
    paths |= {r["unit_code"]: r["form_path"] for r in new}
    notices = request_notices(
        rt,
        period,
        {u: paths[u] for u in chosen},
        now,
        force_tag=now.isoformat() if force else None,
    )
    with session_scope(rt.engine) as s:
        queued = queue_notices(s, notices)
    return {
        "period": period.code,
        "units": len(chosen),
        "new_requests": len(new),
        "queued_messages": len(queued),
        "unit_deadline": period_dates(period, rt.schedule).unit_last_day.isoformat(),
        "facts": facts_warning(rt.cfg, rt.report, period),
    }


def facts_warning(cfg: Config, report: ReportDef, period: Period) -> str:
    """What the period's facts file still lacks ("" when complete): opening does not wait for
    it (facts are often known later), publishing does."""
    try:
        read_facts(cfg, report, period.code)
    except ConfigError as exc:
        return str(exc)
    return ""


def form_for(rt: Runtime, unit_code: str, period: Period) -> bytes:
    """The unit's form for the period: the one its request carried, else a fresh one."""
    if unit_code not in rt.cfg.expected_units(rt.report):
        raise ValueError(
            f"unit '{unit_code}' reports nothing in {rt.report.id}; known: "
            f"{', '.join(rt.cfg.expected_units(rt.report))}"
        )
    with session_scope(rt.engine) as s:
        row = crud.get_period(s, report_id=rt.report.id, code=period.code)
        request = crud.requests_for(s, period_id=row.id).get(unit_code) if row else None
    if request and Path(request.form_path).is_file():
        return Path(request.form_path).read_bytes()
    return forms.build_form(
        body=rt.cfg.body,
        report=rt.report,
        unit=rt.cfg.unit_map[unit_code],
        period=period,
        indicators=rt.cfg.indicators_of(rt.report, unit_code),
        token=request.token if request else "",
        deadline=period_dates(period, rt.schedule).unit_deadline,
    )


@task(name="create-requests", cache_policy=NO_CACHE)
def open_period_task(
    rt: Runtime, period: Period, units: list[str] | None, now: dt.datetime, force: bool
) -> dict:
    """Create the period's requests and forms and queue their messages."""
    return open_period(rt, period=period, units=units, now=now, force=force)
