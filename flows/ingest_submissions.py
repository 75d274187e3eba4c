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
from tasks.intake import ingest_files_task, list_inbox
from tasks.notify import deliver_outbox_task

BATCH = 200  # files per task: orchestration costs per task, not per file


@flow(name="ingest-submissions")
@user_errors_fail
def ingest_submissions(
    paths: list[str] = Field(
        [], description="Tệp cần nhận / files to take in (blank: the inbox folder)"
    ),
    as_of: str = Field("", description=AS_OF_HELP),
    config_dir: str = Field("", description=CONFIG_HELP),
) -> list[dict]:
    """Archive, validate and store returned forms; tell units what is wrong."""
    rt, now = start(config_dir, as_of)
    inbox = rt.settings.inbox
    files = [Path(p) for p in paths] if paths else list_inbox(inbox)
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"not found: {', '.join(missing)}")
    results: list[dict] = []
    for i in range(0, len(files), BATCH):
        results += ingest_files_task(rt, files[i : i + BATCH], now, None if paths else inbox)
    sent = deliver_outbox_task(rt, kinds=["rejection"])
    for code in sorted({r["period"] for r in results if r["period"]}):
        publish_status_artifact(rt, Period.parse(code))
    if results:
        create_table_artifact(
            key="intake-latest",
            table=results,
            description=f"Files taken in at {now:%d/%m/%Y %H:%M}",
        )
    get_run_logger().info("took in %d file(s); rejections delivery %s", len(results), sent)
    return results
