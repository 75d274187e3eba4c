"""The config folder: the bundled one loads; each broken copy stops with file and key named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from baocao.config import ConfigError, load_config
from baocao.settings import PROJECT_ROOT
from tests.conftest import edited_config

CONFIG = PROJECT_ROOT / "config"
REPORT = "reports/cchc-quarterly.yaml"


def test_bundled_config_loads():
    cfg = load_config(CONFIG)
    assert len(cfg.units) == 15  # 14 for the CCHC report, Thanh tra huyện for tcd-monthly
    assert list(cfg.reports) == ["cchc-quarterly", "tcd-monthly"]
    report = cfg.report("cchc-quarterly")
    assert report.id == "cchc-quarterly"
    assert report.layout.margin_left_mm == 30
    assert cfg.expected_units(report) == [u.code for u in cfg.units if u.code != "TTRA"]
    communes = cfg.resolve_owners(("@communes",))
    assert len(communes) == 9 and "SON-LIEN" in communes
    assert [i.code for i in cfg.indicators_of(report, "MOTCUA")] == [
        "tthc_tiep_nhan",
        "tthc_da_giai_quyet",
        "tthc_dang_giai_quyet",
    ]


def test_unknown_report_id_names_the_known_ones():
    with pytest.raises(ConfigError, match="cchc-quarterly"):
        load_config(CONFIG).report("nope")


def _broken(tmp_path: Path, file: str, old: str, new: str) -> Path:
    """A copy of the bundled config with one text edit in `file`."""
    return edited_config(tmp_path / "config", file, old, new)


def _error(root: Path) -> str:
    with pytest.raises(ConfigError) as exc:
        load_config(root)
    return str(exc.value)


def test_unknown_owner_unit(tmp_path):
    msg = _error(_broken(tmp_path, REPORT, "owners: [NV]}", "owners: [XX]}"))
    assert "cchc-quarterly.yaml" in msg
    assert "nv_nv_hoan_thanh" in msg and "`owners`" in msg and "'XX'" in msg


def test_unknown_owner_group(tmp_path):
    msg = _error(_broken(tmp_path, REPORT, '"@communes"]', '"@villages"]'))
    assert "cchc-quarterly.yaml" in msg and "'@villages'" in msg


def test_sum_rule_with_unknown_indicator(tmp_path):
    root = _broken(
        tmp_path,
        REPORT,
        "parts: [tc_chi_huyen, tc_chi_xa]",
        "parts: [tc_chi_huyen, tc_chi_khac]",
    )
    msg = _error(root)
    assert "cchc-quarterly.yaml" in msg
    assert "sum_rules" in msg and "tc_tong_chi" in msg and "'tc_chi_khac'" in msg


def test_bad_yaml_syntax(tmp_path):
    msg = _error(_broken(tmp_path, "schedule.yaml", "open_hour: 8", "open_hour: [8"))
    assert "schedule.yaml" in msg
    assert "not valid YAML" in msg
    assert "line " in msg


def test_contact_with_neither_url_nor_email(tmp_path):
    root = _broken(
        tmp_path,
        "units.yaml",
        "contacts: [{email: phongnoivu@sontay.quangngai.gov.vn, tags: [cchc]}]",
        "contacts: [{tags: [cchc]}]",
    )
    msg = _error(root)
    assert "units.yaml" in msg
    assert "`units.0.contacts.0`" in msg
    assert "url" in msg and "email" in msg


def test_contact_with_bad_email(tmp_path):
    root = _broken(
        tmp_path, "units.yaml", "email: phongtuphap@sontay.quangngai.gov.vn", "email: phongtuphap"
    )
    msg = _error(root)
    assert "units.yaml" in msg and "`units.1.contacts.0`" in msg and "'phongtuphap'" in msg


def test_margin_out_of_range(tmp_path):
    msg = _error(_broken(tmp_path, REPORT, "margin_left_mm: 30", "margin_left_mm: 10"))
    assert "cchc-quarterly.yaml" in msg
    assert "`layout.margin_left_mm`" in msg
    assert "30" in msg


def test_jinja_syntax_error_in_paragraph(tmp_path):
    root = _broken(tmp_path, REPORT, "{{ f.nv_tien_do_pct }}", "{{ f.nv_tien_do_pct }")
    msg = _error(root)
    assert "cchc-quarterly.yaml" in msg
    assert "`sections[0].paragraphs[1]`" in msg
    assert "template error" in msg


def test_unknown_key_is_refused(tmp_path):
    msg = _error(_broken(tmp_path, "schedule.yaml", "open_hour: 8", "open_hour: 8\nopen_hours: 9"))
    assert "schedule.yaml" in msg and "`open_hours`" in msg


def test_missing_units_yaml(tmp_path):
    root = tmp_path / "config"
    shutil.copytree(CONFIG, root)
    (root / "units.yaml").unlink()
    msg = _error(root)
    assert "units.yaml" in msg and "missing" in msg


def test_missing_config_folder(tmp_path):
    msg = _error(tmp_path / "nowhere")
    assert "nowhere" in msg


def test_escalation_to_an_unknown_office(tmp_path):
    msg = _error(
        _broken(
            tmp_path,
            "schedule.yaml",
            "escalate_to: [head, chairman_office]",
            "escalate_to: [head, chairman_ofice]",
        )
    )
    assert "schedule.yaml" in msg and "reminders.escalate_to" in msg and "chairman_ofice" in msg


SCHEDULE_KEYS = [
    "open_working_days_before_cutoff",
    "unit_deadline_working_days_after_cutoff",
    "report_deadline_working_days_after_cutoff",
    "province_report_day",
]


def _without_line(tmp_path: Path, file: str, key: str) -> Path:
    """A copy of the bundled config with the line of `key` left out of `file`."""
    root = tmp_path / "config"
    shutil.copytree(CONFIG, root)
    path = root / file
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [ln for ln in lines if not ln.lstrip().startswith(f"{key}:")]
    assert len(kept) == len(lines) - 1, f"{key} not once in {file}"
    path.write_text("".join(kept), encoding="utf-8")
    return root


@pytest.mark.parametrize("key", SCHEDULE_KEYS)
def test_a_missing_deadline_is_required_not_defaulted(tmp_path, key):
    msg = _error(_without_line(tmp_path, "schedule.yaml", key))
    assert msg == f"{tmp_path / 'config' / 'schedule.yaml'}: key `{key}`: bắt buộc / required"


@pytest.mark.parametrize(
    "key", ["working_days_before", "overdue_every_working_days", "escalate_after_working_days"]
)
def test_a_missing_reminder_policy_key_is_required(tmp_path, key):
    msg = _error(_without_line(tmp_path, "schedule.yaml", key))
    assert "schedule.yaml" in msg and f"`reminders.{key}`: bắt buộc / required" in msg


def test_the_reminders_block_is_required(tmp_path):
    root = tmp_path / "config"
    shutil.copytree(CONFIG, root)
    path = root / "schedule.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.index("reminders:")] + "approval_required: false\n")
    assert "`reminders`: bắt buộc / required" in _error(root)


@pytest.mark.parametrize(
    ("old", "new", "key", "bound"),  # the message quotes the value given (after `bound`)
    [
        ("unit_deadline_working_days_after_cutoff: 2", "unit_deadline_working_days_after_cutoff: -2", "unit_deadline_working_days_after_cutoff", "≥ 0"),
        ("report_deadline_working_days_after_cutoff: 4", "report_deadline_working_days_after_cutoff: -1", "report_deadline_working_days_after_cutoff", "≥ 0"),
        ("open_working_days_before_cutoff: 5", "open_working_days_before_cutoff: 0", "open_working_days_before_cutoff", "≥ 1"),
        ("working_days_before: [7, 3, 1]", "working_days_before: [7, 0, -1]", "reminders.working_days_before.1", "> 0"),
        ("overdue_every_working_days: 2", "overdue_every_working_days: 0", "reminders.overdue_every_working_days", "≥ 1"),
        ("escalate_after_working_days: 3", "escalate_after_working_days: -3", "reminders.escalate_after_working_days", "≥ 0"),
        ("approval_timeout_hours: 72", "approval_timeout_hours: 0", "approval_timeout_hours", "> 0"),
        ("province_report_day: 20", "province_report_day: 31", "province_report_day", "≤ 28"),
    ],
)  # fmt: skip
def test_impossible_schedule_values_are_refused(tmp_path, old, new, key, bound):
    msg = _error(_broken(tmp_path, "schedule.yaml", old, new))
    assert "schedule.yaml" in msg and f"`{key}`: phải {bound}" in msg
    got = new.replace("[7, 0, -1]", "0").split(": ")[1]
    assert f"(có / got {got})" in msg


def test_a_deadline_in_words_is_refused(tmp_path):
    msg = _error(
        _broken(
            tmp_path,
            "schedule.yaml",
            "unit_deadline_working_days_after_cutoff: 2",
            "unit_deadline_working_days_after_cutoff: two",
        )
    )
    assert "`unit_deadline_working_days_after_cutoff`: phải là số nguyên" in msg and "'two'" in msg


# ---- the person to ask, the languages of messages ----------------------------------------


def test_the_person_to_ask_is_required(tmp_path):
    root = _broken(tmp_path, "body.yaml", "contact_person:", "contact_person_old:")
    msg = _error(root)
    assert "body.yaml" in msg and "`contact_person`: bắt buộc / required" in msg


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        ('phone: "0255 3863 125"', 'phone: "gọi tôi"', "không phải số điện thoại"),
        ('phone: "0255 3863 125"', 'phone: "12"', "không phải số điện thoại"),
        ("email: cchc@sontay.quangngai.gov.vn", "email: cchc-at-sontay", "không phải địa chỉ thư"),
    ],
)
def test_the_person_to_ask_is_checked(tmp_path, old, new, said):
    msg = _error(_broken(tmp_path, "body.yaml", old, new))
    assert "body.yaml" in msg and "contact_person" in msg and said in msg


def test_a_report_names_its_own_person_to_ask(tmp_path):
    root = _broken(
        tmp_path,
        REPORT,
        "symbol: BC-UBND\n",
        "symbol: BC-UBND\ncontact_person: {name: Lê Văn Bình, phone: '0912 345 678', "
        "email: binh@sontay.quangngai.gov.vn}\n",
    )
    cfg = load_config(root)
    assert cfg.contact_for(cfg.report("cchc-quarterly")).name == "Lê Văn Bình"
    assert cfg.contact_for(None).name == "Nguyễn Thị Thu Hà"


@pytest.mark.parametrize(
    ("languages", "said"),
    [("[en]", "Vietnamese comes first"), ("[vi, vi]", "appears twice"), ("[vi, fr]", "languages")],
)
def test_languages_are_checked(tmp_path, languages, said):
    msg = _error(_broken(tmp_path, "body.yaml", "languages: [vi]", f"languages: {languages}"))
    assert "body.yaml" in msg and said in msg


def test_typo_in_a_figure_name_is_refused_with_the_closest_name(tmp_path):
    root = _broken(tmp_path, REPORT, "{{ f.tthc_tiep_nhan }}", "{{ f.tthc_tiep_nhann }}")
    msg = _error(root)
    assert "cchc-quarterly.yaml" in msg
    assert "`sections[" in msg and ".paragraphs[" in msg
    assert "`f.tthc_tiep_nhann`" in msg
    assert "`f.tthc_tiep_nhan`?" in msg  # the suggestion


@pytest.mark.parametrize(
    ("old", "new", "bad"),
    [
        ("{{ t.nv_tuyen_dung }}", "{{ t.nv_vi_pham }}", "t.nv_vi_pham"),  # a number, not a text
        ("{{ p.tc_thu_huyen_xa }}", "{{ p.nv_tuyen_dung }}", "p.nv_tuyen_dung"),  # a text: no plan
        ("{{ d.cv_tinh }}", "{{ d.cv_tinhh }}", "d.cv_tinhh"),  # not a declared fact
        ("v.tthc_pakn == 0", "v['tthc_pakm'] == 0", "v.tthc_pakm"),  # subscript form
        ("c.tthc_pakn.complete", "c.tthc_pak.complete", "c.tthc_pak"),
    ],
)
def test_each_prefix_is_checked_against_what_it_may_name(tmp_path, old, new, bad):
    msg = _error(_broken(tmp_path, REPORT, old, new))
    assert f"`{bad}`" in msg


def test_the_bundled_texts_name_only_known_figures():
    from jinja2 import Environment

    from baocao.config import _figure_refs

    report = load_config(CONFIG).report("cchc-quarterly")
    refs = _figure_refs(Environment().parse(report.footnotes[2]))
    assert ("f", "dt_von_tinh") in refs and ("c", "dt_giai_ngan_huyen") in refs
