"""Approval before dispatch, answered through the same API the Prefect UI uses (the
session's real Prefect API server); each approver gets a one-time code by mail, a decision
counts only with it, and it is stored in baocao's own database."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time

import pytest
from docx import Document as DocxDocument

from baocao.db import session_scope
from baocao.mailcatcher import MailCatcher
from baocao.models import RenderedReport
from baocao.runtime import build_runtime
from baocao.settings import get_settings
from tests.conftest import APPROVAL_ON, edited_config, ingest_waves, open_example

pytestmark = pytest.mark.slow


@pytest.fixture
def approval_setup(tmp_path, monkeypatch, prefect_harness):
    config = edited_config(tmp_path / "config", *APPROVAL_ON)
    data = tmp_path / "data"
    rt = build_runtime(
        report_id="cchc-quarterly", settings=get_settings(data_dir=data, config_dir=config)
    )
    open_example(rt)
    ingest_waves(rt)
    monkeypatch.setenv("BAOCAO_DATA_DIR", str(data))
    return rt, config


def _publish_in_background(config, result: dict) -> threading.Thread:
    from flows.publish_report import publish_report

    def run():
        result["out"] = publish_report(
            report="cchc-quarterly",
            period="2022-Q1",
            report_date="2022-04-05",
            as_of="2022-04-05T09:00",
            config_dir=str(config),
        )

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _code(mail: MailCatcher, approver_address: str) -> str:
    """The one-time code in the newest approval message the approver received."""
    for m in reversed(mail.received):
        if m.rcpt == [approver_address] and "Mã duyệt" in m.subject:
            return re.search(r"ông/bà:\D{0,40}?(\d{6,8})", m.text()).group(1)
    raise AssertionError(f"no approval code reached {approver_address}")


CHU_TICH = "chutich@sontay.quangngai.gov.vn"
CHANH_VP = "chanhvanphong@sontay.quangngai.gov.vn"
DOCX = "BC-CCHC-Quy-I-2022-UBND-huyen-Son-Tay.docx"


def _reports(mail: MailCatcher) -> list:
    return [m for m in mail.received if "Mã duyệt" not in m.subject]


def _answer_when_paused(run_input, timeout: float = 90) -> None:
    """Resume the paused run with `run_input` (a dict, or a function called once the run
    has paused, e.g. to read the code that was mailed before the pause)."""
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
                answer = run_input() if callable(run_input) else run_input
                client.resume_flow_run(paused[0].id, run_input=answer)
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
            lambda: {
                "approver": "chu-tich",
                "code": _code(mail, CHU_TICH),
                "decision": "approve",
                "comment": "Đồng ý",
                "number": "25/BC-UBND",
                "signed_on": "2022-04-05",
            }
        )
        thread.join(120)
        assert result["out"]["status"] == "approved" and result["out"]["sent"] == 6
        assert result["out"]["number"] == "25"
        assert len(_reports(mail)) == 6
        sent = _reports(mail)[0]
        assert "Báo cáo số 25/BC-UBND" in sent.subject
        docx = tmp_path / "sent.docx"
        docx.write_bytes(sent.attachments()["BC-CCHC-Quy-I-2022-UBND-huyen-Son-Tay-so-25.docx"])
        header = [c.text for r in DocxDocument(str(docx)).tables[0].rows for c in r.cells]
        assert "Số: 25/BC-UBND" in header and "Sơn Tây, ngày 05 tháng 4 năm 2022" in header
        assert sorted(m.rcpt[0] for m in mail.received if m not in _reports(mail)) == [
            CHANH_VP,
            CHU_TICH,
        ]
    with session_scope(rt.engine) as s:
        [row] = s.query(RenderedReport).all()
        assert (row.status, row.decided_by, row.comment) == (
            "approved",
            "Nguyễn Ngọc Trân",
            "Đồng ý",
        )
        assert row.decided_at is not None
        assert (row.number, row.signed_on) == ("25", dt.date(2022, 4, 5))


def test_sent_back_keeps_the_draft_and_sends_nothing(approval_setup, tmp_path, monkeypatch):
    rt, config = approval_setup
    with MailCatcher(tmp_path / "mail") as mail:
        monkeypatch.setenv("BAOCAO_MAIL_URL", mail.mail_url)
        result: dict = {}
        thread = _publish_in_background(config, result)
        _answer_when_paused(
            lambda: {
                "approver": "chanh-van-phong",
                "code": _code(mail, CHANH_VP),
                "decision": "send_back",
                "comment": "Sửa mục II.5",
            }
        )
        thread.join(120)
        assert result["out"]["status"] == "sent_back" and result["out"]["sent"] == 0
        assert _reports(mail) == []
    with session_scope(rt.engine) as s:
        [row] = s.query(RenderedReport).all()
        assert (row.status, row.comment) == ("sent_back", "Sửa mục II.5")
    assert (rt.settings.reports_dir / "cchc-quarterly" / "2022-Q1" / "v1" / DOCX).is_file()


def test_a_wrong_code_is_asked_again_and_three_keep_the_draft(
    approval_setup, tmp_path, monkeypatch
):
    """Knowing the API is not enough: a resume with a made-up code or name does not approve;
    the run asks again, and after three tries the draft stays and nothing is sent."""
    rt, config = approval_setup
    with MailCatcher(tmp_path / "mail") as mail:
        monkeypatch.setenv("BAOCAO_MAIL_URL", mail.mail_url)
        result: dict = {}
        thread = _publish_in_background(config, result)
        for answer in (
            {"approver": "chu-tich", "code": "000000", "decision": "approve", "number": "25"},
            {"approver": "Nguyễn Ngọc Trân", "code": "123456", "decision": "approve"},
            {"approver": "chu-tich", "code": "999999", "decision": "approve", "number": "25"},
        ):
            _answer_when_paused(answer)
        thread.join(120)
        assert result["out"]["status"] == "draft" and result["out"]["sent"] == 0
        assert _reports(mail) == []
    with session_scope(rt.engine) as s:
        [row] = s.query(RenderedReport).all()
        assert (row.status, row.decided_by) == ("draft", None)


def test_a_right_code_after_a_wrong_one_approves(approval_setup, tmp_path, monkeypatch):
    rt, config = approval_setup
    with MailCatcher(tmp_path / "mail") as mail:
        monkeypatch.setenv("BAOCAO_MAIL_URL", mail.mail_url)
        result: dict = {}
        thread = _publish_in_background(config, result)
        _answer_when_paused(
            lambda: {
                "approver": "chu-tich",
                "code": _code(mail, CHANH_VP),  # someone else's code is not mine
                "decision": "approve",
                "number": "25",
            }
        )
        _answer_when_paused(
            lambda: {
                "approver": "chu-tich",
                "code": _code(mail, CHU_TICH),
                "decision": "approve",
                "number": "25",
            }
        )
        thread.join(120)
        assert result["out"]["status"] == "approved" and len(_reports(mail)) == 6
    with session_scope(rt.engine) as s:
        [row] = s.query(RenderedReport).all()
        assert (row.status, row.decided_by) == ("approved", "Nguyễn Ngọc Trân")


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
            report="cchc-quarterly",
            period="2022-Q1",
            report_date="2022-04-05",
            as_of="2022-04-05T09:00",
            config_dir=str(config),
        )
        assert out["status"] == "timed_out" and out["sent"] == 0 and _reports(mail) == []
    with session_scope(rt.engine) as s:
        [row] = s.query(RenderedReport).all()
        assert row.status == "timed_out" and row.decided_by is None


def test_without_a_ui_the_code_comes_by_mail_and_baocao_approve_uses_it(
    approval_setup, tmp_path, monkeypatch
):
    from typer.testing import CliRunner

    import flows.publish_report as publish_module
    from app.cli import app

    rt, config = approval_setup
    monkeypatch.setattr(publish_module, "can_pause", lambda: False)  # Prefect's temporary server
    with MailCatcher(tmp_path / "mail") as mail:
        monkeypatch.setenv("BAOCAO_MAIL_URL", mail.mail_url)

        def publish():
            return publish_module.publish_report(
                report="cchc-quarterly",
                period="2022-Q1",
                report_date="2022-04-05",
                as_of="2022-04-05T09:00",
                config_dir=str(config),
            )

        out = publish()
        assert out["status"] == "draft" and out["sent"] == 0 and _reports(mail) == []
        assert sorted(m.rcpt[0] for m in mail.received) == [CHANH_VP, CHU_TICH]
        cli = ["approve", "2022-Q1", "-r", "cchc-quarterly", "--by", "chu-tich", "--number", "25"]
        cli += ["--date", "2022-04-05"]
        cli += ["--config", str(config), "--code"]
        refused = CliRunner().invoke(app, [*cli, "12345678"])
        assert refused.exit_code == 2 and "mã không đúng" in refused.output
        assert publish()["sent"] == 0  # still a draft; the codes sent before still hold
        assert len(mail.received) == 2
        result = CliRunner().invoke(app, [*cli, _code(mail, CHU_TICH)])
        assert result.exit_code == 0 and "approved by Nguyễn Ngọc Trân" in result.output
        out = publish()
        assert out["status"] == "approved" and out["sent"] == 6 and len(_reports(mail)) == 6
        assert out["number"] == "25" and out["signed_on"] == dt.date(2022, 4, 5)
        assert "BC-CCHC-Quy-I-2022-UBND-huyen-Son-Tay-so-25.docx" in _reports(mail)[0].attachments()
