"""Intake of the example's returned files into a temporary SQLite store and archive."""

from __future__ import annotations

import hashlib
import os
from types import SimpleNamespace

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from baocao.db import session_scope
from baocao.models import Finding, OutboxMessage, Receipt, ReportingPeriod, Submission
from baocao.periods import Period, parse_moment
from tasks.collect import open_period
from tasks.intake import ingest_files
from tests.conftest import MANIFEST, PERIOD, SUBMISSIONS, ingest_waves, make_runtime, open_example

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
    content = (SUBMISSIONS / name).read_bytes()
    target = archived_path(intake.rt, content, (SUBMISSIONS / name).suffix.lower())
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
    again.write_bytes((SUBMISSIONS / "NV_2022-Q1.xlsx").read_bytes())
    results = ingest_files(intake.rt, [SUBMISSIONS / "NV_2022-Q1.xlsx", again], now=LATER)
    assert [r.outcome for r in results] == ["duplicate", "duplicate"]
    assert submissions(intake.rt, "NV") == before
    assert len(before) == 1
    assert [r.outcome for r in receipts(intake.rt, "NV lan 2.xlsx")] == ["duplicate"]


def test_rejected_file_again_is_a_duplicate(intake):
    [r] = ingest_files(intake.rt, [SUBMISSIONS / "TCKH_2022-Q1.xlsx"], now=LATER)
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
    for code in intake.rt.cfg.expected_units(intake.rt.report):
        assert code in r.message
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
    assert "tc_tong_chi" in msg.body and "40.898" in msg.body and "40.826" in msg.body
    assert "16/03/2022" in msg.body  # resubmit before the unit deadline
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
    bad = tmp_path / "SON-DUNG_2022-Q1.csv"
    bad.write_bytes(
        b'don_vi,ky_bao_cao,ma_chi_tieu,gia_tri\nSON-DUNG,2022-Q1,tthc_pakn,"'
        + b"9" * 200_000
        + b'"\n'
    )
    results = ingest_files(rt, [bad, SUBMISSIONS / "MOTCUA_2022-Q1.xlsx"], now=LATER)
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


def test_inbox_files_move_to_processed_without_overwriting(tmp_path):
    import shutil

    rt = make_runtime(tmp_path / "data")
    open_example(rt)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    now = parse_moment("2022-03-11T10:15")
    for expected in ("accepted", "duplicate"):
        shutil.copy(SUBMISSIONS / "NV_2022-Q1.xlsx", inbox / "NV_2022-Q1.xlsx")
        [result] = ingest_files(rt, [inbox / "NV_2022-Q1.xlsx"], now=now, move_from=inbox)
        assert result.outcome == expected
    assert not (inbox / "NV_2022-Q1.xlsx").exists()
    assert len(list((inbox / "processed").iterdir())) == 2
