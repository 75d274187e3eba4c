"""`baocao serve`: every report's flows as deployments, served from one process, with their
schedules in Asia/Ho_Chi_Minh (the server itself: baocao/prefect_server.py)."""

from __future__ import annotations

import datetime as dt


def build_deployments(now: dt.datetime, config_dir: str | None = None, ingest_minutes: int = 5):
    """Every report's deployments from one process, with their run times by full name
    (`open-period/cchc-quarterly`): `open-period`, `publish-report` and
    `reporting-cycle` once per report (named for it, its id in their parameters, dated
    schedules from its own period rules); `send-reminders` and `ingest-submissions` once for
    the office, since a unit gets one reminder for all it owes and a file names its report;
    `publish-calendar` refreshes the year's calendar every Monday."""
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

    from baocao.runtime import build_runtime
    from flows.ingest_submissions import ingest_submissions
    from flows.open_period import open_period
    from flows.publish_calendar import publish_calendar
    from flows.publish_report import publish_report
    from flows.reporting_cycle import reporting_cycle
    from flows.send_reminders import send_reminders
    from tasks.schedule import deployment_times, rrule_with_dates

    rt = build_runtime(config_dir)
    tz = rt.settings.timezone
    common = {"config_dir": config_dir} if config_dir else {}

    def dated(times: list[dt.datetime]) -> list:
        return [RRuleSchedule(rrule=rrule_with_dates(times, now), timezone=tz)]

    deployments, times, reminders = [], {}, []
    for report in rt.reports:
        mine = rt.for_report(report.id)
        when = deployment_times(now.date(), report.period_kind, mine.schedule)
        times |= {f"{flow}/{report.id}": when[flow] for flow in ("open-period", "publish-report")}
        reminders += when["send-reminders"]
        params = {**common, "report": report.id}
        about = f"{report.name} ({report.id})"
        deployments += [
            open_period.to_deployment(
                name=report.id,
                description=f"Mở kỳ báo cáo / open a period: {about}",
                schedules=dated(when["open-period"]),
                parameters=params,
                tags=["baocao", report.id],
            ),
            publish_report.to_deployment(
                name=report.id,
                description=f"Tổng hợp, duyệt, gửi báo cáo / publish: {about}",
                schedules=dated(when["publish-report"]),
                parameters=params,
                tags=["baocao", report.id],
            ),
            reporting_cycle.to_deployment(
                name=report.id,
                description=f"Cả chu kỳ hoặc một bước / the whole cycle or one stage: {about}",
                parameters=params,
                tags=["baocao", report.id],
            ),
        ]
    deployments += [
        send_reminders.to_deployment(
            name="office",
            description="Nhắc hạn mọi báo cáo / reminders for every report, one per unit",
            schedules=dated(sorted(set(reminders))),
            parameters=common,
            tags=["baocao"],
        ),
        ingest_submissions.to_deployment(
            name="office",
            description="Nhận tệp trả về của mọi báo cáo / take in returned forms",
            parameters=common,
            tags=["baocao"],
            schedules=[
                IntervalSchedule(interval=dt.timedelta(minutes=ingest_minutes), timezone=tz)
            ],
        ),
    ]
    deployments.append(
        publish_calendar.to_deployment(
            name="office",
            description="Lịch báo cáo của năm (bảng và tệp .ics) / the year's reporting calendar",
            parameters=common,
            tags=["baocao"],
            schedules=[CronSchedule(cron="0 7 * * 1", timezone=tz)],  # Mondays 07:00
        )
    )
    times["send-reminders/office"] = sorted(set(reminders))
    return deployments, times
