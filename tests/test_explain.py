"""Where a figure comes from (issue 8 item 6): `baocao explain` lists the units, versions,
received files and cells that make a printed figure, and the office's HTML links each figure
to the sources page, while the HTML stamped for the province carries no such link.

The period: the district's offices (TCKH rejected once, then corrected: version 2 counts) and
two communes, Sơn Dung and Sơn Bua, so the dossiers received are a sum over 2 of 10 owners.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from baocao.periods import parse_moment
from tasks.consolidate import consolidate_period
from tasks.explain import UnknownFigureError, explain_figure, sources_name
from tasks.intake import ingest_files
from tasks.publish import render_version, stamped_files
from tasks.render import output_names
from tests.conftest import PERIOD, make_runtime, open_example, returned

OFFICES = ["NV_2022-Q1.xlsx", "TP_2022-Q1.xlsx", "VHTT_2022-Q1.xlsx", "TCKH_2022-Q1_sua.xlsx"]
COMMUNES = ["SON-DUNG_2022-Q1.xlsx", "SON-BUA_2022-Q1.xlsx"]
runner = CliRunner()


@pytest.fixture(scope="module")
def two_communes(tmp_path_factory):
    rt = make_runtime(tmp_path_factory.mktemp("explain") / "data")
    open_example(rt)
    first = ingest_files(
        rt, returned(rt, ["TCKH_2022-Q1.xlsx"]), now=parse_moment("2022-03-10T09:00")
    )
    assert first[0].outcome == "rejected", first
    results = ingest_files(
        rt, returned(rt, [*OFFICES, *COMMUNES]), now=parse_moment("2022-03-14T16:40")
    )
    assert all(r.outcome == "accepted" for r in results), results
    return rt


def test_a_sum_lists_each_unit_its_version_cell_and_file(two_communes):
    rt = two_communes
    e = explain_figure(rt, PERIOD, "tthc_tiep_nhan")
    assert e.kind == "sum" and e.coverage == "2/10"
    by_unit = {c.unit: c for c in e.contributions}
    assert set(by_unit) == {"SON-DUNG", "SON-BUA"}
    result = consolidate_period(rt, PERIOD)
    total = sum(int(result.by_unit.at[u, "tthc_tiep_nhan"]) for u in by_unit)
    assert e.printed == f"{total} (số liệu của 2/10 đơn vị)"
    dung = by_unit["SON-DUNG"]
    assert dung.version == 1 and dung.file_name == "SON-DUNG_2022-Q1.xlsx"
    assert re.fullmatch(r"\w+!\$?[A-Z]+\$?\d+", dung.cell), dung.cell
    archived = Path(dung.archive_path).read_bytes()
    assert hashlib.sha256(archived).hexdigest() == dung.sha256
    assert dung.received_at.utcoffset() == dt.timedelta(hours=7)
    assert (dung.received_at.hour, dung.received_at.minute) == (16, 40)
    missing = {m.unit for m in e.missing}
    assert "MOTCUA" in missing and "SON-TINH" in missing and not missing & set(by_unit)
    assert len(missing) == 8


def test_the_corrected_version_is_the_one_explained(two_communes):
    e = explain_figure(two_communes, PERIOD, "tc_thu_nsnn")
    [tckh] = e.contributions
    assert (tckh.unit, tckh.version, tckh.file_name) == ("TCKH", 2, "TCKH_2022-Q1_sua.xlsx")
    assert e.kind == "single" and not e.missing


def test_a_percentage_explains_its_numerator_and_denominator(two_communes):
    e = explain_figure(two_communes, PERIOD, "nv_tien_do_pct")
    assert e.kind == "derived" and e.printed.endswith("%")
    num, den = e.parts
    assert (num.code, den.code) == ("nv_nv_hoan_thanh", "nv_nv_ke_hoach")
    assert num.label in e.formula and den.label in e.formula
    assert num.contributions[0].unit == "NV" and den.contributions[0].cell


def test_a_percentage_of_plan_names_the_plan(two_communes):
    rt = two_communes
    e = explain_figure(rt, PERIOD, "tc_thu_nsnn_pct")
    num, plan = e.parts
    assert num.code == "tc_thu_nsnn" and num.contributions[0].unit == "TCKH"
    assert plan.kind == "plan" and plan.code == "plan:tc_thu_nsnn"
    assert "2022" in plan.label and plan.printed == "257.700"


def test_an_unknown_code_names_the_close_ones(two_communes):
    with pytest.raises(UnknownFigureError, match="tthc_tiep_nhan"):
        explain_figure(two_communes, PERIOD, "tthc_tiep_nhann")


def test_cli_explain_prints_the_figure_and_its_units(two_communes, monkeypatch):
    monkeypatch.setenv("BAOCAO_DATA_DIR", str(two_communes.settings.data_dir))
    monkeypatch.setenv("COLUMNS", "250")
    result = runner.invoke(app, ["explain", "2022-Q1", "tthc_tiep_nhan", "-r", "cchc-quarterly"])
    assert result.exit_code == 0, result.output
    assert "(số liệu của 2/10 đơn vị)" in result.output
    assert "SON-DUNG_2022-Q1.xlsx" in result.output and "UBND xã Sơn Bua" in result.output
    bad = runner.invoke(app, ["explain", "2022-Q1", "tthc_tiep_nhann", "-r", "cchc-quarterly"])
    assert bad.exit_code == 2
    assert "tthc_tiep_nhan" in bad.output and "Traceback" not in bad.output


def test_cli_explain_json(two_communes, monkeypatch):
    import json

    monkeypatch.setenv("BAOCAO_DATA_DIR", str(two_communes.settings.data_dir))
    result = runner.invoke(
        app, ["explain", "2022-Q1", "tc_thu_nsnn_pct", "--json", "-r", "cchc-quarterly"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["parts"][0]["contributions"][0]["sha256"]
    assert data["parts"][1]["kind"] == "plan"


def test_office_html_links_figures_and_the_sent_html_does_not(two_communes):
    rt = two_communes
    result = consolidate_period(rt, PERIOD)
    row, _ = render_version(rt, result, dt.date(2022, 4, 5), parse_moment("2022-04-05T08:00"))
    folder = Path(row.folder)
    names = output_names(rt.report, PERIOD, rt.cfg.body)
    page = sources_name(names.html)
    assert page in row.files
    office = (folder / names.html).read_text(encoding="utf-8")
    link = f'<a class="figure" href="{page}#tthc_tiep_nhan">'
    assert link in office
    assert not re.search("[\ue002-\ue004]", office)  # no stray marks
    sources = (folder / page).read_text(encoding="utf-8")
    assert 'id="tthc_tiep_nhan"' in sources and 'id="tc_thu_nsnn_pct"' in sources
    assert "SON-DUNG_2022-Q1.xlsx" in sources and "không gửi" in sources
    # the Markdown carries the figure without any link
    md = (folder / names.md).read_text(encoding="utf-8")
    assert "(số liệu của 2/10 đơn vị)" in md and "Nguon-so-lieu" not in md
    # the copies stamped for the province: no link, no sources page
    row.number, row.signed_on = "25", dt.date(2022, 4, 5)
    sent = stamped_files(rt, result, row)[".html"].read_text(encoding="utf-8")
    assert "(số liệu của 2/10 đơn vị)" in sent
    assert 'class="figure"' not in sent and "Nguon-so-lieu" not in sent
