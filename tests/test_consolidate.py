"""Consolidation of the example quarter, and the pure steps it is made of."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

from baocao.periods import Period, parse_moment
from tasks.collect import open_period
from tasks.consolidate import (
    IncompleteError,
    consolidate_frames,
    consolidate_period,
    derive,
    latest_valid,
    load_period,
    require_complete,
)
from tasks.intake import ingest_files
from tests.conftest import PERIOD, ingest_waves, make_runtime, open_example


@pytest.fixture(scope="module")
def result(example_runtime):
    return consolidate_period(example_runtime, PERIOD)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("tthc_tiep_nhan", 145),
        ("tthc_da_giai_quyet", 130),
        ("tthc_dang_giai_quyet", 15),
        ("tthc_pakn", 0),
        ("tc_dv_tu_chu", 22),
        ("tc_thu_nsnn", 112108),
        ("dt_giai_ngan", 2266.02),
        ("nv_nv_tinh_giao_pct", 100),
    ],
)
def test_consolidated_figures(result, code, expected):
    assert result.values[code] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("tc_thu_nsnn_pct", Decimal("43.5")),
        ("tc_thu_huyen_xa_pct", Decimal("21.7")),
        ("dt_giai_ngan_pct", Decimal("3.5")),
        ("dt_giai_ngan_tinh_pct", Decimal("4.4")),
        ("dt_giai_ngan_huyen_pct", Decimal("0")),  # exactly whole: no decimals ("0%")
        ("nv_tien_do_pct", Decimal("100")),  # 11/11 exactly: "100%"
    ],
)
def test_derived_percentages(result, code, expected):
    value = result.values[code]
    assert isinstance(value, Decimal)
    assert value == expected
    assert str(value) == str(expected)  # one decimal, or none when exactly whole


def test_text_and_date_values(result):
    assert result.values["tc_den_ngay"] == dt.date(2022, 2, 21)
    assert result.values["nv_tuyen_dung"].startswith("Trong quý I/2022")
    assert result.values["tp_nguon"].startswith("Báo cáo số 19/BC-TP")


def test_completeness_and_timeliness(result):
    assert result.completeness == "14/14"
    assert result.timeliness == "13/14"
    assert result.missing == []
    status = result.status.set_index("unit")
    assert not status.at["SON-MUA", "on_time"]
    assert list(status.index[status["on_time"].astype(bool)]) == [
        u for u in result.expected if u != "SON-MUA"
    ]
    assert set(status["state"]) == {"valid"}


def test_tckh_value_comes_from_v2(result):
    assert result.values["tc_chi_xa"] == 5791  # v1 said 5719 and was rejected
    assert result.by_unit.at["TCKH", "tc_chi_xa"] == 5791
    tckh = result.status.set_index("unit").loc["TCKH"]
    assert (tckh["state"], tckh["version"], tckh["versions"]) == ("valid", 2, 2)


def test_by_unit_table(result):
    assert list(result.by_unit.index) == result.expected
    assert result.by_unit.at["MOTCUA", "tthc_tiep_nhan"] == 82
    assert pd.isna(result.by_unit.at["MOTCUA", "tthc_pakn"])  # not on the desk's form
    assert result.by_unit["tthc_tiep_nhan"].sum() == 145


def test_figure_table_without_previous_period(result):
    table = result.table.set_index("code")
    assert "nv_tuyen_dung" not in table.index  # texts are not figures
    assert table.at["tc_thu_nsnn", "plan"] == 257700
    assert table.at["tc_thu_nsnn_pct", "value"] == pytest.approx(43.5)
    assert table["previous"].isna().all()
    assert table["change"].isna().all()


def test_require_complete_passes_for_the_example(result, example_runtime):
    require_complete(result, example_runtime.cfg, example_runtime.report)


def test_require_complete_names_the_missing_unit(example_runtime):
    rt = example_runtime
    subs, values = load_period(rt, PERIOD)
    without = subs[subs["unit"] != "TCKH"]
    partial = consolidate_frames(without, values, rt.cfg, rt.report, PERIOD)
    assert partial.completeness == "13/14"
    assert partial.status.set_index("unit").at["TCKH", "state"] == "missing"
    with pytest.raises(IncompleteError) as exc:
        require_complete(partial, rt.cfg, rt.report)
    msg = str(exc.value)
    assert "TCKH" in msg and "Phòng Tài chính - Kế hoạch" in msg
    assert "tc_thu_nsnn" in msg
    for other in ("(NV)", "(MOTCUA)", "(SON-MUA)"):
        assert other not in msg


def test_rejected_only_unit_is_missing(example_runtime):
    rt = example_runtime
    subs, values = load_period(rt, PERIOD)
    only_v1 = subs[~((subs["unit"] == "TCKH") & (subs["version"] == 2))]
    partial = consolidate_frames(only_v1, values, rt.cfg, rt.report, PERIOD)
    assert partial.status.set_index("unit").at["TCKH", "state"] == "rejected"
    assert partial.values["tc_chi_xa"] is None  # the rejected 5719 is not used
    assert partial.values["dt_giai_ngan_pct"] is None
    with pytest.raises(IncompleteError, match="TCKH"):
        require_complete(partial, rt.cfg, rt.report)


# ---- pure steps -------------------------------------------------------------------------


def _subs(rows):
    return pd.DataFrame(rows, columns=["submission_id", "unit", "version", "status"])


def test_latest_valid_keeps_valid_over_later_rejected():
    subs = _subs(
        [
            (1, "A", 1, "valid"),
            (2, "A", 2, "rejected"),
            (3, "B", 1, "rejected"),
            (4, "B", 2, "valid"),
            (5, "C", 1, "rejected"),
            (6, "D", 2, "valid"),
            (7, "D", 3, "valid"),
            (8, "D", 1, "valid"),
        ]
    )
    chosen = latest_valid(subs)
    assert chosen["submission_id"].to_dict() == {"A": 1, "B": 4, "D": 7}
    assert "C" not in chosen.index


def test_derive_rounds_half_up(example_runtime):
    report = example_runtime.report
    got = derive({"dt_giai_ngan": 3.45, "dt_von": 100}, report, {})
    assert got["dt_giai_ngan_pct"] == Decimal("3.5")
    # 149 / 2000 is 7,45 %: in floats 149 / 2000 * 100 = 7.4499..., on paper 7,5 %
    got = derive(
        {"dt_giai_ngan": 149, "dt_von": 2000, "tc_dv_tu_chu": 1, "tc_dv_tong": 8}, report, {}
    )
    assert got["dt_giai_ngan_pct"] == Decimal("7.5")
    assert got["tc_dv_tu_chu_pct"] == Decimal("12.5")  # 12,5 exactly, not banker's 12


def test_derive_missing_or_zero_denominator(example_runtime):
    report = example_runtime.report
    got = derive({"dt_giai_ngan": 0.0, "dt_von": 0.0, "dt_giai_ngan_tinh": None}, report, {})
    assert got["dt_giai_ngan_pct"] is None
    assert got["dt_giai_ngan_tinh_pct"] is None
    assert got["tc_thu_nsnn_pct"] is None  # no plan given


def test_derive_against_the_plan(example_runtime):
    report = example_runtime.report
    got = derive({"tc_thu_nsnn": 112108.0}, report, example_runtime.cfg.plan(report.id, 2022))
    assert got["tc_thu_nsnn_pct"] == Decimal("43.5")


# ---- previous period --------------------------------------------------------------------


def test_previous_period_comparison(tmp_path):
    rt = make_runtime(tmp_path / "data")
    q4 = tmp_path / "MOTCUA_2021-Q4.csv"
    q4.write_text(
        "don_vi,ky_bao_cao,ma_chi_tieu,gia_tri\n"
        "MOTCUA,2021-Q4,tthc_tiep_nhan,100\n"
        "MOTCUA,2021-Q4,tthc_da_giai_quyet,90\n"
        "MOTCUA,2021-Q4,tthc_dang_giai_quyet,10\n",
        encoding="utf-8",
    )
    q4_opened = parse_moment("2021-12-06T08:00")
    open_period(rt, period=Period.parse("2021-Q4"), units=["MOTCUA"], now=q4_opened)
    [r] = ingest_files(rt, [q4], now=parse_moment("2021-12-15T09:00"), unit="MOTCUA")
    assert (r.outcome, r.unit, r.period) == ("accepted", "MOTCUA", "2021-Q4")
    open_example(rt)
    ingest_waves(rt)
    assert Period.parse("2022-Q1").previous() == Period.parse("2021-Q4")
    result = consolidate_period(rt, PERIOD)
    table = result.table.set_index("code")
    assert table.at["tthc_tiep_nhan", "value"] == 145
    assert table.at["tthc_tiep_nhan", "previous"] == 100
    assert table.at["tthc_tiep_nhan", "change"] == 45
    assert table.at["tthc_da_giai_quyet", "change"] == 40
    assert pd.isna(table.at["tc_thu_nsnn", "previous"])  # TCKH did not report in Q4
    assert pd.isna(table.at["dt_giai_ngan_pct", "change"])
    # the previous quarter's figures do not leak into this one
    assert result.values["tthc_tiep_nhan"] == 145
    assert result.completeness == "14/14"
