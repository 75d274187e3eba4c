"""Take in returned forms from the inbox folder or given paths (scheduled every few minutes)."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from pydantic import Field

from baocao.periods import Period
from flows.common import (
    AS_OF_HELP,
    CONFIG_HELP,
    publish_status_artifact,
    start,
    user_errors_fail,
)
from tasks.inbox import claim_inbox_task, finish_claim_task, renew_claim
from tasks.intake import arrivals_from_paths, ingest_arrivals_task, intake_summary
from tasks.notify import deliver_outbox_task

BATCH = 200  # files per task: orchestration costs per task, not per file


@flow(name="ingest-submissions")
@user_errors_fail
def ingest_submissions(
    paths: list[str] = Field(
        [], description="Tệp cần nhận / files to take in (blank: the inbox folder)"
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
    rt, now = start(config_dir, as_of)
    log = get_run_logger()
    if paths:
        missing = [p for p in paths if not Path(p).is_file()]
        if missing:
            raise FileNotFoundError(f"không thấy tệp / not found: {', '.join(missing)}")
        if unit and unit not in rt.cfg.expected_units(rt.report):
            raise ValueError(f"mã đơn vị '{unit}' không có trong báo cáo {rt.report.id}")
        claim, arrivals = None, arrivals_from_paths([Path(p) for p in paths], unit=unit or None)
    else:
        claim = claim_inbox_task(rt)
        arrivals = claim.arrivals
        if claim.waiting:
            log.info("đang ghi dở, để lần sau / still being written: %s", ", ".join(claim.waiting))
    results: list[dict] = []
    for i in range(0, len(arrivals), BATCH):
        results += ingest_arrivals_task(rt, arrivals[i : i + BATCH], now)
        if claim is not None:
            renew_claim(claim, rt.settings.claim_lease_seconds)
    if claim is not None:
        finish_claim_task(rt, claim, results, now)
    # the every-few-minutes run also retries whatever other runs could not send
    sent = deliver_outbox_task(rt, kinds=None)
    stored = {"accepted", "rejected", "duplicate"}  # periods that exist and changed
    for code in sorted({r["period"] for r in results if r["outcome"] in stored}):
        publish_status_artifact(rt, Period.parse(code))
    if results:
        create_table_artifact(
            key="intake-latest",
            table=results,
            description=f"Files taken in at {now:%d/%m/%Y %H:%M}",
        )
    log.info(
        "took in %d file(s) %s; rejections delivery %s", len(results), intake_summary(results), sent
    )
    return results
