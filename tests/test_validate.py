"""Validation of observations against the bundled definition: types, ranges, rules."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from baocao.config import load_config
from baocao.settings import PROJECT_ROOT
from tasks.validate import FINDING_COLUMNS, parse_date, parse_number, validate

CFG = load_config(PROJECT_ROOT / "config")
REPORT = CFG.report("cchc-quarterly")
PLANS = CFG.plan(REPORT.id, 2022)
FIGURES = yaml.safe_load(
    (PROJECT_ROOT / "examples/son-tay-2022-q1/figures.yaml").read_text(encoding="utf-8")
)
FIRST_ROW = 8


def observations(unit: str, values: dict, sub: str = "s1") -> pd.DataFrame:
    """The unit's form as observations: one row per owned indicator, cells BaoCao!E8..."""
    rows = [
        {
            "sub": sub,
            "unit": unit,
            "indicator": ind.code,
            "raw": values.get(ind.code),
            "cell": f"BaoCao!E{FIRST_ROW + n}",
        }
        for n, ind in enumerate(CFG.indicators_of(REPORT, unit))
    ]
    return pd.DataFrame(rows, columns=["sub", "unit", "indicator", "raw", "cell"])


def cell_of(unit: str, code: str) -> str:
    codes = [i.code for i in CFG.indicators_of(REPORT, unit)]
    return f"BaoCao!E{FIRST_ROW + codes.index(code)}"


def findings_for(unit: str, **changes) -> pd.DataFrame:
    _, findings = validate(observations(unit, {**FIGURES[unit], **changes}), REPORT, CFG, PLANS)
    return findings


def only(findings: pd.DataFrame) -> dict:
    assert len(findings) == 1, findings[["rule", "indicator", "message_en"]].to_dict("records")
    return findings.iloc[0].to_dict()


@pytest.mark.parametrize("unit", sorted(FIGURES))
def test_example_figures_pass(unit):
    values, findings = validate(observations(unit, FIGURES[unit]), REPORT, CFG, PLANS)
    assert findings.empty, findings.to_dict("records")
    assert list(findings.columns) == FINDING_COLUMNS
    assert len(values) == len(CFG.indicators_of(REPORT, unit))


def test_example_tckh_typed_values():
    values, _ = validate(observations("TCKH", FIGURES["TCKH"]), REPORT, CFG, PLANS)
    v = values.set_index("indicator")
    assert v.at["tc_thu_nsnn", "value_num"] == 112108
    assert v.at["dt_giai_ngan", "value_num"] == pytest.approx(2266.02)
    assert v.at["tc_den_ngay", "value_text"] == "2022-02-21"


def test_sum_rule_broken_by_tc_chi_xa():
    f = only(findings_for("TCKH", tc_chi_xa=5719))
    assert f["rule"] == "tc_tong_chi"
    assert f["severity"] == "error"
    assert f["unit"] == "TCKH" and f["indicator"] == "tc_chi_nsnn"
    cell = cell_of("TCKH", "tc_chi_nsnn")
    assert f["cell"] == cell
    assert f["message_vi"] == (
        "Ô E12, Tổng chi ngân sách Nhà nước: 40.898, nhưng Chi ngân sách huyện + "
        "Chi ngân sách xã = 35.107 + 5.719 = 40.826"
    )
    assert (f["label"], f["value"], f["expected"]) == (
        "Tổng chi ngân sách Nhà nước",
        "40.898",
        "Chi ngân sách huyện + Chi ngân sách xã = 35.107 + 5.719 = 40.826",
    )
    assert "tc_tong_chi" not in f["message_en"] and "BaoCao" not in f["message_en"]


def test_a_decimal_total_never_reads_as_equal_to_its_parts():
    """A total of 40.826,4 against parts adding up to 40.826 prints its decimal: the finding
    does not read "40.826, nhưng ... = 40.826"."""
    f = only(findings_for("TCKH", tc_chi_nsnn=40826.4, tc_chi_xa=5719))
    assert f["value"] == "40.826,4"
    assert f["expected"].endswith("= 35.107 + 5.719 = 40.826")
    f = only(findings_for("TCKH", tc_chi_nsnn=40826.0007, tc_chi_xa=5719))
    assert f["value"] == "40.826,0007" and f["expected"].endswith(" = 40.826")


def test_a_part_just_above_its_whole_prints_both_apart():
    found = findings_for("TCKH", dt_giai_ngan=65214.0004).set_index("rule")
    f = found.loc["dt_giai_ngan"]
    assert f["message_vi"] == (
        "Ô E16, Tổng vốn đầu tư đã giải ngân: 65.214,0004, nhưng không được lớn hơn "
        "Tổng vốn đầu tư xây dựng cơ bản = 65.214"
    )
    plausible = found.loc["plausible:dt_giai_ngan_pct", "message_vi"]
    assert "= 100,000001%, cao hơn mức hợp lý 100%" in plausible


@pytest.mark.parametrize(
    "changes",
    [
        {"tc_chi_xa": 5719},
        {"tc_thu_nsnn": "abc"},
        {"tc_den_ngay": "31/02/2022"},
        {"tc_kl_thanh_tra_ton": 1.5},
        {"tc_kl_kiem_toan_ton": -1},
        {"tc_thu_nsnn": None},
        {"dt_giai_ngan": 999999},
    ],
)
def test_findings_carry_no_internal_code(changes):
    for f in findings_for("TCKH", **changes).to_dict("records"):
        text = f["message_vi"] + f["message_en"]
        assert "BaoCao!" not in text and f["indicator"] not in text
        assert "_" not in f["rule"] or f["rule"] not in text  # a rule of the report's own
        assert f["message_vi"].startswith("Ô E") and f["label"] in f["message_vi"]


def test_sum_rule_counts_per_submission():
    good = observations("MOTCUA", FIGURES["MOTCUA"], sub="a")
    bad = observations(
        "SON-BUA", {**FIGURES["SON-BUA"], "tthc_da_giai_quyet": 7}, sub="b"
    )  # 7 != 7 + 1
    _, findings = validate(pd.concat([good, bad], ignore_index=True), REPORT, CFG, PLANS)
    f = only(findings)
    assert (f["sub"], f["unit"], f["rule"]) == ("b", "SON-BUA", "tthc_tong_ho_so")


def test_text_in_a_number_is_a_type_error():
    f = only(findings_for("TCKH", tc_thu_nsnn="abc"))
    assert (f["rule"], f["severity"], f["indicator"]) == ("type", "error", "tc_thu_nsnn")
    assert f["cell"] == cell_of("TCKH", "tc_thu_nsnn")
    assert f["message_vi"] == (
        "Ô E9, Tổng thu ngân sách Nhà nước: “abc”, nhưng ô này cần một số, ví dụ 1.234 hoặc 1.234,5"
    )


def test_bad_date_is_a_type_error():
    f = only(findings_for("TCKH", tc_den_ngay="31/02/2022"))
    assert (f["rule"], f["indicator"]) == ("type", "tc_den_ngay")
    assert "ngày/tháng/năm, ví dụ 21/02/2022" in f["message_vi"]


def test_fraction_in_an_integer():
    f = only(findings_for("TCKH", tc_kl_thanh_tra_ton=1.5))
    assert (f["rule"], f["severity"], f["indicator"]) == ("integer", "error", "tc_kl_thanh_tra_ton")


def test_negative_is_out_of_range():
    f = only(findings_for("TCKH", tc_kl_kiem_toan_ton=-1))
    assert (f["rule"], f["severity"], f["indicator"]) == ("range", "error", "tc_kl_kiem_toan_ton")


def test_missing_required_value():
    f = only(findings_for("TCKH", tc_thu_nsnn=None))
    assert (f["rule"], f["severity"], f["indicator"]) == ("required", "error", "tc_thu_nsnn")
    assert f["cell"] == cell_of("TCKH", "tc_thu_nsnn")


def test_required_row_absent_from_the_file():
    obs = observations("VHTT", FIGURES["VHTT"]).iloc[:1]
    _, findings = validate(obs, REPORT, CFG, PLANS)
    f = only(findings)
    assert (f["rule"], f["indicator"], f["cell"]) == ("required", "vhtt_chu_ky_so_pct", "")


def test_blank_optional_text_is_fine():
    assert findings_for("TP", tp_nguon="  ").empty


def test_percent_above_100_is_out_of_range():
    f = only(findings_for("VHTT", vhtt_vb_dien_tu_pct=120))
    assert (f["rule"], f["indicator"]) == ("range", "vhtt_vb_dien_tu_pct")
    assert f["message_vi"].endswith(": 120%, nhưng giá trị không được lớn hơn 100%")


def test_percent_as_vietnamese_text():
    values, findings = validate(
        observations("VHTT", {"vhtt_vb_dien_tu_pct": "43,5%", "vhtt_chu_ky_so_pct": "100%"}),
        REPORT,
        CFG,
        PLANS,
    )
    assert findings.empty
    assert values.set_index("indicator").at["vhtt_vb_dien_tu_pct", "value_num"] == 43.5


def test_not_above_rule():
    findings = findings_for("NV", nv_nv_hoan_thanh=12)  # 12 done of 11 planned
    assert set(zip(findings["rule"], findings["severity"], strict=True)) == {
        ("nv_tien_do", "error"),
        ("plausible:nv_tien_do_pct", "warning"),  # 109,1% > 100%
    }
    assert set(findings["indicator"]) == {"nv_nv_hoan_thanh"}


def test_indicator_not_on_the_form_is_a_warning():
    obs = observations("VHTT", FIGURES["VHTT"])
    extra = pd.DataFrame(
        [
            {
                "sub": "s1",
                "unit": "VHTT",
                "indicator": "tthc_tiep_nhan",
                "raw": 5,
                "cell": "BaoCao!E10",
            }
        ]
    )
    values, findings = validate(pd.concat([obs, extra], ignore_index=True), REPORT, CFG, PLANS)
    f = only(findings)
    assert (f["rule"], f["severity"], f["indicator"]) == (
        "unknown_indicator",
        "warning",
        "tthc_tiep_nhan",
    )
    assert f["message_vi"].startswith("Ô E10, mã chỉ tiêu “tthc_tiep_nhan”: ")
    assert "tthc_tiep_nhan" not in set(values["indicator"])


def test_implausible_derived_percentage_is_a_warning():
    f = only(findings_for("TCKH", tc_thu_nsnn=600000))
    assert f["rule"] == "plausible:tc_thu_nsnn_pct"
    assert f["severity"] == "warning"
    assert f["cell"] == cell_of("TCKH", "tc_thu_nsnn")


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        ("2.266,020", 2266.02),
        ("112.108", 112108),
        ("43,5%", 43.5),
        (2266.02, 2266.02),
        (112108, 112108),
        ("1 234", 1234),
        ("-5", -5),
        ("2266.02", 2266.02),
    ],
)
def test_parse_number(raw, number):
    assert parse_number(raw) == pytest.approx(number)


@pytest.mark.parametrize("raw", ["", "   ", None, "abc", True, float("nan"), "1,2,3"])
def test_parse_number_gives_none(raw):
    assert parse_number(raw) is None


def test_parse_number_keeps_a_float_unchanged():
    assert parse_number(2266.02) == 2266.02


def test_parse_date():
    import datetime as dt

    for raw in ("21/02/2022", "2022-02-21", "21.02.2022", dt.date(2022, 2, 21)):
        assert parse_date(raw) == dt.date(2022, 2, 21)
    assert parse_date(dt.datetime(2022, 2, 21, 8, 0)) == dt.date(2022, 2, 21)
    assert parse_date("21 tháng 2") is None


# ---- percentages typed the Excel way, and jumps against the previous period -------------------


def previous(unit: str, values: dict, period: str | None = "2021-Q4") -> pd.DataFrame:
    """The unit's figures of the previous period, as the caller loads them from the store."""
    rows = [{"unit": unit, "indicator": k, "value": float(v)} for k, v in values.items()]
    frame = pd.DataFrame(rows, columns=["unit", "indicator", "value"])
    return frame.assign(period=period) if period else frame


def test_a_percent_cell_is_read_as_a_percentage():
    obs = observations("VHTT", {"vhtt_vb_dien_tu_pct": 0.9, "vhtt_chu_ky_so_pct": 1})
    obs["percent_cell"] = True  # both cells in Excel's percent format: 90 %, 100 %
    values, findings = validate(obs, REPORT, CFG, PLANS)
    assert findings.empty, findings.to_dict("records")
    got = values.set_index("indicator")["value_num"]
    assert got["vhtt_vb_dien_tu_pct"] == 90 and got["vhtt_chu_ky_so_pct"] == 100


def test_a_percent_cell_only_scales_percentages():
    obs = observations("NV", {**FIGURES["NV"], "nv_nv_tinh_giao_pct": 0.07})
    obs["percent_cell"] = obs["indicator"].isin(["nv_nv_tinh_giao_pct", "nv_nv_hoan_thanh"])
    values, findings = validate(obs, REPORT, CFG, PLANS)
    assert findings.empty, findings.to_dict("records")
    got = values.set_index("indicator")["value_num"]
    assert got["nv_nv_tinh_giao_pct"] == 7  # not 7.000000000000001
    assert got["nv_nv_hoan_thanh"] == 11  # a count in a % cell stays what it is


def test_a_percent_cell_out_of_range_names_the_percentage():
    obs = observations("VHTT", {"vhtt_vb_dien_tu_pct": 1.5, "vhtt_chu_ky_so_pct": 1})
    obs["percent_cell"] = True
    f = only(validate(obs, REPORT, CFG, PLANS)[1])
    assert (f["rule"], f["severity"]) == ("range", "error")
    assert "150" in f["message_vi"]


def test_a_fraction_typed_for_a_percentage_is_a_warning():
    obs = observations("VHTT", {"vhtt_vb_dien_tu_pct": 0.9, "vhtt_chu_ky_so_pct": 100})
    before = previous("VHTT", {"vhtt_vb_dien_tu_pct": 85, "vhtt_chu_ky_so_pct": 100})
    values, findings = validate(obs, REPORT, CFG, PLANS, before)
    f = only(findings)
    assert (f["rule"], f["severity"], f["indicator"]) == (
        "percent_fraction",
        "warning",
        "vhtt_vb_dien_tu_pct",
    )
    assert f["cell"] == cell_of("VHTT", "vhtt_vb_dien_tu_pct")
    assert "có thể đã nhập 0,9 thay vì 90%" in f["message_vi"]
    assert "kỳ trước (Quý IV/2021) là 85%" in f["message_vi"]
    assert "vhtt_" not in f["message_vi"]  # the label, not the code
    assert values.set_index("indicator").at["vhtt_vb_dien_tu_pct", "value_num"] == 0.9


@pytest.mark.parametrize(
    ("now", "before"),
    [(0.9, 1), (0.9, None), (1.5, 85), (0, 85), (50, 85)],
)
def test_no_fraction_warning_without_reason(now, before):
    obs = observations("VHTT", {"vhtt_vb_dien_tu_pct": now, "vhtt_chu_ky_so_pct": 100})
    prev = {} if before is None else {"vhtt_vb_dien_tu_pct": before}
    _, findings = validate(obs, REPORT, CFG, PLANS, previous("VHTT", prev))
    assert "percent_fraction" not in set(findings["rule"])


def test_a_tenfold_jump_is_a_warning_not_a_rejection():
    figures = {**FIGURES["TCKH"], "tc_kl_thanh_tra_ton": 20}
    before = previous("TCKH", {"tc_kl_thanh_tra_ton": 2, "tc_thu_nsnn": 98765.4})
    _, findings = validate(observations("TCKH", figures), REPORT, CFG, PLANS, before)
    f = only(findings)
    assert (f["rule"], f["severity"], f["indicator"]) == ("jump", "warning", "tc_kl_thanh_tra_ton")
    assert f["cell"] == cell_of("TCKH", "tc_kl_thanh_tra_ton")
    assert "tăng gấp 10 lần so với kỳ trước (Quý IV/2021: 2)" in f["message_vi"]
    assert "Số kết luận thanh tra chưa khắc phục xong" in f["message_vi"]
    assert (findings["severity"] == "error").sum() == 0


def test_a_fall_to_a_hundredth_is_a_warning():
    figures = {**FIGURES["TCKH"], "tc_thu_nsnn": 1121.08, "tc_thu_dia_ban": 248.77}
    before = previous("TCKH", {"tc_thu_nsnn": 112108, "tc_thu_dia_ban": 24877}, period=None)
    _, findings = validate(observations("TCKH", figures), REPORT, CFG, PLANS, before)
    jumps = findings[findings["rule"] == "jump"].set_index("indicator")
    assert set(jumps.index) == {"tc_thu_nsnn", "tc_thu_dia_ban"}
    assert set(jumps["severity"]) == {"warning"}
    assert (
        "giảm còn 1/100 so với kỳ trước (kỳ trước: 112.108)"
        in jumps.at["tc_thu_nsnn", "message_vi"]
    )
    assert "1.121,08" in jumps.at["tc_thu_nsnn", "message_vi"]


@pytest.mark.parametrize(
    ("now", "before"),
    [(19, 2), (3, 299), (0, 5), (5, 0), (2, None)],  # x9.5, /99.7, zero either side, no figure
)
def test_no_jump_warning_below_the_thresholds_or_from_zero(now, before):
    figures = {**FIGURES["TCKH"], "tc_kl_thanh_tra_ton": now}
    prev = {} if before is None else {"tc_kl_thanh_tra_ton": before}
    _, findings = validate(
        observations("TCKH", figures), REPORT, CFG, PLANS, previous("TCKH", prev)
    )
    assert findings.empty, findings.to_dict("records")


def test_another_units_previous_figures_do_not_count():
    figures = {**FIGURES["TCKH"], "tc_kl_thanh_tra_ton": 20}
    before = previous("NV", {"tc_kl_thanh_tra_ton": 2})
    assert validate(observations("TCKH", figures), REPORT, CFG, PLANS, before)[1].empty
