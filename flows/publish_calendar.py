"""The office's reporting calendar of a year, in the UI and as an .ics file (weekly)."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from pydantic import Field

from flows.common import CONFIG_HELP, REPORT_HELP, start, user_errors_fail
from tasks.reporting_calendar import calendar_rows, write_calendar_task


@flow(name="publish-calendar")
@user_errors_fail
def publish_calendar(
    year: int = Field(0, description="Năm / year, e.g. 2026 (0: this year)", ge=0),
    report: str = Field("", description=REPORT_HELP),
    config_dir: str = Field("", description=CONFIG_HELP),
) -> dict:
    """Every report's opening day, units' deadline and report deadline of the year."""
    rt, now = start(config_dir, "", report=report)
    year = year or now.year
    entries, path = write_calendar_task(rt, year)
    create_table_artifact(
        key=f"calendar-{year}",
        table=calendar_rows(entries),
        description=f"Lịch báo cáo năm {year} / reporting calendar; iCalendar: {path}",
    )
    get_run_logger().info("%d dates of %d report(s) in %s", len(entries), len(rt.reports), path)
    return {"year": year, "dates": len(entries), "ics": str(path)}
