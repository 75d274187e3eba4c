"""Approval before dispatch, answered through the same API the Prefect UI uses (the
session's real Prefect API server); the decision is stored in baocao's own database."""

from __future__ import annotations

import threading
import time

import pytest

from baocao.db import session_scope
from baocao.mailcatcher import MailCatcher
from baocao.models import RenderedReport
from baocao.runtime import build_runtime
from baocao.settings import get_settings
from tests.conftest import APPROVAL_ON, PERIOD, edited_config, ingest_waves, open_example

pytestmark = pytest.mark.slow


@pytest.fixture
def approval_setup(tmp_path, monkeypatch, prefect_harness):
    config = edited_config(tmp_path / "config", *APPROVAL_ON)
    data = tmp_path / "data"
    rt = build_runtime(settings=get_settings(data_dir=data, config_dir=config))
    open_example(rt)
    ingest_waves(rt)
    monkeypatch.setenv("BAOCAO_DATA_DIR", str(data))
    return rt, config


def _publish_in_background(config, result: dict) -> threading.Thread:
    from flows.publish_report import publish_report

    def run():
        result["out"] = publish_report(
            period="2022-Q1",
            report_date="2022-04-05",
            as_of="2022-04-05T09:00",
            config_dir=str(config),
        )

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _answer_when_paused(run_input: dict, timeout: float = 90) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateName,
    )

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            paused = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(name=FlowRunFilterStateName(any_=["Paused"]))
                )
            )
            if paused:
                client.resume_flow_run(paused[0].id, run_input=run_input)
                return
            time.sleep(0.5)
    raise AssertionError("the publish run never paused for approval")


def test_approved_report_is_dispatched_and_decision_stored(approval_setup, tmp_path, monkeypatch):
    rt, config = approval_setup
    with MailCatcher(tmp_path / "mail") as mail:
        monkeypatch.setenv("BAOCAO_MAIL_URL", mail.mail_url)
        result: dict = {}
        thread = _publish_in_background(config, result)
        _answer_when_paused(
            {"decision": "approve", "decided_by": "Nguyễn Ngọc Trân", "comment": "Đồng ý"}
        )
        thread.join(120)
        assert result["out"]["status"] == "approved" and result["out"]["sent"] == 6
        assert len(mail.received) == 6
    with session_scope(rt.engine) as s:
        [row] = s.query(RenderedReport).all()
        assert (row.status, row.decided_by, row.comment) == (
            "approved",
            "Nguyễn Ngọc Trân",
            "Đồng ý",
        )
        assert row.decided_at is not None


def test_sent_back_keeps_the_draft_and_sends_nothing(approval_setup, tmp_path, monkeypatch):
    rt, config = approval_setup
    with MailCatcher(tmp_path / "mail") as mail:
        monkeypatch.setenv("BAOCAO_MAIL_URL", mail.mail_url)
        result: dict = {}
        thread = _publish_in_background(config, result)
        _answer_when_paused(
            {"decision": "send_back", "decided_by": "Văn phòng", "comment": "Sửa mục II.5"}
        )
        thread.join(120)
        assert result["out"]["status"] == "sent_back" and result["out"]["sent"] == 0
        assert mail.received == []
    with session_scope(rt.engine) as s:
        [row] = s.query(RenderedReport).all()
        assert (row.status, row.comment) == ("sent_back", "Sửa mục II.5")
    assert (rt.settings.reports_dir / "cchc-quarterly" / "2022-Q1" / "v1" / "report.docx").is_file()


def test_no_decision_in_time_keeps_the_draft(approval_setup, tmp_path, monkeypatch):
    rt, config = approval_setup
    path = config / "schedule.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "approval_timeout_hours: 72", "approval_timeout_hours: 0.001"
        ),
        encoding="utf-8",
    )
    from flows.publish_report import publish_report

    with MailCatcher(tmp_path / "mail") as mail:
        monkeypatch.setenv("BAOCAO_MAIL_URL", mail.mail_url)
        out = publish_report(
            period="2022-Q1",
            report_date="2022-04-05",
            as_of="2022-04-05T09:00",
            config_dir=str(config),
        )
        assert out["status"] == "timed_out" and out["sent"] == 0 and mail.received == []
    with session_scope(rt.engine) as s:
        [row] = s.query(RenderedReport).all()
        assert row.status == "timed_out" and row.decided_by is None


def test_approved_from_the_command_line_is_sent_without_a_pause(
    approval_setup, tmp_path, monkeypatch
):
    import datetime as dt

    from typer.testing import CliRunner

    from baocao.cli import app
    from flows.publish_report import publish_report
    from tasks.consolidate import consolidate_period
    from tasks.publish import render_version

    rt, config = approval_setup
    render_version(
        rt,
        consolidate_period(rt, PERIOD),
        dt.date(2022, 4, 5),
        dt.datetime(2022, 4, 5, 2, tzinfo=dt.UTC),
    )
    result = CliRunner().invoke(
        app, ["approve", "2022-Q1", "--by", "Nguyễn Ngọc Trân", "--config", str(config)]
    )
    assert result.exit_code == 0 and "approved by Nguyễn Ngọc Trân" in result.output
    with MailCatcher(tmp_path / "mail") as mail:
        monkeypatch.setenv("BAOCAO_MAIL_URL", mail.mail_url)
        out = publish_report(
            period="2022-Q1",
            report_date="2022-04-05",
            as_of="2022-04-05T09:00",
            config_dir=str(config),
        )
        assert out["status"] == "approved" and out["sent"] == 6 and len(mail.received) == 6


def test_without_a_ui_the_draft_waits_for_baocao_approve(approval_setup, tmp_path, monkeypatch):
    import flows.publish_report as publish_module

    rt, config = approval_setup
    monkeypatch.setattr(
        publish_module, "can_pause", lambda: False
    )  # as on Prefect's temporary server
    with MailCatcher(tmp_path / "mail") as mail:
        monkeypatch.setenv("BAOCAO_MAIL_URL", mail.mail_url)
        out = publish_module.publish_report(
            period="2022-Q1", as_of="2022-04-05T09:00", config_dir=str(config)
        )
        assert out["status"] == "draft" and out["sent"] == 0 and mail.received == []
