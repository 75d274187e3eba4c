"""The reliability suite (reliability/, `make reliability`): its hostile files are what they
claim to be, its counting tells a recognisable duplicate from a real one, and its cheapest
scenarios run end to end through the same code (slow: real Prefect server, SMTP, CLI)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from openpyxl import load_workbook

from reliability import hostile
from reliability.harness import Suite, Tally, count_mail
from reliability.returns import encode_cp1258, long_csv
from reliability.run import run_scenarios, table


def test_the_far_cell_file_is_small_and_names_the_last_cell():
    content = hostile.far_cell()
    assert len(content) < 8_000
    ws = load_workbook(io.BytesIO(content)).active
    assert ws.max_row == 1_048_576 and ws.max_column == 16_384


def test_the_zip_bomb_inflates_a_thousand_fold():
    content = hostile.zip_bomb(uncompressed_mb=20)
    with zipfile.ZipFile(io.BytesIO(content)) as z:
        inflated = sum(i.file_size for i in z.infolist())
    assert inflated > 20_000_000 and len(content) * 100 < inflated


def test_windows_1258_text_is_not_utf8_and_decodes_back():
    import unicodedata

    text = "Đã tổ chức thi tuyển viên chức; kết quả trình Sở Nội vụ thẩm định."
    raw = encode_cp1258(text)
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert unicodedata.normalize("NFC", raw.decode("cp1258")) == text


def test_a_csv_carries_the_unit_token_only_when_given():
    with_token = long_csv([("TP", "2022-Q1", "tp_vb_ban_hanh", 1)], {"TP": "abc"}).decode()
    without = long_csv([("TP", "2022-Q1", "tp_vb_ban_hanh", 1)], None).decode()
    assert with_token.splitlines() == [
        "don_vi,ky_bao_cao,ma_chi_tieu,gia_tri,ma_bieu_mau",
        "TP,2022-Q1,tp_vb_ban_hanh,1,abc",
    ]
    assert "ma_bieu_mau" not in without


def _mail(rcpt: str, subject: str, body: str, message_id: str):
    from email.message import EmailMessage

    m = EmailMessage()
    m["Subject"], m["Message-ID"] = subject, message_id
    m.set_content(body)
    return SimpleNamespace(
        rcpt=[rcpt], subject=subject, message=m, text=lambda: m.get_content(), path=Path("x")
    )


@pytest.mark.parametrize(
    ("ids", "allowed", "duplicated", "recognisable"),
    [
        (["<a@x>", "<a@x>"], 1, 0, 1),  # the one in flight, same Message-ID: reported
        (["<a@x>", "<a@x>"], 0, 1, 0),  # no kill after sending: a duplicate
        (["<a@x>", "<b@x>"], 1, 1, 0),  # different Message-IDs: a duplicate
        (["<a@x>", "<a@x>", "<a@x>"], 1, 2, 0),  # more than the one in flight
    ],
)
def test_a_resend_counts_as_recognisable_only_once_with_the_same_message_id(
    ids, allowed, duplicated, recognisable
):
    t = Tally("t")
    ws = SimpleNamespace(
        tally=t,
        sink=SimpleNamespace(received=[_mail("a@b", "S", "body", i) for i in ids]),
    )
    count_mail(ws, inflight_allowed=allowed)
    assert (t.dup_messages, t.dup_recognisable) == (duplicated, recognisable)
    assert t.ok == (duplicated == 0)


def test_the_table_names_every_column_and_fails_on_any_count():
    good, bad = Tally("good", files_tried=3), Tally("bad", lost=1)
    text = table([good, bad])
    for column in (
        "files tried",
        "faults injected",
        "files lost",
        "versions doubled",
        "messages duplicated",
        "unhandled exceptions",
    ):
        assert column in text
    assert good.ok and not bad.ok
    assert text.splitlines()[-1].split()[-1] == "FAIL"


@pytest.mark.slow
@pytest.mark.integration
def test_the_cheapest_scenarios_pass(tmp_path):
    """A deleted store and a foreign config folder, through the real command line."""
    from reliability import access, store

    suite = Suite(tmp_path, scale=0.1)
    suite.start()
    try:
        tallies = [store.broken(suite, "deleted"), access.foreign_config(suite)]
    finally:
        suite.stop()
    problems = [f"{t.scenario}: {f}" for t in tallies for f in t.failures]
    assert all(t.ok for t in tallies), "\n".join(problems)
    assert all(t.checks >= 3 for t in tallies)


def test_the_runner_reports_a_scenario_that_breaks_as_a_failed_line(monkeypatch):
    import reliability.store

    def boom(_suite):
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr(reliability.store, "run", boom)
    (t,) = run_scenarios(SimpleNamespace(), ["store"], say=lambda *a, **k: None)
    assert not t.ok and "broken on purpose" in t.failures[0]
