"""Each period's facts and each year's plan figures are inputs in their own files
(config/facts/<report>/<period>.yaml, config/plans/<report>/<year>.yaml), never standing
text: they are read, checked against what the report declares, and a missing one is one
line naming the file and the key to write."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from baocao.config import ConfigError, load_config, read_facts, require_plan
from baocao.periods import Period, parse_moment
from baocao.runtime import build_runtime
from baocao.settings import PROJECT_ROOT, get_settings
from tasks.collect import facts_warning, open_period
from tasks.consolidate import consolidate_period, require_complete
from tasks.render import build_document
from tests.conftest import MANIFEST, PERIOD, edited_config

CONFIG = PROJECT_ROOT / "config"
REPORT = "reports/cchc-quarterly.yaml"
FACTS = "facts/cchc-quarterly/2022-Q1.yaml"
PLANS = "plans/cchc-quarterly/2022.yaml"


def _copy(tmp_path: Path, file: str = REPORT, old: str = "", new: str = "") -> Path:
    return edited_config(tmp_path / "config", file, old, new)


def _refused(call) -> str:
    """The one line a user's mistake gives."""
    with pytest.raises(ConfigError) as exc:
        call()
    msg = str(exc.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


# ---- facts --------------------------------------------------------------------------------


def test_the_bundled_periods_facts_are_read():
    cfg = load_config(CONFIG)
    report = cfg.report("cchc-quarterly")
    facts = read_facts(cfg, report, "2022-Q1")
    assert list(facts) == [f.key for f in report.facts]
    assert facts["cv_tinh"] == "Công văn số 900/UBND-TTHC ngày 03/3/2022"
    assert facts["dot_kiem_tra"] == "đợt 1 trong tháng 5/2022, đợt 2 trong tháng 9/2022"


def test_the_standing_text_cites_no_document_of_the_period():
    text = (CONFIG / REPORT).read_text(encoding="utf-8")
    body = text.split("\nfacts:")[0] + text.split("\nsections:")[1]  # the texts, not examples
    for cited in ("900/UBND-TTHC", "2108/QĐ-UBND", "3133/QĐ-UBND", "220/UBND", "09/KH-UBND"):
        assert cited not in body
    assert "tháng 5/2022" not in body and "\nplans:" not in text


def test_facts_are_printed_where_the_text_names_them(example_runtime):
    rt = example_runtime
    result = consolidate_period(rt, PERIOD)
    assert result.facts == read_facts(rt.cfg, rt.report, PERIOD.code)
    q2 = dataclasses.replace(
        result,
        facts={**result.facts, "cv_tinh": "Công văn số 1234/UBND-TTHC ngày 02/6/2022"},
    )
    doc = build_document(rt.env, q2, rt.report, rt.cfg.body, dt.date(2022, 4, 5))
    assert doc.blocks[0].text.startswith("Thực hiện Công văn số 1234/UBND-TTHC ngày 02/6/2022 ")
    assert "900/UBND-TTHC" not in "".join(b.text for b in doc.blocks)


def test_a_typo_in_a_fact_name_is_refused_at_load_with_the_closest_name(tmp_path):
    root = _copy(tmp_path, REPORT, "{{ d.qd_kh_huyen }}", "{{ d.qd_kh_huyn }}")
    msg = _refused(lambda: load_config(root))
    assert "cchc-quarterly.yaml" in msg and "`d.qd_kh_huyn`" in msg
    assert "`d.qd_kh_huyen`?" in msg


def test_a_fact_declared_twice_is_refused(tmp_path):
    root = _copy(tmp_path, REPORT, "  - key: qd_kh_tinh\n", "  - key: cv_tinh\n")
    assert "fact 'cv_tinh' appears twice" in _refused(lambda: load_config(root))


def test_a_missing_facts_file_names_the_file_and_its_keys(tmp_path):
    cfg = load_config(_copy(tmp_path))
    msg = _refused(lambda: read_facts(cfg, cfg.report("cchc-quarterly"), "2022-Q2"))
    assert msg.startswith(f"{cfg.root}/facts/cchc-quarterly/2022-Q2.yaml: ")
    assert "cv_tinh, qd_kh_tinh" in msg and "cv_vi_tri_viec_lam" in msg


def test_a_missing_fact_names_the_key_and_what_to_write(tmp_path):
    cfg = load_config(_copy(tmp_path, FACTS, "dot_kiem_tra: đợt 1", "# dot_kiem_tra: đợt 1"))
    msg = _refused(lambda: read_facts(cfg, cfg.report("cchc-quarterly"), "2022-Q1"))
    assert "2022-Q1.yaml: key `dot_kiem_tra`" in msg
    assert "thời gian các đợt kiểm tra CCHC" in msg  # its label
    assert '"đợt 1 trong tháng 5/2022, đợt 2 trong tháng 9/2022"' in msg  # its example


def test_an_unknown_fact_in_the_file_is_refused_with_the_closest_name(tmp_path):
    cfg = load_config(_copy(tmp_path, FACTS, "cv_tinh:", "cv_tinhh:"))
    msg = _refused(lambda: read_facts(cfg, cfg.report("cchc-quarterly"), "2022-Q1"))
    assert "2022-Q1.yaml: key `cv_tinhh`" in msg and "`cv_tinh`?" in msg


def test_publishing_refuses_without_the_periods_facts(example_runtime, tmp_path):
    root = _copy(tmp_path)
    (root / FACTS).unlink()
    cfg = load_config(root)
    result = consolidate_period(example_runtime, PERIOD)
    msg = _refused(lambda: require_complete(result, cfg, cfg.report("cchc-quarterly")))
    assert "facts/cchc-quarterly/2022-Q1.yaml" in msg


def test_opening_a_period_without_its_facts_warns_and_goes_on(tmp_path):
    root = _copy(tmp_path)
    (root / FACTS).unlink()
    rt = build_runtime(
        report_id="cchc-quarterly",
        settings=get_settings(data_dir=tmp_path / "data", config_dir=root),
    )
    opened = open_period(rt, period=PERIOD, units=None, now=parse_moment(str(MANIFEST["open_at"])))
    assert opened["new_requests"] == 14
    assert "facts/cchc-quarterly/2022-Q1.yaml" in opened["facts"]
    assert facts_warning(load_config(CONFIG), rt.report, PERIOD) == ""
    rt.engine.dispose()


# ---- plans --------------------------------------------------------------------------------


def test_the_years_plan_is_read_from_its_own_file():
    cfg = load_config(CONFIG)
    assert cfg.plan("cchc-quarterly", 2022) == {
        "tc_thu_nsnn": 257700,
        "tc_thu_dia_ban": 77500,
        "tc_thu_huyen_xa": 58708,
        "tc_chi_nsnn": 257000,
    }
    assert cfg.plan("cchc-quarterly", 2023) == {}
    assert require_plan(cfg, cfg.report("cchc-quarterly"), 2022) == cfg.plan("cchc-quarterly", 2022)


def test_an_unknown_plan_key_is_refused_at_load_with_the_closest_name(tmp_path):
    msg = _refused(lambda: load_config(_copy(tmp_path, PLANS, "tc_chi_nsnn:", "tc_chi_nsn:")))
    assert "plans/cchc-quarterly/2022.yaml: key `tc_chi_nsn`" in msg
    assert "`tc_chi_nsnn`?" in msg


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        ("tc_chi_nsnn: 257000", "tc_chi_nsnn: nhiều", "phải là số / must be a number"),
        ("tc_chi_nsnn: 257000", "nv_tuyen_dung: 1", "not a numeric indicator"),
    ],
)
def test_a_plan_value_must_be_a_number_of_a_numeric_indicator(tmp_path, old, new, said):
    assert said in _refused(lambda: load_config(_copy(tmp_path, PLANS, old, new)))


def test_a_plan_file_is_named_by_its_year(tmp_path):
    root = _copy(tmp_path)
    (root / PLANS).rename(root / "plans/cchc-quarterly/nam-2022.yaml")
    assert "nam-2022.yaml: tên tệp phải là năm" in _refused(lambda: load_config(root))


def test_plans_inside_the_report_are_refused_with_where_they_go(tmp_path):
    root = _copy(tmp_path, REPORT, "\nsections:", "\nplans: {2022: {tc_thu_nsnn: 1}}\nsections:")
    msg = _refused(lambda: load_config(root))
    assert "key `plans`" in msg and "config/plans/" in msg


def test_a_missing_plan_year_names_the_file_and_its_keys():
    cfg = load_config(CONFIG)
    msg = _refused(lambda: require_plan(cfg, cfg.report("cchc-quarterly"), 2023))
    assert msg.startswith(f"{cfg.root}/plans/cchc-quarterly/2023.yaml: chưa có tệp")
    assert "tc_thu_nsnn, tc_thu_dia_ban, tc_thu_huyen_xa, tc_chi_nsnn" in msg


def test_a_plan_lacking_a_figure_the_report_needs_is_refused_at_publish(example_runtime, tmp_path):
    cfg = load_config(_copy(tmp_path, PLANS, "tc_thu_huyen_xa: 58708\n", ""))
    assert cfg.plan("cchc-quarterly", 2022)["tc_chi_nsnn"] == 257000  # the rest is read
    result = consolidate_period(example_runtime, PERIOD)
    msg = _refused(lambda: require_complete(result, cfg, cfg.report("cchc-quarterly")))
    assert "2022.yaml: thiếu khóa / missing keys: tc_thu_huyen_xa;" in msg


def test_the_plan_reaches_the_derived_figures_and_the_text(example_runtime):
    result = consolidate_period(example_runtime, Period.parse("2022-Q1"))
    assert result.plans["tc_thu_huyen_xa"] == 58708
    assert str(result.values["tc_thu_nsnn_pct"]) == "43.5"
