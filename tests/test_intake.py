"""Intake of the example's returned files into a temporary SQLite store and archive."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from types import SimpleNamespace

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from baocao.db import session_scope
from baocao.models import Finding, OutboxMessage, Receipt, ReportingPeriod, Submission
from baocao.periods import Period, parse_moment
from baocao.settings import PROJECT_ROOT
from tasks.collect import open_period
from tasks.inbox import claim_inbox, finish_claim
from tasks.intake import Arrival, ingest_arrivals, ingest_files
from tests.conftest import (
    MANIFEST,
    PERIOD,
    concurrent_intake,
    ingest_waves,
    make_runtime,
    open_example,
    request_tokens,
    returned,
)

LATER = parse_moment("2022-03-15T08:00")
ALL_FILES = [name for wave in MANIFEST["arrivals"] for name in wave["files"]]


@pytest.fixture(scope="module")
def intake(tmp_path_factory):
    """The example opened twice and taken in; tests here may add receipts, not versions."""
    rt = make_runtime(tmp_path_factory.mktemp("intake") / "data")
    opened = [open_example(rt), open_example(rt)]
    results = ingest_waves(rt)
    return SimpleNamespace(rt=rt, opened=opened, results=results)


def by_file(results, name):
    return [r for r in results if r.file == name]


def receipts(rt, name) -> list[Receipt]:
    with session_scope(rt.engine) as s:
        return list(s.exec(select(Receipt).where(Receipt.original_name == name)))


def submissions(rt, unit) -> list[Submission]:
    with session_scope(rt.engine) as s:
        stmt = select(Submission).where(Submission.unit_code == unit).order_by(Submission.version)
        return list(s.exec(stmt))


def archived_path(rt, content: bytes, suffix: str):
    sha = hashlib.sha256(content).hexdigest()
    return rt.settings.archive_dir / sha[:2] / f"{sha}{suffix}"


# ---- the example's waves ----------------------------------------------------------------


def test_every_unit_has_a_result(intake):
    assert len(intake.results) == len(ALL_FILES) + 1  # the CSV carries two units
    assert {r.unit for r in intake.results} == set(intake.rt.cfg.expected_units(intake.rt.report))
    assert {r.period for r in intake.results} == {"2022-Q1"}


def test_tckh_v1_rejected_v2_accepted(intake):
    [v1] = by_file(intake.results, "TCKH_2022-Q1.xlsx")
    [v2] = by_file(intake.results, "TCKH_2022-Q1_sua.xlsx")
    assert (v1.outcome, v1.unit, v1.version, v1.errors) == ("rejected", "TCKH", 1, 1)
    assert (v2.outcome, v2.unit, v2.version, v2.errors) == ("accepted", "TCKH", 2, 0)
    subs = submissions(intake.rt, "TCKH")
    assert [(s.version, s.status) for s in subs] == [(1, "rejected"), (2, "valid")]
    with session_scope(intake.rt.engine) as s:
        findings = list(s.exec(select(Finding).where(Finding.submission_id == subs[0].id)))
    assert [(f.rule, f.severity, f.indicator) for f in findings] == [
        ("tc_tong_chi", "error", "tc_chi_nsnn")
    ]
    assert "40.826" in findings[0].message_vi
    assert receipts(intake.rt, "TCKH_2022-Q1.xlsx")[0].outcome == "rejected"


def test_son_mua_is_late_and_the_others_are_not(intake):
    late = {r.unit for r in intake.results if r.late}
    assert late == {"SON-MUA"}
    [sub] = submissions(intake.rt, "SON-MUA")
    assert sub.late is True and sub.status == "valid"


def test_csv_yields_two_submissions(intake):
    results = by_file(intake.results, "communes_2022-Q1.csv")
    assert sorted((r.unit, r.outcome, r.version) for r in results) == [
        ("SON-LONG", "accepted", 1),
        ("SON-MAU", "accepted", 1),
    ]
    [receipt] = receipts(intake.rt, "communes_2022-Q1.csv")
    [long_] = submissions(intake.rt, "SON-LONG")
    [mau] = submissions(intake.rt, "SON-MAU")
    assert long_.receipt_id == mau.receipt_id == receipt.id


def test_renamed_file_identified_by_its_hidden_sheet(intake):
    [r] = by_file(intake.results, "xa-son-lien-quy1.xlsx")
    assert (r.unit, r.period, r.outcome) == ("SON-LIEN", "2022-Q1", "accepted")
    [receipt] = receipts(intake.rt, "xa-son-lien-quy1.xlsx")
    assert receipt.unit_code == "SON-LIEN" and receipt.period_code == "2022-Q1"


@pytest.mark.parametrize("name", ALL_FILES)
def test_every_file_is_archived_byte_for_byte(intake, name):
    sent = intake.rt.settings.data_dir.parent / "returned" / name  # as the unit sent it
    content = sent.read_bytes()
    target = archived_path(intake.rt, content, sent.suffix.lower())
    assert target.parent.parent == intake.rt.settings.data_dir / "archive"
    assert target.read_bytes() == content
    [receipt] = receipts(intake.rt, name)
    assert receipt.sha256 == target.stem
    assert receipt.archive_path == str(target)
    assert receipt.size == len(content)


# ---- files that go wrong ----------------------------------------------------------------


def test_unreadable_file_is_archived_and_recorded(intake, tmp_path):
    content = os.urandom(4096)
    path = tmp_path / "hong.xlsx"
    path.write_bytes(content)
    [r] = ingest_files(intake.rt, [path], now=LATER)
    assert r.outcome == "unreadable"
    assert "hong.xlsx" in r.message
    target = archived_path(intake.rt, content, ".xlsx")
    assert target.read_bytes() == content
    [receipt] = receipts(intake.rt, "hong.xlsx")
    assert receipt.outcome == "unreadable"
    assert receipt.archive_path == str(target)
    assert "hong.xlsx" in receipt.message and target.name not in receipt.message


def test_same_file_again_is_a_duplicate(intake, tmp_path):
    before = submissions(intake.rt, "NV")
    again = tmp_path / "NV lan 2.xlsx"
    [first] = returned(intake.rt, ["NV_2022-Q1.xlsx"])
    again.write_bytes(first.read_bytes())
    results = ingest_files(intake.rt, [first, again], now=LATER)
    # the same file given again is the same arrival (its earlier result); a copy is a duplicate
    assert [r.outcome for r in results] == ["accepted", "duplicate"]
    assert len(receipts(intake.rt, first.name)) == 1
    assert submissions(intake.rt, "NV") == before
    assert len(before) == 1
    assert [r.outcome for r in receipts(intake.rt, "NV lan 2.xlsx")] == ["duplicate"]


def test_rejected_file_again_is_a_duplicate(intake):
    [sent] = returned(intake.rt, ["TCKH_2022-Q1.xlsx"])
    copy = sent.parent / "TCKH lan nua.xlsx"
    copy.write_bytes(sent.read_bytes())
    [r] = ingest_files(intake.rt, [copy], now=LATER)
    assert r.outcome == "duplicate"
    assert len(submissions(intake.rt, "TCKH")) == 2


def test_unknown_unit_code_is_unidentified(intake, tmp_path):
    path = tmp_path / "ZZZ_2022-Q1.csv"
    path.write_text(
        "don_vi,ky_bao_cao,ma_chi_tieu,gia_tri\nZZZ,2022-Q1,tthc_tiep_nhan,3\n", encoding="utf-8"
    )
    [r] = ingest_files(intake.rt, [path], now=LATER)
    assert r.outcome == "unidentified"
    assert "'ZZZ'" in r.message
    [receipt] = receipts(intake.rt, "ZZZ_2022-Q1.csv")
    assert receipt.outcome == "unidentified"
    assert submissions(intake.rt, "ZZZ") == []


def test_wrong_period_kind_is_unidentified(intake, tmp_path):
    path = tmp_path / "nam.csv"
    path.write_text(
        "don_vi,ky_bao_cao,ma_chi_tieu,gia_tri\nNV,2022,nv_vi_pham,0\n", encoding="utf-8"
    )
    [r] = ingest_files(intake.rt, [path], now=LATER)
    assert r.outcome == "unidentified" and "2022" in r.message


def test_unsupported_type_is_refused(intake, tmp_path):
    path = tmp_path / "NV_2022-Q1.pdf"
    path.write_bytes(b"%PDF-1.4")
    [r] = ingest_files(intake.rt, [path], now=LATER)
    assert r.outcome == "refused" and ".pdf" in r.message
    assert archived_path(intake.rt, b"%PDF-1.4", ".pdf").exists()


def test_rejection_message_in_outbox(intake):
    with session_scope(intake.rt.engine) as s:
        rows = list(s.exec(select(OutboxMessage).where(OutboxMessage.kind == "rejection")))
    assert len(rows) == 1
    [msg] = rows
    assert msg.unit_code == "TCKH" and msg.period_code == "2022-Q1"
    assert msg.address == "phongtckh@sontay.quangngai.gov.vn"
    assert "TCKH_2022-Q1.xlsx" in msg.body
    assert (
        "  1. Ô E12, Tổng chi ngân sách Nhà nước: 40.898, nhưng Chi ngân sách huyện + "
        "Chi ngân sách xã = 35.107 + 5.719 = 40.826\n"
    ) in msg.body
    for code in ("tc_tong_chi", "tc_chi_nsnn", "BaoCao!", "Rule", "Cell"):
        assert code not in msg.body and code not in msg.body_html
    assert "trước 24 giờ ngày 16/03/2022" in msg.body  # resubmit before the unit deadline
    assert "<table" in msg.body_html and "40.898" in msg.body_html
    assert "Quý I/2022" in msg.subject


def test_open_period_twice_queues_requests_once(intake):
    first, again = intake.opened
    assert (first["new_requests"], first["queued_messages"]) == (14, 14)
    assert (again["new_requests"], again["queued_messages"]) == (0, 0)
    assert first["unit_deadline"] == "2022-03-16"
    with session_scope(intake.rt.engine) as s:
        rows = list(s.exec(select(OutboxMessage).where(OutboxMessage.kind == "request")))
    assert len(rows) == 14
    assert len({r.unit_code for r in rows}) == 14
    forms = intake.rt.settings.forms_dir / "cchc-quarterly" / "2022-Q1"
    assert len(list(forms.glob("*.xlsx"))) == 14


def test_open_period_with_unknown_unit(intake):
    with pytest.raises(ValueError, match="NOPE"):
        open_period(intake.rt, period=Period.parse("2022-Q2"), units=["NV", "NOPE"], now=LATER)
    with session_scope(intake.rt.engine) as s:
        codes = set(s.exec(select(ReportingPeriod.code)))
    assert codes == {"2022-Q1"}  # nothing created for Q2


# ---- fresh stores -----------------------------------------------------------------------


def test_malformed_csv_does_not_stop_the_batch(tmp_path):
    rt = make_runtime(tmp_path / "data")
    open_example(rt)
    bad = tmp_path / "SON-DUNG_2022-Q1.csv"
    bad.write_bytes(
        b'don_vi,ky_bao_cao,ma_chi_tieu,gia_tri\nSON-DUNG,2022-Q1,tthc_pakn,"'
        + b"9" * 200_000
        + b'"\n'
    )
    results = ingest_files(rt, [bad, *returned(rt, ["MOTCUA_2022-Q1.xlsx"])], now=LATER)
    assert [(r.file, r.outcome) for r in results] == [
        ("SON-DUNG_2022-Q1.csv", "unreadable"),
        ("MOTCUA_2022-Q1.xlsx", "accepted"),
    ]


def test_issued_form_identified_by_token(tmp_path):
    """The token in the hidden sheet wins over whatever else the file says."""
    rt = make_runtime(tmp_path / "data")
    open_period(rt, period=PERIOD, units=["SON-DUNG"], now=parse_moment("2022-03-07T08:00"))
    issued = rt.settings.forms_dir / "cchc-quarterly" / "2022-Q1" / "SON-DUNG_2022-Q1.xlsx"
    wb = load_workbook(issued)
    ws, meta = wb["BaoCao"], wb["_baocao"]
    for row, value in zip(range(8, 12), (12, 11, 1, 0), strict=True):
        ws[f"E{row}"] = value
    for cells in meta.iter_rows():
        if cells[0].value == "unit_code":
            cells[1].value = "NV"  # edited by hand; the token still says SON-DUNG
    path = tmp_path / "NV_2022-Q1 (ban sua).xlsx"
    wb.save(path)
    [r] = ingest_files(rt, [path], now=parse_moment("2022-03-10T09:00"))
    assert (r.outcome, r.unit, r.period, r.version, r.late) == (
        "accepted",
        "SON-DUNG",
        "2022-Q1",
        1,
        False,
    )


# ---- the inbox folder: claims ----------------------------------------------------------


def test_inbox_files_move_to_processed_without_overwriting(tmp_path):
    rt = make_runtime(tmp_path / "data")
    open_example(rt)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    now = parse_moment("2022-03-11T10:15")
    [nv] = returned(rt, ["NV_2022-Q1.xlsx"])
    for expected in ("accepted", "duplicate"):
        (inbox / "NV_2022-Q1.xlsx").write_bytes(nv.read_bytes())
        os.utime(inbox / "NV_2022-Q1.xlsx", (0, 0))  # written long ago: settled
        claim = claim_inbox(inbox, settle_seconds=5, lease_seconds=60)
        assert not (inbox / "NV_2022-Q1.xlsx").exists()  # claimed: no other run sees it
        [result] = ingest_arrivals(rt, claim.arrivals, now=now)
        finish_claim(claim, [result], inbox, now)
        assert result.outcome == expected
    assert len(list((inbox / "processed").iterdir())) == 2
    assert not any((inbox / ".claims").iterdir())


def test_a_file_still_being_written_waits(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "NV_2022-Q1.xlsx").write_bytes(b"PK\x03\x04 half")
    claim = claim_inbox(inbox, settle_seconds=5, lease_seconds=60)
    assert claim.arrivals == [] and claim.waiting == ["NV_2022-Q1.xlsx"]
    assert (inbox / "NV_2022-Q1.xlsx").exists()


def test_a_live_claim_is_left_alone_and_a_dead_one_taken_over(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("a.xlsx", "b.xlsx"):
        (inbox / name).write_bytes(b"x")
        os.utime(inbox / name, (0, 0))
    first = claim_inbox(inbox, settle_seconds=0, lease_seconds=60)
    second = claim_inbox(inbox, settle_seconds=0, lease_seconds=60)
    assert len(first.arrivals) == 2 and second.arrivals == []  # the first run is alive
    lease = first.folder / ".lease"
    lease.write_text(json.dumps({"pid": 2**22 + 7, "host": socket.gethostname(), "expires": 1e12}))
    third = claim_inbox(inbox, settle_seconds=0, lease_seconds=60)  # its process is gone
    assert sorted(a.key for a in third.arrivals) == sorted(a.key for a in first.arrivals)


# ---- who may submit, for which period ---------------------------------------------------


def _csv(tmp_path, name, rows, token_col=False):
    path = tmp_path / name
    head = "don_vi,ky_bao_cao,ma_chi_tieu,gia_tri" + (",ma_bieu_mau" if token_col else "")
    path.write_text(head + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_a_unit_named_without_its_form_code_changes_nothing(intake, tmp_path):
    before = submissions(intake.rt, "MOTCUA")
    path = _csv(tmp_path, "MOTCUA_2022-Q1_gia.csv", ["MOTCUA,2022-Q1,tthc_tiep_nhan,999999"])
    [r] = ingest_files(intake.rt, [path], now=LATER)
    assert r.outcome == "unauthorized" and "MOTCUA" in r.message
    assert submissions(intake.rt, "MOTCUA") == before
    [receipt] = receipts(intake.rt, path.name)
    assert receipt.outcome == "unauthorized"


def test_a_wrong_or_other_units_code_is_refused_the_right_one_taken(tmp_path):
    rt = make_runtime(tmp_path / "data")
    open_example(rt)
    tokens = request_tokens(rt)
    rows = [
        "MOTCUA,2022-Q1,tthc_tiep_nhan,100,{t}",
        "MOTCUA,2022-Q1,tthc_da_giai_quyet,90,{t}",
        "MOTCUA,2022-Q1,tthc_dang_giai_quyet,10,{t}",
    ]
    stolen = _csv(tmp_path, "a.csv", [r.format(t=tokens["NV"]) for r in rows], token_col=True)
    [r] = ingest_files(rt, [stolen], now=LATER)
    assert r.outcome == "unauthorized"
    own = _csv(tmp_path, "b.csv", [r.format(t=tokens["MOTCUA"]) for r in rows], token_col=True)
    results = ingest_files(rt, [own], now=LATER)
    assert [(x.outcome, x.unit, x.version) for x in results] == [("accepted", "MOTCUA", 1)]
    [sub] = submissions(rt, "MOTCUA")
    assert sub.credential == "token"


def test_the_office_may_file_for_a_unit(tmp_path):
    rt = make_runtime(tmp_path / "data")
    open_example(rt)
    path = _csv(
        tmp_path,
        "qua-zalo.csv",
        [
            "MOTCUA,2022-Q1,tthc_tiep_nhan,100",
            "MOTCUA,2022-Q1,tthc_da_giai_quyet,90",
            "MOTCUA,2022-Q1,tthc_dang_giai_quyet,10",
        ],
    )
    [r] = ingest_files(rt, [path], now=LATER, unit="MOTCUA")
    assert (r.outcome, r.unit) == ("accepted", "MOTCUA")
    assert submissions(rt, "MOTCUA")[0].credential == "operator"


def test_a_registered_address_may_submit_for_its_unit_only(tmp_path):
    rt = make_runtime(tmp_path / "data")
    open_example(rt)
    path = _csv(
        tmp_path,
        "motcua.csv",
        [
            "MOTCUA,2022-Q1,tthc_tiep_nhan,100",
            "MOTCUA,2022-Q1,tthc_da_giai_quyet,90",
            "MOTCUA,2022-Q1,tthc_dang_giai_quyet,10",
        ],
    )
    key = f"mail:<m1@x>:{path.name}"
    other = Arrival(
        path, path.name, key, source="mail", sender="phongnoivu@sontay.quangngai.gov.vn"
    )
    [r] = ingest_arrivals(rt, [other], now=LATER)
    assert r.outcome == "unauthorized"
    own = Arrival(
        path, path.name, key + "2", source="mail", sender="MotCua@sontay.quangngai.gov.vn"
    )
    [r] = ingest_arrivals(rt, [own], now=LATER)
    assert (r.outcome, r.unit) == ("accepted", "MOTCUA")


@pytest.mark.parametrize("period", ["1900-Q1", "9999-Q4", "2022-Q2"])
def test_only_opened_periods_accept_submissions(intake, tmp_path, period):
    path = _csv(tmp_path, f"NV_{period}.csv", [f"NV,{period},nv_vi_pham,0"])
    [r] = ingest_files(intake.rt, [path], now=LATER, unit="NV")
    assert r.outcome in ("closed_period", "unidentified")
    with session_scope(intake.rt.engine) as s:
        assert set(s.exec(select(ReportingPeriod.code))) == {"2022-Q1"}  # nothing created


# ---- values nobody means ----------------------------------------------------------------


def test_absurd_numbers_are_findings_not_figures(tmp_path):
    rt = make_runtime(tmp_path / "data")
    open_example(rt)
    path = _csv(
        tmp_path,
        "motcua.csv",
        [
            "MOTCUA,2022-Q1,tthc_tiep_nhan,1e30",
            "MOTCUA,2022-Q1,tthc_da_giai_quyet,1e400",
            "MOTCUA,2022-Q1,tthc_dang_giai_quyet,10",
            "MOTCUA,2022-Q1,tthc_dang_giai_quyet,11",
        ],
    )
    [r] = ingest_files(rt, [path], now=LATER, unit="MOTCUA")
    assert r.outcome == "rejected"
    with session_scope(rt.engine) as s:
        rules = {
            f.rule: f.message_vi
            for f in s.exec(select(Finding).where(Finding.unit_code == "MOTCUA"))
        }
    assert {"range", "type", "duplicate"} <= set(rules)
    assert "2 lần" in rules["duplicate"]


# ---- crashes and reruns -----------------------------------------------------------------


def test_a_rerun_of_the_same_arrival_finishes_it_without_a_second_version(tmp_path):
    rt = make_runtime(tmp_path / "data")
    open_example(rt)
    [nv] = returned(rt, ["NV_2022-Q1.xlsx"])
    arrival = Arrival(nv, nv.name, "folder:abc123")
    [first] = ingest_arrivals(rt, [arrival], now=LATER)
    [again] = ingest_arrivals(rt, [arrival], now=LATER)
    assert first.outcome == "accepted" and again.outcome == "accepted"
    assert first.report == again.report == "cchc-quarterly"  # the office-wide run's artifacts
    assert len(submissions(rt, "NV")) == 1
    assert len(receipts(rt, nv.name)) == 1
    everyone = rt.for_report("cchc-quarterly")  # a run about every report finds it the same way
    [third] = ingest_arrivals(everyone.for_report(None), [arrival], now=LATER)
    assert third.report == "cchc-quarterly"


RUN_ONCE = """
import sys
from pathlib import Path
from baocao.periods import parse_moment
from tests.conftest import make_runtime
from tasks.intake import Arrival, ingest_arrivals
rt = make_runtime(Path(sys.argv[1]))
path = Path(sys.argv[2])
[r] = ingest_arrivals(rt, [Arrival(path, path.name, "folder:poison1")], now=parse_moment("2022-03-15T08:00"))
print(r.outcome)
"""


def _ingest_in_a_process(rt, path, fault: str | None = None) -> subprocess.CompletedProcess:
    """One intake of `path` (arrival key fixed) in its own process, killed at `fault`."""
    env = {k: v for k, v in os.environ.items() if k != "BAOCAO_FAULT"}
    if fault:
        env["BAOCAO_FAULT"] = fault
    return subprocess.run(
        [sys.executable, "-c", RUN_ONCE, str(rt.settings.data_dir), str(path)],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_a_file_that_kills_its_reader_three_times_is_quarantined(tmp_path):
    rt = make_runtime(tmp_path / "data")
    open_example(rt)
    [nv] = returned(rt, ["NV_2022-Q1.xlsx"])
    for _ in range(3):  # each run dies after counting its attempt, before storing
        run = _ingest_in_a_process(rt, nv, fault="ingest.read")
        assert run.returncode == -9, run.stderr
    run = _ingest_in_a_process(rt, nv)
    assert run.stdout.strip() == "quarantined", run.stderr
    [receipt] = receipts(rt, nv.name)
    assert (receipt.outcome, receipt.attempts) == ("quarantined", 4)
    assert submissions(rt, "NV") == []


@pytest.mark.slow
@pytest.mark.parametrize("point", ["ingest.archived", "ingest.read", "ingest.stored"])
def test_killed_at_any_point_a_rerun_stores_each_file_once(tmp_path, point):
    rt = make_runtime(tmp_path / "data")
    open_example(rt)
    [nv] = returned(rt, ["NV_2022-Q1.xlsx"])
    killed = _ingest_in_a_process(rt, nv, fault=point)
    assert killed.returncode == -9, killed.stderr
    rerun = _ingest_in_a_process(rt, nv)
    assert rerun.stdout.strip() == "accepted", rerun.stderr
    assert len(submissions(rt, "NV")) == 1
    [receipt] = receipts(rt, nv.name)
    assert receipt.outcome == "accepted"


def test_the_unit_named_on_an_unreadable_file_is_told_once(tmp_path):
    rt = make_runtime(tmp_path / "data")
    open_example(rt)
    broken = tmp_path / "MOTCUA_2022-Q1.xlsx"
    broken.write_bytes(b"PK\x03\x04" + os.urandom(2000))
    copy = tmp_path / "MOTCUA_2022-Q1 (1).xlsx"
    copy.write_bytes(broken.read_bytes())
    results = ingest_files(rt, [broken, copy], now=LATER)
    assert [r.outcome for r in results] == ["unreadable", "unreadable"]
    with session_scope(rt.engine) as s:
        told = list(s.exec(select(OutboxMessage).where(OutboxMessage.key.like("unreadable:%"))))
    assert [m.address for m in told] == ["motcua@sontay.quangngai.gov.vn"]
    assert "MOTCUA_2022-Q1.xlsx" in told[0].body and "16/03/2022" in told[0].body


def test_two_concurrent_intakes_on_sqlite_store_each_content_once(tmp_path):
    from baocao.settings import get_settings

    settings = get_settings(data_dir=tmp_path / "data", config_dir=PROJECT_ROOT / "config")
    subs, results = concurrent_intake(settings, tmp_path)
    keys = [(u, h) for u, _, h in subs]
    assert len(keys) == len(set(keys)) == 11  # 10 files, the CSV carries two units
    outcomes = sorted(r.outcome for rs in results.values() for r in rs)
    assert outcomes.count("duplicate") == 11


def test_a_file_that_crashes_its_reader_costs_only_itself(tmp_path, monkeypatch):
    rt = make_runtime(tmp_path / "data")
    open_example(rt)
    files = returned(rt, ["NV_2022-Q1.xlsx", "TP_2022-Q1.xlsx", "VHTT_2022-Q1.xlsx"])
    # the reader is given the archived copy: make the worker abort on TP's
    tp_sha = hashlib.sha256(files[1].read_bytes()).hexdigest()
    monkeypatch.setenv("BAOCAO_READER_TEST_CRASH_ON", f"{tp_sha}.xlsx")
    for run in range(1, 4):
        results = ingest_files(rt, files, now=LATER)
        outcomes = {r.file: r.outcome for r in results}
        assert (
            outcomes["NV_2022-Q1.xlsx"] == "accepted"
            and outcomes["VHTT_2022-Q1.xlsx"] == "accepted"
        )
        assert outcomes["TP_2022-Q1.xlsx"] == ("quarantined" if run == 3 else "retry")
    [receipt] = receipts(rt, "TP_2022-Q1.xlsx")
    assert (receipt.outcome, receipt.attempts) == ("quarantined", 3)
    with session_scope(rt.engine) as s:
        [finding] = s.exec(select(Finding).where(Finding.receipt_id == receipt.id))
    assert finding.rule == "quarantined" and "cách ly" in finding.message_vi
    assert len(submissions(rt, "NV")) == 1 and submissions(rt, "TP") == []


def test_files_are_taken_in_the_order_they_arrived(tmp_path):
    """Versions follow arrival: TCKH's wrong file, then its correction, whatever the names."""
    rt = make_runtime(tmp_path / "data")
    open_example(rt)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    first, fixed = returned(rt, ["TCKH_2022-Q1.xlsx", "TCKH_2022-Q1_sua.xlsx"])
    for n, (src, name) in enumerate([(first, "z-first.xlsx"), (fixed, "a-second.xlsx")]):
        (inbox / name).write_bytes(src.read_bytes())
        os.utime(inbox / name, (1000 + n, 1000 + n))
    claim = claim_inbox(inbox, settle_seconds=5, lease_seconds=60)
    assert [a.name for a in claim.arrivals] == ["z-first.xlsx", "a-second.xlsx"]
    results = ingest_arrivals(rt, claim.arrivals, now=LATER)
    assert [(r.file, r.version, r.outcome) for r in results] == [
        ("z-first.xlsx", 1, "rejected"),
        ("a-second.xlsx", 2, "accepted"),
    ]


# ---- against the previous period: percentages typed the Excel way, jumps ------------------


def _filled_form(rt, period: Period, values: dict, path, number_formats: dict | None = None):
    """The unit's issued form for `period` filled in as a clerk would, saved at `path`."""
    from baocao import crud

    with session_scope(rt.engine) as s:
        row = crud.get_period(s, report_id=rt.report.id, code=period.code)
        form = crud.requests_for(s, period_id=row.id)["NV"].form_path
    wb = load_workbook(form)
    ws = wb["BaoCao"]
    rows = {ws[f"B{r}"].value: r for r in range(8, ws.max_row + 1) if ws[f"B{r}"].value}
    for code, value in values.items():
        ws[f"E{rows[code]}"].value = value
    for code, fmt in (number_formats or {}).items():
        ws[f"E{rows[code]}"].number_format = fmt
    wb.save(path)
    return path


def test_previous_period_percent_cells_and_jumps(tmp_path):
    """Quý IV/2021 then Quý I/2022 of Phòng Nội vụ: a percentage typed the Excel way is
    stored and printed as a percentage; a tenfold jump and a fraction typed for a percentage
    are warnings to the unit, and the submission is valid."""
    from baocao import crud
    from tasks.consolidate import consolidate_period
    from tasks.render import format_figures

    rt = make_runtime(tmp_path / "data")
    q4 = Period.parse("2021-Q4")
    open_period(rt, period=q4, units=["NV"], now=parse_moment("2021-12-06T08:00"))
    q4_figures = {
        "nv_nv_hoan_thanh": 2,
        "nv_nv_ke_hoach": 10,
        "nv_dot_kiem_tra": 2,
        "nv_nv_tinh_giao_pct": 0.85,  # typed 85 in the form's percent cell
        "nv_vi_pham": 0,
    }
    q4_at = parse_moment("2021-12-10T09:00")
    [v1] = ingest_files(rt, [_filled_form(rt, q4, q4_figures, tmp_path / "q4.xlsx")], now=q4_at)
    assert (v1.outcome, v1.warnings) == ("accepted", 0)  # nothing to compare with
    bad = {**q4_figures, "nv_nv_hoan_thanh": 50}  # 50 done of 10 planned: rejected
    [v2] = ingest_files(rt, [_filled_form(rt, q4, bad, tmp_path / "q4b.xlsx")], now=q4_at)
    assert v2.outcome == "rejected"

    with session_scope(rt.engine) as s:
        before = crud.previous_values(
            s, report_id=rt.report.id, period_code=PERIOD.code, units=["NV", "TCKH"]
        )
    got = before.set_index("indicator")
    assert set(got["unit"]) == {"NV"} and set(got["period"]) == {"2021-Q4"}
    assert got.at["nv_nv_hoan_thanh", "value"] == 2  # the valid version, not the later rejected
    assert got.at["nv_nv_tinh_giao_pct", "value"] == 85

    open_period(rt, period=PERIOD, units=["NV"], now=parse_moment("2022-03-07T08:00"))
    q1_figures = {**q4_figures, "nv_nv_hoan_thanh": 20, "nv_nv_ke_hoach": 20}
    q1_figures["nv_nv_tinh_giao_pct"] = 0.9  # 90 % as Excel stores it
    path = _filled_form(rt, PERIOD, q1_figures, tmp_path / "q1.xlsx", {"nv_nv_tinh_giao_pct": "0%"})
    [r] = ingest_files(rt, [path], now=parse_moment("2022-03-10T09:00"))
    assert (r.outcome, r.errors, r.warnings) == ("accepted", 0, 1)
    with session_scope(rt.engine) as s:
        [f] = s.exec(select(Finding).where(Finding.receipt_id == _receipt_id(rt, r))).all()
    assert (f.rule, f.severity, f.indicator) == ("jump", "warning", "nv_nv_hoan_thanh")
    assert "tăng gấp 10 lần so với kỳ trước (Quý IV/2021: 2)" in f.message_vi
    figures = format_figures(consolidate_period(rt, PERIOD).values, rt.report)
    assert figures["nv_nv_tinh_giao_pct"] == "90%"  # not "0,9%"
    assert figures["nv_nv_hoan_thanh"] == "20"

    # the same figures, but 0.9 typed in a cell formatted as a plain number
    path = _filled_form(
        rt, PERIOD, q1_figures, tmp_path / "q1b.xlsx", {"nv_nv_tinh_giao_pct": "0.0"}
    )
    [r2] = ingest_files(rt, [path], now=parse_moment("2022-03-11T09:00"))
    assert (r2.outcome, r2.version, r2.errors) == ("accepted", 2, 0)
    with session_scope(rt.engine) as s:
        found = s.exec(select(Finding).where(Finding.receipt_id == _receipt_id(rt, r2))).all()
    rules = {f.rule: f for f in found}
    assert set(rules) == {"jump", "percent_fraction"}
    assert "có thể đã nhập 0,9 thay vì 90%" in rules["percent_fraction"].message_vi
    assert {f.severity for f in found} == {"warning"}


def _receipt_id(rt, result) -> int:
    with session_scope(rt.engine) as s:
        return s.exec(select(Receipt.id).where(Receipt.arrival_key == result.arrival)).one()


# ---- a monthly report -------------------------------------------------------------------


def test_a_monthly_report_opens_takes_in_and_reminds(tmp_path):
    """`period_kind: M` goes through opening, intake and reminders as a quarter does."""
    import datetime as dt

    from baocao.runtime import build_runtime
    from baocao.settings import get_settings
    from tasks.collect import collecting_period
    from tasks.remind import queue_reminders
    from tests.conftest import edited_config

    config = edited_config(tmp_path / "config", _report_file(), "period_kind: Q", "period_kind: M")
    rt = build_runtime(
        report_id="cchc-quarterly",
        settings=get_settings(data_dir=tmp_path / "data", config_dir=config),
    )
    opened_on = parse_moment("2026-10-07T08:00")
    period = collecting_period(opened_on.date(), rt.report.period_kind, rt.cfg.schedule)
    assert period == Period.parse("T10/2026")
    open_period(rt, period=period, units=["NV"], now=opened_on)
    form = rt.settings.forms_dir / rt.report.id / "2026-10" / "NV_2026-10.xlsx"
    assert form.exists()
    with session_scope(rt.engine) as s:
        [request] = s.exec(select(OutboxMessage).where(OutboxMessage.kind == "request"))
    assert "tháng 10/2026" in request.subject and "15/09/2026" in request.body

    # the blank form sent back as it is: identified as NV's for October (not refused as
    # another report's or period's), then rejected for its empty cells
    [r] = ingest_files(rt, [form], now=parse_moment("2026-10-09T09:00"))
    assert (r.unit, r.period, r.outcome) == ("NV", "2026-10", "rejected")

    # a CSV naming the period as a clerk writes it is filed under its code
    csv = tmp_path / "nv.csv"
    csv.write_text(
        "don_vi,ky_bao_cao,ma_chi_tieu,gia_tri\nNV,tháng 10/2026,nv_nv_hoan_thanh,3\n",
        encoding="utf-8",
    )
    [r] = ingest_files(rt, [csv], now=parse_moment("2026-10-09T10:00"), unit="NV")
    assert (r.unit, r.period) == ("NV", "2026-10") and r.outcome != "unidentified"

    # units' deadline Fri 16/10/2026: the overdue reminder two working days later
    assert queue_reminders(rt, period=period, today=dt.date(2026, 10, 20), units=["NV"])


def _report_file() -> str:
    return "reports/cchc-quarterly.yaml"
