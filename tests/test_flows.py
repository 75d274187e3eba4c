"""The flows under a real Prefect API (the session's test harness): the demo cycle end to
end, messages through a real SMTP server on loopback, reruns that send nothing new."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest
import yaml
from docx import Document as DocxDocument
from prefect import Flow

from baocao.mailcatcher import MailCatcher
from baocao.settings import PROJECT_ROOT

STEM = "BC-CCHC-Quy-I-2022-UBND-huyen-Son-Tay"  # the report, the period, the body
MD, HTML, DOCX, XLSX = f"{STEM}.md", f"{STEM}.html", f"{STEM}.docx", f"{STEM}-Phu-luc.xlsx"
STATUS = "Tinh-hinh-nop-CCHC-Quy-I-2022.xlsx"  # the office's own, never sent
SENT_HTML, SENT_DOCX, SENT_XLSX = (  # what went out: stamped with the decision's number
    f"{STEM}-so-25.html",
    f"{STEM}-so-25.docx",
    f"{STEM}-Phu-luc-so-25.xlsx",
)

TCD = "BC-TCD-thang-3-2022-UBND-huyen-Son-Tay"  # the monthly report of the same weeks
TCD_SENT = (f"{TCD}.md", f"{TCD}-so-18.html", f"{TCD}-so-18.docx", f"{TCD}-Phu-luc-so-18.xlsx")
TCD_STATUS = "Tinh-hinh-nop-TCD-thang-3-2022.xlsx"

pytestmark = pytest.mark.slow


def test_every_prefect_yaml_entrypoint_is_a_flow():
    spec = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    assert len(spec["deployments"]) >= 5
    for dep in spec["deployments"]:
        path, name = dep["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        assert isinstance(getattr(module, name), Flow), dep["entrypoint"]


@pytest.fixture(scope="module")
def demo_run(prefect_harness, tmp_path_factory):
    """The README's demo, run once into a temporary folder."""
    from app.demo import run_demo

    mp = pytest.MonkeyPatch()
    for key in ("BAOCAO_DATA_DIR", "BAOCAO_MAIL_URL"):  # run_demo sets these; restore after
        mp.setenv(key, "unset")
    out = tmp_path_factory.mktemp("demo")
    result = run_demo(out)
    yield result
    mp.undo()


def test_demo_writes_every_output(demo_run):
    out = demo_run["out"]
    sent = (MD, SENT_HTML, SENT_DOCX, SENT_XLSX, STATUS, *TCD_SENT, TCD_STATUS)
    assert sorted(f.name for f in demo_run["files"]) == sorted(sent)
    for name in sent:
        assert (out / name).stat().st_size > 1000, name
    md = (out / MD).read_text(encoding="utf-8")
    for figure in (
        "tiếp nhận 145 hồ sơ",
        "112.108 triệu đồng, đạt 43,5%",
        "12.746/58.708 triệu đồng, đạt 21,7%",
        "đã giải ngân 2.266,020 triệu đồng, đạt 3,5%",
        "11/11 nhiệm vụ",
        "22 đơn vị",
    ):
        assert figure in md
    text = "\n".join(p.text for p in DocxDocument(str(out / SENT_DOCX)).paragraphs)
    assert "40.898 triệu đồng" in text and "5.791 triệu đồng" in text  # the corrected TCKH version


def test_demo_shows_the_draft_waiting_the_decision_and_the_numbered_dispatch(demo_run):
    """The draft waits with nothing sent; the chairman's code comes by mail and his decision
    gives the number; the second publish sends the report carrying that number."""
    published = demo_run["published"]
    draft = published["draft"]
    assert (draft["status"], draft["sent"], draft["version"]) == ("draft", 0, 1)
    assert "quá hạn báo cáo" in draft["late"]  # dated 05/04, the deadline was 18/03
    assert "approved bởi Nguyễn Ngọc Trân, số 25/BC-UBND ngày 05/04/2022" in published["decision"]
    assert (published["status"], published["number"], published["sent"]) == ("approved", "25", 6)
    mails = _mails(demo_run["mail"])
    subjects = [str(m["Subject"]) for m in mails]
    codes = [i for i, s in enumerate(subjects) if "Mã duyệt báo cáo" in s]
    reports = [i for i, s in enumerate(subjects) if "Báo cáo số 25/BC-UBND về" in s]
    assert (
        len(codes) == 2 + 2 and len(reports) == 6
    )  # codes: both reports' two approvers and max(codes) < min(reports)
    header = [
        c.text
        for r in DocxDocument(str(demo_run["out"] / SENT_DOCX)).tables[0].rows
        for c in r.cells
    ]
    assert "Số: 25/BC-UBND" in header and "Sơn Tây, ngày 05 tháng 4 năm 2022" in header
    assert "Số: 25/BC-UBND" in (demo_run["out"] / SENT_HTML).read_text(encoding="utf-8")


def test_demo_publishes_and_numbers_both_reports(demo_run):
    """The monthly report of the same weeks: approved by the vice-chairman with its own
    number, sent to its own recipients; the communes late on both got one reminder each."""
    tcd = demo_run["reports"]["tcd-monthly"]
    assert (tcd["status"], tcd["number"], tcd["sent"]) == ("approved", "18", 5)
    assert "thiếu" not in tcd["completeness"] and tcd["completeness"].startswith("10/10")
    assert demo_run["reports"]["cchc-quarterly"]["number"] == "25"
    md = (demo_run["out"] / f"{TCD}.md").read_text(encoding="utf-8")
    assert "toàn huyện đã tiếp 33 lượt với 42 người" in md
    both = demo_run["combined_reminders"]
    assert both["2022-03-15T08:00"] == ["SON-MUA", "SON-TAN", "SON-TINH"]
    mails = _mails(demo_run["mail"])
    combined = [m for m in mails if "Nhắc: 2 báo cáo chưa gửi" in str(m["Subject"])]
    assert {str(m["To"]) for m in combined} == {
        "xasonmua@sontay.quangngai.gov.vn",
        "xasontan@sontay.quangngai.gov.vn",
        "xasontinh@sontay.quangngai.gov.vn",
    }
    reports = [m for m in mails if "Báo cáo số 18/BC-UBND về" in str(m["Subject"])]
    assert "thanhtra@quangngai.gov.vn" in {str(m["To"]) for m in reports} and len(reports) == 5


def test_one_unit_replies_by_mail(demo_run):
    from baocao.imapserver import dovecot_binary

    if dovecot_binary() is None and not os.environ.get("CI"):
        pytest.skip("dovecot is not installed: the demo took SON-TINH's reply from the folder")
    assert demo_run["by_mail"] == [
        "SON-TINH_2022-Q1.xlsx (xasontinh@sontay.quangngai.gov.vn): accepted"
    ]


def _mails(folder: Path):
    import email
    import email.policy

    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in sorted(folder.glob("*.eml"))
    ]


def test_messages_really_travel(demo_run):
    mails = _mails(demo_run["mail"])
    kinds = ("request", "rejection", "receipt", "report", "tcd-report", "reminder", "approval")
    by_kind = {k: [] for k in kinds}
    for m in mails:
        subject = str(m["Subject"])
        kind = (
            "rejection"
            if "chưa hợp lệ" in subject
            else "receipt"
            if "] Đã nhận báo cáo" in subject
            else "approval"
            if "] Mã duyệt báo cáo" in subject
            else "report"
            if "] Báo cáo số 25/BC-UBND về Kết quả" in subject
            else "tcd-report"
            if "] Báo cáo số 18/BC-UBND về" in subject
            else "request"
            if "Đề nghị báo cáo" in subject
            else "reminder"
        )
        by_kind[kind].append(m)
    assert len(by_kind["request"]) == 14 + 10  # the CCHC report's, then tcd-monthly's
    for m in by_kind["request"]:
        names = [a.get_filename() for a in m.iter_attachments()]
        assert len(names) == 1 and names[0].endswith(("_2022-Q1.xlsx", "_2022-03.xlsx"))
    for m in mails:  # every message reads as lines in a plain-text viewer, in Vietnamese
        text = m.get_body(("plain",)).get_content()
        assert len(text.splitlines()) >= 8 and text.startswith("Kính gửi: ")
        assert "Nguyễn Thị Thu Hà" in text and "0255 3863 125" in text  # the person to ask
        assert "<p>" in m.get_body(("html",)).get_content()
    [rejection] = by_kind["rejection"]
    assert str(rejection["To"]) == "phongtckh@sontay.quangngai.gov.vn"
    body = rejection.get_body(preferencelist=("plain", "html")).get_content()
    assert (
        "1. Ô E12, Tổng chi ngân sách Nhà nước: 40.898, nhưng Chi ngân sách huyện + "
        "Chi ngân sách xã = 35.107 + 5.719 = 40.826"
    ) in body
    assert "tc_tong_chi" not in body and "BaoCao!" not in body
    assert len(by_kind["receipt"]) == 14 + 10  # one per valid version, of both reports
    recipients = {str(m["To"]) for m in by_kind["report"]}
    assert recipients == {
        "sonoivu@quangngai.gov.vn",
        "vanphong.huyenuy@sontay.quangngai.gov.vn",
        "thuongtruc.hdnd@sontay.quangngai.gov.vn",
        "lanhdao.ubnd@sontay.quangngai.gov.vn",
        "phongnoivu@sontay.quangngai.gov.vn",
        "vanphong@sontay.quangngai.gov.vn",
    }
    for m in by_kind["report"]:
        attached = {a.get_filename(): a.get_payload(decode=True) for a in m.iter_attachments()}
        assert attached[SENT_DOCX] == (demo_run["out"] / SENT_DOCX).read_bytes()
        assert set(attached) == {SENT_DOCX, SENT_XLSX}  # the status workbook stays home
    assert by_kind["reminder"], "the late units were reminded"
    assert not any(
        "TCKH" in str(m["Subject"]) and "Sơn Tân" in str(m["Subject"]) for m in by_kind["reminder"]
    )


def test_second_publish_sends_nothing_new(demo_run, tmp_path, monkeypatch):
    from flows.publish_report import publish_report

    monkeypatch.setenv("BAOCAO_DATA_DIR", str(demo_run["out"] / "data"))
    with MailCatcher(tmp_path / "mail") as mail:
        monkeypatch.setenv("BAOCAO_MAIL_URL", mail.mail_url)
        again = publish_report(
            report="cchc-quarterly",
            period="2022-Q1",
            report_date="2022-04-06",
            as_of="2022-04-06T09:00",
        )
        assert again["new_version"] is False and again["queued"] == 0 and again["sent"] == 0
        assert mail.received == []
        forced = publish_report(
            report="cchc-quarterly", period="2022-Q1", force=True, as_of="2022-04-06T10:00"
        )
        assert forced["queued"] == 6 and forced["sent"] == 6
        assert len(mail.received) == 6


def test_rerun_of_open_period_sends_nothing(demo_run, tmp_path, monkeypatch):
    from flows.open_period import open_period

    monkeypatch.setenv("BAOCAO_DATA_DIR", str(demo_run["out"] / "data"))
    with MailCatcher(tmp_path / "mail") as mail:
        monkeypatch.setenv("BAOCAO_MAIL_URL", mail.mail_url)
        r = open_period(report="cchc-quarterly", period="2022-Q1", as_of="2022-03-08T08:00")
        assert r["new_requests"] == 0 and r["queued_messages"] == 0 and mail.received == []
        assert r["facts"] == ""  # the period's facts file is complete: no warning
        one = open_period(
            report="cchc-quarterly",
            period="2022-Q1",
            units=["TP"],
            force=True,
            as_of="2022-03-08T09:00",
        )
        assert one["queued_messages"] == 1 and [m.rcpt for m in mail.received] == [
            ["phongtuphap@sontay.quangngai.gov.vn"]
        ]


def test_publish_refuses_without_the_periods_facts_and_sends_nothing(
    demo_run, tmp_path, monkeypatch
):
    from baocao.config import ConfigError
    from flows.publish_report import publish_report
    from tests.conftest import edited_config

    facts = "facts/cchc-quarterly/2022-Q1.yaml"
    config = edited_config(tmp_path / "config", facts, "dot_kiem_tra:", "# dot_kiem_tra:")
    monkeypatch.setenv("BAOCAO_DATA_DIR", str(demo_run["out"] / "data"))
    monkeypatch.setenv("BAOCAO_ALLOWED_CONFIG_DIRS", str(tmp_path))
    with MailCatcher(tmp_path / "mail") as mail:
        monkeypatch.setenv("BAOCAO_MAIL_URL", mail.mail_url)
        with pytest.raises(ConfigError, match=r"2022-Q1\.yaml: key `dot_kiem_tra`: chưa có"):
            publish_report(
                report="cchc-quarterly",
                period="2022-Q1",
                force=True,
                config_dir=str(config),
                as_of="2022-04-06T11:00",
            )
        assert mail.received == []


def test_bad_parameters_fail_with_a_clear_message(prefect_harness):
    from flows.open_period import open_period

    with pytest.raises(ValueError, match="2022-Q5"):
        open_period(report="cchc-quarterly", period="2022-Q5")
    with pytest.raises(ValueError, match="NOPE"):
        open_period(
            report="cchc-quarterly", period="2022-Q1", units=["NOPE"], as_of="2022-03-07T08:00"
        )


def test_one_stage_rerun_does_only_that(demo_run, tmp_path, monkeypatch):
    from flows.reporting_cycle import reporting_cycle

    monkeypatch.setenv("BAOCAO_DATA_DIR", str(demo_run["out"] / "data"))
    with MailCatcher(tmp_path / "mail") as mail:
        monkeypatch.setenv("BAOCAO_MAIL_URL", mail.mail_url)
        out = reporting_cycle(
            report="cchc-quarterly",
            period="2022-Q1",
            stage="remind",
            units=["NV"],
            force=True,
            as_of="2022-04-06T09:00",
        )
        assert list(out) == ["reminders"]
        assert out["reminders"]["queued"] == 0  # NV has a valid version: never reminded
        out = reporting_cycle(
            report="cchc-quarterly", period="2022-Q1", stage="publish", as_of="2022-04-06T09:00"
        )
        assert list(out) == ["publish"]
        assert out["publish"]["cchc-quarterly"]["new_version"] is False
        assert mail.received == []


def test_the_report_artifact_shows_the_real_status_and_the_files(demo_run):
    """Before: the artifact said "draft" for a report that had been sent."""
    from prefect.artifacts import Artifact

    key = "report-cchc-quarterly-2022-q1"  # written again at the end of the last publish
    artifact = Artifact.get(key)
    assert artifact is not None, key
    text = artifact.data
    assert "**Tình trạng / status:** đã gửi / sent (6/6)" in text
    assert "**Số / number:** 25/BC-UBND ngày 05/04/2022" in text
    assert f"`{SENT_DOCX}`" in text and f"`{SENT_XLSX}`" in text
    assert "draft" not in artifact.description and "đã gửi" in artifact.description
