"""tasks.publish: a version's files named by report, period and body; the report messages carry
the .docx and its appendix, never the office's status workbook."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from baocao.db import session_scope
from baocao.models import OutboxMessage
from baocao.periods import parse_moment
from tasks.consolidate import consolidate_period
from tasks.publish import queue_report, render_version
from tests.conftest import PERIOD, ingest_waves, make_runtime, open_example

STEM = "BC-CCHC-Quy-I-2022-UBND-huyen-Son-Tay"
DOCX, XLSX = f"{STEM}.docx", f"{STEM}-Phu-luc.xlsx"
STATUS = "Tinh-hinh-nop-CCHC-Quy-I-2022.xlsx"
SOURCES = f"{STEM}-Nguon-so-lieu.html"  # the office's sources page (baocao explain)


def test_report_messages_attach_the_report_and_appendix_only(tmp_path):
    rt = make_runtime(tmp_path / "data")
    open_example(rt)
    ingest_waves(rt)
    result = consolidate_period(rt, PERIOD)
    row, new = render_version(rt, result, dt.date(2022, 4, 5), parse_moment("2022-04-05T09:00"))
    assert new
    folder = Path(row.folder)
    assert json.loads(row.files) == [f"{STEM}.md", f"{STEM}.html", DOCX, XLSX, STATUS, SOURCES]
    assert all((folder / name).is_file() for name in json.loads(row.files))

    row.number, row.signed_on = "25", dt.date(2022, 4, 5)  # as the approver's decision sets
    assert len(queue_report(rt, result, row)) == 6
    with session_scope(rt.engine) as s:
        rows = list(s.query(OutboxMessage).filter_by(kind="report"))
    assert len(rows) == 6
    for m in rows:
        sent = [
            d.replace(".docx", "-so-25.docx").replace(".xlsx", "-so-25.xlsx") for d in (DOCX, XLSX)
        ]
        assert [Path(a).name for a in json.loads(m.attachments)] == sent, m.recipient
        assert STATUS not in m.attachments and "Nguon-so-lieu" not in m.attachments

    (folder / STATUS).unlink()  # a lost file is written again; the version stays the same
    again, new = render_version(rt, result, dt.date(2022, 4, 5), parse_moment("2022-04-05T10:00"))
    assert not new and again.version == row.version and (folder / STATUS).is_file()
    rt.engine.dispose()
