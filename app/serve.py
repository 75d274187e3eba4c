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
        when = deployment_times(now.date(), report.period_kind, rt.for_report(report.id).schedule)
        reminders += when["send-reminders"]
        for flow, what, runs in (
            (open_period, "Mở kỳ báo cáo / open a period", when["open-period"]),
            (publish_report, "Tổng hợp, duyệt, gửi báo cáo / publish", when["publish-report"]),
            (reporting_cycle, "Cả chu kỳ hoặc một bước / the whole cycle or one stage", []),
        ):
            if runs:
                times[f"{flow.name}/{report.id}"] = runs
            deployments.append(
                flow.to_deployment(
                    name=report.id,
                    description=f"{what}: {report.name} ({report.id})",
                    schedules=dated(runs) if runs else None,
                    parameters={**common, "report": report.id},
                    tags=["baocao", report.id],
                )
            )
    times["send-reminders/office"] = sorted(set(reminders))
    for flow, what, schedules in (
        (
            send_reminders,
            "Nhắc hạn mọi báo cáo / reminders for every report, one per unit",
            dated(times["send-reminders/office"]),
        ),
        (
            ingest_submissions,
            "Nhận tệp trả về của mọi báo cáo / take in returned forms",
            [IntervalSchedule(interval=dt.timedelta(minutes=ingest_minutes), timezone=tz)],
        ),
        (
            publish_calendar,
            "Lịch báo cáo của năm (bảng và tệp .ics) / the year's reporting calendar",
            [CronSchedule(cron="0 7 * * 1", timezone=tz)],  # Mondays 07:00
        ),
    ):
        deployments.append(
            flow.to_deployment(
                name="office",
                description=what,
                parameters=common,
                tags=["baocao"],
                schedules=schedules,
            )
        )
    return deployments, times
