"""Take in returned forms: from the office's mailbox (when one is configured), the inbox
folder, or given paths (scheduled every few minutes)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from pydantic import Field

from baocao.periods import Period
from baocao.runtime import Runtime
from flows.common import (
    AS_OF_HELP,
    CONFIG_HELP,
    publish_status_artifact,
    start,
    user_errors_fail,
)
from tasks.inbox import claim_inbox_task, finish_claim_task, renew_claim
from tasks.intake import arrivals_from_paths, ingest_arrivals_task, intake_summary
from tasks.mailbox import MailboxError, take_mailbox_task
from tasks.notify import deliver_outbox_task

BATCH = 200  # files per task: orchestration costs per task, not per file


@flow(name="ingest-submissions")
@user_errors_fail
def ingest_submissions(
    paths: list[str] = Field(
        [], description="Tệp cần nhận / files to take in (blank: the mailbox and the inbox folder)"
    ),
    unit: str = Field(
        "",
        description="Nộp thay cho đơn vị / file the given paths for this unit (the office "
        "received them by hand; blank: each file must carry its unit's form code)",
    ),
    as_of: str = Field("", description=AS_OF_HELP),
    config_dir: str = Field("", description=CONFIG_HELP),
) -> list[dict]:
    """Archive, validate and store returned forms; tell units what is wrong."""
    if unit and not paths:
        raise ValueError(
            f"unit={unit} chỉ dùng cùng paths: nộp thay các tệp đã nêu; để trống unit khi nhận từ "
            "hộp thư / unit files the given paths for a unit; without paths it is not used"
        )
    rt, now = start(config_dir, as_of)
    mailbox_down: MailboxError | None = None
    if paths:
        results = from_paths(rt, paths, unit, now)
    else:
        try:
            results = from_mailbox(rt, now)
        except MailboxError as exc:  # the folder and the outbox still run; the run fails
            get_run_logger().error("hộp thư / mailbox: %s", exc)
            mailbox_down, results = exc, []
        results += from_folder(rt, now)
    # the every-few-minutes run also retries whatever other runs could not send
    sent = deliver_outbox_task(rt, kinds=None)
    report(rt, results, now, sent)
    if mailbox_down is not None:
        raise mailbox_down
    return results


def from_paths(rt: Runtime, paths: list[str], unit: str, now: dt.datetime) -> list[dict]:
    """Files named on the command line or in the UI (not moved)."""
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"không thấy tệp / not found: {', '.join(missing)}")
    if unit and not any(unit in rt.cfg.expected_units(r) for r in rt.reports):
        raise ValueError(f"mã đơn vị '{unit}' không gửi báo cáo nào / no report has this unit")
    arrivals = arrivals_from_paths([Path(p) for p in paths], unit=unit or None)
    results: list[dict] = []
    for i in range(0, len(arrivals), BATCH):
        results += ingest_arrivals_task(rt, arrivals[i : i + BATCH], now)
    return [{**r, "source": "cli", "sender": ""} for r in results]


def from_mailbox(rt: Runtime, now: dt.datetime) -> list[dict]:
    """The replies in the office's mailbox (BAOCAO_IMAP_URL), when one is configured."""
    if not rt.settings.imap_url:
        return []
    run = take_mailbox_task(rt, now)
    if run["error"]:
        raise MailboxError(run["error"])
    if run["letters"]:
        create_table_artifact(
            key="mailbox-latest",
            table=run["letters"],
            description=f"Thư nhận / messages taken at {now:%d/%m/%Y %H:%M}; chưa đăng ký / "
            f"unknown senders: {', '.join(sorted(set(run['unknown']))) or '-'}",
        )
    return run["results"]


def from_folder(rt: Runtime, now: dt.datetime) -> list[dict]:
    """The files waiting in the inbox folder (offices without a mailbox, files by hand)."""
    claim = claim_inbox_task(rt)
    if claim.waiting:
        get_run_logger().info(
            "đang ghi dở, để lần sau / still being written: %s", ", ".join(claim.waiting)
        )
    results: list[dict] = []
    for i in range(0, len(claim.arrivals), BATCH):
        results += ingest_arrivals_task(rt, claim.arrivals[i : i + BATCH], now)
        renew_claim(claim, rt.settings.claim_lease_seconds)
    finish_claim_task(rt, claim, results, now)
    return [{**r, "source": "folder", "sender": ""} for r in results]


def report(rt: Runtime, results: list[dict], now: dt.datetime, sent: dict) -> None:
    """The periods' status tables, the run's intake table and one line in the log."""
    stored = {"accepted", "rejected", "duplicate"}  # periods that exist and changed
    changed = {
        (r["report"], r["period"]) for r in results if r["outcome"] in stored and r["report"]
    }
    for report_id, code in sorted(changed):
        publish_status_artifact(rt.for_report(report_id), Period.parse(code))
    if results:
        create_table_artifact(
            key="intake-latest",
            table=results,
            description=f"Files taken in at {now:%d/%m/%Y %H:%M}",
        )
    get_run_logger().info(
        "took in %d file(s) %s; rejections delivery %s", len(results), intake_summary(results), sent
    )
