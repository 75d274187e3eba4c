"""Today's province as a second bundled configuration (issue 9, item 6): UBND tỉnh Quảng Ngãi
collecting from its 96 communes, wards and special zone and from its departments, for the same
two reports as the district (cchc-quarterly, tcd-monthly). The config loads, its folder is
allowed like the bundled config/, and a quarter runs on it with the plain stage functions:
every unit asked, most return (an .xlsx each, a group of communes in one CSV, a rejected file
and its correction, a few late), a few never do; the sums are those of what came back, the
partial ones say so, and the report goes out once the chairman approves it. A month of the
citizen-reception report runs the same way, and a commune late on both reports on the same
day gets one reminder naming both."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import sys
from decimal import Decimal

import pytest
import yaml
from docx import Document as DocxDocument
from sqlmodel import select

from baocao import forms, vnformat
from baocao.config import ConfigError, load_config, read_facts
from baocao.db import session_scope
from baocao.mailcatcher import MailCatcher
from baocao.models import OutboxMessage
from baocao.periods import Period, end_of_day, parse_moment
from baocao.runtime import allowed_config_dir, build_runtime
from baocao.settings import PROJECT_ROOT, get_settings
from tasks.collect import open_period, period_dates
from tests.conftest import request_tokens

DAY = dt.timedelta(days=1)

PROVINCE = PROJECT_ROOT / "examples" / "quang-ngai-2026" / "config"
PERIOD = Period.parse("2026-Q4")
MONTH = Period.parse("2026-10")
CCHC, TCD = "cchc-quarterly", "tcd-monthly"
CHU_TICH = "chutich@quangngai.gov.vn"
TCD_DEPTS = ["TTT", "BTCD"]  # Thanh tra tỉnh, Ban Tiếp công dân tỉnh: the monthly report's

# what the departments return (consistent with the report's sum and not-above rules)
DEPARTMENTS = {
    "SNV": {"nv_nv_hoan_thanh": 18, "nv_nv_ke_hoach": 20, "nv_dot_kiem_tra": 2, "nv_vi_pham": 0},
    "VPUBND": {"nv_nv_cp_giao_pct": 96.5},
    "STP": {"tp_vb_ban_hanh": 14, "tp_vb_ra_soat": 120, "tp_nguon": "Báo cáo số 301/BC-STP"},
    "TTPVHCC": {"tthc_tiep_nhan": 5210, "tthc_da_giai_quyet": 4980, "tthc_dang_giai_quyet": 230},
    "STC": {
        "tc_den_ngay": dt.date(2026, 11, 30),
        "tc_thu_nsnn": 29_800_000,
        "tc_thu_dia_ban": 27_400_000,
        "tc_thu_dia_phuong": 19_600_000,
        "tc_chi_nsnn": 31_200_000,
        "tc_chi_tinh": 18_700_000,
        "tc_chi_xa": 12_500_000,
        "dt_von": 9_600_000,
        "dt_giai_ngan": 6_912_500.5,
        "dt_von_can_doi": 5_100_000,
        "dt_giai_ngan_can_doi": 3_825_000,
        "dt_von_tinh": 3_400_000,
        "dt_giai_ngan_tinh": 2_550_000,
        "dt_von_xa": 1_700_000,
        "dt_giai_ngan_xa": 1_275_000,
        "tc_kl_thanh_tra_ton": 3,
        "tc_kl_kiem_toan_ton": 1,
        "tc_dv_tong": 412,
        "tc_dv_tu_chu": 380,
        "tc_dv_tu_dam_bao": 41,
        "tc_dv_nsnn_dam_bao": 339,
    },
    "SKHCN": {"vhtt_vb_dien_tu_pct": 98.7, "vhtt_chu_ky_so_pct": 100},
}
MISSING = ["XA-040", "XA-077", "PH-004", "XA-013"]  # never return
LATE = ["XA-020", "XA-058", "DK-001"]  # return after the units' deadline
BY_CSV = [f"XA-{n:03d}" for n in range(60, 75) if f"XA-{n:03d}" not in MISSING]  # one CSV
FIXED = "XA-010"  # first file does not add up, then a correction


def commune_figures(code: str) -> dict[str, int]:
    """A commune's dossiers, different for each unit (what it returns)."""
    n = int(code.split("-")[1]) + {"XA": 0, "PH": 200, "DK": 400}[code[:2]]
    received = 40 + 7 * n
    settled = received - (n % 9) - 1
    return {
        "tthc_tiep_nhan": received,
        "tthc_da_giai_quyet": settled,
        "tthc_dang_giai_quyet": received - settled,
        "tthc_pakn": n % 3,
    }


# ---- the configuration -------------------------------------------------------------------


def test_the_province_config_loads_with_its_communes_wards_and_departments():
    cfg = load_config(PROVINCE)
    report = cfg.report(CCHC)
    assert cfg.body.short_name == "UBND tỉnh Quảng Ngãi"
    assert cfg.body.name_lines == ("ỦY BAN NHÂN DÂN", "TỈNH QUẢNG NGÃI")
    groups = {g: cfg.resolve_owners((f"@{g}",)) for g in ("communes", "wards", "special-zones")}
    assert [len(groups[g]) for g in groups] == [86, 9, 1]
    assert sorted(cfg.resolve_owners(("@cap-xa",))) == sorted(sum(groups.values(), []))
    names = [cfg.unit_map[c].name for c in cfg.resolve_owners(("@cap-xa",))]
    assert all(re.match(r"UBND (xã|phường|đặc khu) \S", n) for n in names)
    assert "UBND đặc khu Lý Sơn" in names and len(set(names)) == 96
    # the CCHC report: every unit but the two of the citizen-reception report (6 + 96)
    assert cfg.expected_units(report) == [u.code for u in cfg.units if u.code not in TCD_DEPTS]
    assert len(cfg.units) == 104 and len(cfg.expected_units(report)) == 102
    addresses = [c.email for u in cfg.units for c in u.contacts]
    assert len(set(addresses)) == len(addresses)
    assert all(
        a.endswith(".quangngai.gov.vn") or a.endswith("@quangngai.gov.vn") for a in addresses
    )
    # no district left in what the province prints
    for report_id in (CCHC, TCD):
        texts = (PROVINCE / "reports" / f"{report_id}.yaml").read_text(encoding="utf-8")
        lines = texts.splitlines()
        printed = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
        assert not re.search(r"huyện|Sơn Tây", printed), report_id


def test_the_committed_units_file_is_what_the_script_generates():
    sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
    try:
        import make_province
    finally:
        sys.path.remove(str(PROJECT_ROOT / "scripts"))
    assert make_province.render() == (PROVINCE / "units.yaml").read_text(encoding="utf-8")
    assert make_province.render() == make_province.render()  # deterministic


def test_the_bundled_province_folder_is_allowed_and_its_neighbours_are_not(monkeypatch, tmp_path):
    monkeypatch.delenv("BAOCAO_ALLOWED_CONFIG_DIRS")
    settings = get_settings(data_dir=tmp_path / "data")
    assert allowed_config_dir(PROVINCE, settings) == PROVINCE.resolve()
    assert allowed_config_dir(PROJECT_ROOT / "config", settings) == (PROJECT_ROOT / "config")
    for outside in (PROVINCE.parent, PROJECT_ROOT / "examples", PROJECT_ROOT / "templates"):
        with pytest.raises(ConfigError, match="BAOCAO_ALLOWED_CONFIG_DIRS"):
            allowed_config_dir(outside, settings)
    monkeypatch.setenv("BAOCAO_DATA_DIR", str(tmp_path / "data"))
    assert build_runtime(str(PROVINCE)).cfg.body.place == "Quảng Ngãi"


# ---- a quarter on the province -------------------------------------------------------------


def _filled(
    rt, code: str, token: str, values: dict, deadline: dt.datetime, period: Period = PERIOD
) -> bytes:
    """The unit's form as it comes back filled in (its request's form code in it)."""
    return forms.build_form(
        body=rt.cfg.body,
        report=rt.report,
        unit=rt.cfg.unit_map[code],
        period=period,
        indicators=rt.cfg.indicators_of(rt.report, code),
        token=token,
        deadline=deadline,
        prefill=values,
    )


def _csv(codes: list[str], tokens: dict[str, str]) -> str:
    """One CSV carrying several communes' figures, each row with its unit's form code."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["don_vi", "ky_bao_cao", "ma_chi_tieu", "gia_tri", "ma_bieu_mau"])
    for code in codes:
        for k, v in commune_figures(code).items():
            w.writerow([code, PERIOD.code, k, v, tokens[code]])
    return out.getvalue()


def _code_mailed_to(mail: MailCatcher, address: str) -> str:
    [m] = [m for m in mail.received if m.rcpt == [address] and "Mã duyệt" in m.subject]
    return re.search(r"ông/bà:\D{0,40}?(\d{6,8})", m.text()).group(1)


@pytest.fixture(scope="module")
def quarter(tmp_path_factory):
    """The province's Quý IV/2026 opened, returned (mostly), taken in and consolidated."""
    from tasks.consolidate import consolidate_period
    from tasks.intake import ingest_files

    root = tmp_path_factory.mktemp("province")
    settings = get_settings(data_dir=root / "data", config_dir=PROVINCE)
    rt = build_runtime(report_id=CCHC, settings=settings)
    dates = period_dates(PERIOD, rt.schedule)
    opened = open_period(rt, period=PERIOD, units=None, now=parse_moment(f"{dates.open_day}T08:00"))
    tokens = request_tokens(rt, PERIOD)
    communal = rt.cfg.resolve_owners(("@cap-xa",))
    returned = {c: commune_figures(c) for c in communal if c not in MISSING}
    inbox = root / "returned"
    inbox.mkdir()

    def xlsx(code: str, values: dict, name: str | None = None):
        path = inbox / (name or f"{code}_{PERIOD.code}.xlsx")
        path.write_bytes(_filled(rt, code, tokens[code], values, dates.unit_deadline))
        return path

    on_time = [xlsx(code, values) for code, values in DEPARTMENTS.items()]
    bad = {**returned[FIXED], "tthc_tiep_nhan": returned[FIXED]["tthc_tiep_nhan"] + 5}
    on_time += [xlsx(FIXED, bad, f"{FIXED}_sai.xlsx")]
    on_time += [xlsx(c, v) for c, v in returned.items() if c not in (*LATE, *BY_CSV, FIXED)]
    (inbox / "cac-xa.csv").write_text(_csv(BY_CSV, tokens), encoding="utf-8")
    on_time.append(inbox / "cac-xa.csv")
    results = ingest_files(rt, on_time, now=parse_moment(f"{dates.window_end}T16:00"))
    results += ingest_files(
        rt, [xlsx(FIXED, returned[FIXED])], now=parse_moment(f"{dates.window_end}T17:00")
    )
    late_day = dates.unit_last_day + dt.timedelta(days=2)
    results += ingest_files(
        rt, [xlsx(c, returned[c]) for c in LATE], now=parse_moment(f"{late_day}T09:00")
    )
    result = consolidate_period(rt, PERIOD)
    return {
        "rt": rt,
        "opened": opened,
        "results": results,
        "returned": returned,
        "result": result,
        "root": root,
    }


@pytest.mark.slow
def test_every_unit_is_asked_with_its_own_form(quarter):
    rt, opened = quarter["rt"], quarter["opened"]
    assert (opened["units"], opened["new_requests"], opened["queued_messages"]) == (102, 102, 102)
    assert opened["facts"] == ""  # the quarter's facts file is bundled
    folder = rt.settings.forms_dir / rt.report.id / PERIOD.code
    assert len(list(folder.glob("*.xlsx"))) == 102
    assert (folder / "DK-001_2026-Q4.xlsx").is_file()


@pytest.mark.slow
def test_the_province_s_figures_are_the_sums_of_what_came_back(quarter):
    result, returned = quarter["result"], quarter["returned"]
    dept = DEPARTMENTS["TTPVHCC"]
    for code in ("tthc_tiep_nhan", "tthc_da_giai_quyet", "tthc_dang_giai_quyet"):
        expected = dept[code] + sum(v[code] for v in returned.values())
        assert result.values[code] == expected, code
    assert result.values["tthc_pakn"] == sum(v["tthc_pakn"] for v in returned.values())
    # 6 departments and 92 of the 96 communal units sent a valid return; 3 of them late
    assert result.completeness == "98/102" and result.timeliness == "95/98"
    cov = result.coverage["tthc_tiep_nhan"]
    assert (cov.units, cov.owners, sorted(cov.missing)) == (93, 97, sorted(MISSING))
    assert (result.coverage["tthc_pakn"].units, result.coverage["tthc_pakn"].owners) == (92, 96)
    assert result.coverage["tc_thu_nsnn"].complete
    # the file that did not add up was rejected, its correction counted once
    fixed = [r for r in quarter["results"] if r.unit == FIXED]
    assert [r.outcome for r in fixed] == ["rejected", "accepted"]
    assert result.values["tc_thu_nsnn_pct"] == Decimal("91.7")  # 29.800.000 / 32.500.000


@pytest.mark.slow
def test_the_province_report_is_approved_and_dispatched(quarter, tmp_path):
    from tasks.approve import decide, issue_codes, reload
    from tasks.consolidate import require_complete
    from tasks.notify import deliver_outbox
    from tasks.publish import queue_report, render_version, stamped_name
    from tasks.render import output_names

    rt, result = quarter["rt"], quarter["result"]
    require_complete(result, rt.cfg, rt.report)  # every department's figure is in
    now = parse_moment("2026-12-18T09:00")
    row, new = render_version(rt, result, dt.date(2026, 12, 18), now)
    assert new
    names = output_names(rt.report, PERIOD, rt.cfg.body)
    md = (rt.settings.reports_dir / rt.report.id / PERIOD.code / "v1" / names.md).read_text(
        encoding="utf-8"
    )
    total = result.values["tthc_tiep_nhan"]
    assert f"tiếp nhận {vnformat.number(total)} (số liệu của 93/97 đơn vị) hồ sơ" in md
    assert "TỈNH QUẢNG NGÃI" in md and "UBND tỉnh Quảng Ngãi" in md
    assert "Quý IV/2026" in md and "huyện" not in md
    with MailCatcher(tmp_path / "mail") as mail:
        sent = deliver_outbox(rt.engine, settings=rt.settings, mail_url=mail.mail_url)
        assert sent["sent"] == 102 + sum(1 for r in quarter["results"] if r.unit)  # + answers
        requests = [m for m in mail.received if "Mã duyệt" not in m.subject]
        assert "ubnd.lyson@quangngai.gov.vn" in {a for m in requests for a in m.rcpt}
        issue_codes(rt, row, PERIOD, now)
        deliver_outbox(rt.engine, settings=rt.settings, mail_url=mail.mail_url, kinds=["approval"])
        verdict = decide(
            rt,
            row.id,
            approver="chu-tich",
            code=_code_mailed_to(mail, CHU_TICH),
            approve=True,
            comment="Đồng ý",
            now=now,
            number="112",
            signed_on=dt.date(2026, 12, 18),
        )
        assert verdict.ok, verdict
        row = reload(rt, row.id)
        before = len(mail.received)
        queue_report(rt, result, row)
        out = deliver_outbox(rt.engine, settings=rt.settings, mail_url=mail.mail_url)
        reports = mail.received[before:]
    recipients = [c.email for r in rt.report.recipients for c in r.contacts]
    assert out["sent"] == len(recipients) == 7
    assert sorted(a for m in reports for a in m.rcpt) == sorted(recipients)
    docx = tmp_path / "sent.docx"
    docx.write_bytes(reports[0].attachments()[stamped_name(names.docx, "112")])
    header = [c.text for r in DocxDocument(str(docx)).tables[0].rows for c in r.cells]
    assert "Số: 112/BC-UBND" in header
    assert "Quảng Ngãi, ngày 18 tháng 12 năm 2026" in header
    assert any("TỈNH QUẢNG NGÃI" in h for h in header)


def test_the_province_s_facts_and_plans_are_bundled_for_its_quarter():
    from baocao.config import require_plan

    cfg = load_config(PROVINCE)
    report = cfg.report(CCHC)
    for code in ("2026-Q3", "2026-Q4"):  # the one README replays, the coming one
        assert read_facts(cfg, report, code)["cv_bo_noi_vu"].startswith("Công văn số")
        facts = yaml.safe_load((PROVINCE / f"facts/cchc-quarterly/{code}.yaml").read_text("utf-8"))
        assert set(facts) == {f.key for f in report.facts}
    assert require_plan(cfg, report, 2026)["tc_thu_nsnn"] == 32_500_000


@pytest.mark.slow
def test_the_command_line_opens_the_province_s_quarter(prefect_harness, tmp_path, monkeypatch):
    """`baocao open 2026-Q4 --config examples/quang-ngai-2026/config` (the open-period flow),
    with nothing allowed but the bundled folders: every unit gets its request by mail."""
    from typer.testing import CliRunner

    from app.cli import app

    monkeypatch.delenv("BAOCAO_ALLOWED_CONFIG_DIRS")
    monkeypatch.setenv("BAOCAO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "400")
    with MailCatcher(tmp_path / "mail") as mail:
        monkeypatch.setenv("BAOCAO_MAIL_URL", mail.mail_url)
        args = ["open", "Quý IV/2026", "--config", str(PROVINCE), "--report", CCHC]
        args += ["--as-of", "2026-12-03T08:00"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert "102 new request(s), 102 message(s) queued, 102 sent, 0 failed" in result.output
        lyson = [m for m in mail.received if m.rcpt == ["ubnd.lyson@quangngai.gov.vn"]]
    [request] = lyson
    assert "DK-001_2026-Q4.xlsx" in request.attachments()
    assert "Quý IV/2026" in request.subject and "UBND tỉnh Quảng Ngãi" in request.text()


# ---- the monthly citizen-reception report on the province -------------------------------

# what Ban Tiếp công dân tỉnh and Thanh tra tỉnh return for tháng 10/2026 (consistent with the
# report's sum and not-above rules); Thanh tra tỉnh leaves its paragraph to the default
TCD_DEPARTMENTS = {
    "BTCD": {
        **{"tcd_thuong_xuyen": 42, "tcd_dinh_ky": 4, "tcd_dot_xuat": 1, "tcd_tong_luot": 47},
        **{"tcd_so_nguoi": 63, "tcd_vu_viec": 39, "tcd_doan_dong_nguoi": 0},
        **{"don_nhan": 58, "don_du_dieu_kien": 51, "don_khieu_nai": 12, "don_to_cao": 5},
        **{"don_kien_nghi": 34, "don_tham_quyen": 9},
    },
    "TTT": {
        **{"don_nhan": 36, "don_du_dieu_kien": 30, "don_khieu_nai": 9, "don_to_cao": 4},
        **{"don_kien_nghi": 17, "don_tham_quyen": 11, "kn_tham_quyen": 6, "kn_da_giai_quyet": 4},
        **{"tocao_tham_quyen": 2, "tocao_da_giai_quyet": 1, "thu_hoi_tien": 1250.5},
    },
}
MONTH_LATE = ["XA-005", "PH-002"]  # after the units' deadline (15/10/2026)


def tcd_figures(code: str) -> dict[str, int]:
    """A commune's month of citizen reception, different for each unit; no delegation."""
    n = int(code.split("-")[1]) + {"XA": 0, "PH": 200, "DK": 400}[code[:2]]
    visits = {"tcd_thuong_xuyen": n % 5 + 1, "tcd_dinh_ky": n % 2, "tcd_dot_xuat": int(n % 7 == 0)}
    total = sum(visits.values())
    kinds = {"don_khieu_nai": n % 3, "don_to_cao": int(n % 4 == 0), "don_kien_nghi": n % 4 + 1}
    eligible = sum(kinds.values())
    complaints = n % 3
    return {
        **visits,
        "tcd_tong_luot": total,
        "tcd_so_nguoi": total + n % 3,
        "tcd_vu_viec": total - int(total > 1),
        "tcd_doan_dong_nguoi": 0,
        **kinds,
        "don_du_dieu_kien": eligible,
        "don_nhan": eligible + n % 2,
        "don_tham_quyen": eligible - int(eligible > 2),
        "kn_tham_quyen": complaints,
        "kn_da_giai_quyet": complaints - int(n % 5 == 0 and complaints > 0),
        "tocao_tham_quyen": int(n % 4 == 0),
        "tocao_da_giai_quyet": 0,
    }


def test_both_reports_load_with_shared_communes_and_their_own_owners_and_recipients():
    cfg = load_config(PROVINCE)
    cchc, tcd = cfg.report(CCHC), cfg.report(TCD)
    assert (cchc.period_kind, tcd.period_kind) == ("Q", "M")
    cchc_units, tcd_units = cfg.expected_units(cchc), cfg.expected_units(tcd)
    communal = cfg.resolve_owners(("@cap-xa",))
    assert tcd_units == [*TCD_DEPTS, *communal] and len(tcd_units) == 98
    assert set(cchc_units) & set(tcd_units) == set(communal)  # shared: 96 communal units
    assert not set(cchc_units) & set(TCD_DEPTS)
    assert [cfg.unit_map[c].name for c in TCD_DEPTS] == ["Thanh tra tỉnh", "Ban Tiếp công dân tỉnh"]
    # who owns what: reception at the Ban, verified complaints at Thanh tra tỉnh
    assert cfg.indicators_of(tcd, "BTCD")[0].code == "tcd_thuong_xuyen"
    assert "kn_tham_quyen" not in {i.code for i in cfg.indicators_of(tcd, "BTCD")}
    assert "tcd_tong_luot" not in {i.code for i in cfg.indicators_of(tcd, "TTT")}
    assert [r.label for r in tcd.recipients][:2] == [
        "Thanh tra Chính phủ",
        "Ban Tiếp công dân Trung ương",
    ]
    assert tcd.recipients[-1].label.startswith("Lưu: VT") and not tcd.recipients[-1].contacts
    assert "Bộ Nội vụ" not in {r.label for r in tcd.recipients}
    assert tcd.signer.authority == "KT. CHỦ TỊCH"
    assert tcd.approval.approvers[0].key == "pho-chu-tich"
    assert cfg.contact_for(tcd).email == "tonghop.thanhtra@quangngai.gov.vn"
    month = period_dates(MONTH, tcd.schedule)
    assert (month.window_start, month.window_end) == (dt.date(2026, 9, 15), dt.date(2026, 10, 14))
    assert month.open_day == dt.date(2026, 10, 9)
    assert month.unit_deadline == end_of_day(dt.date(2026, 10, 15))
    assert month.report_deadline == end_of_day(dt.date(2026, 10, 20))
    # the two reports' December deadlines fall on the same day (reminded together below)
    dec, q4 = (
        period_dates(Period.parse("2026-12"), tcd.schedule),
        period_dates(PERIOD, cfg.schedule),
    )
    assert dec.unit_deadline == q4.unit_deadline == end_of_day(dt.date(2026, 12, 15))
    for code in ("2026-10", "2026-11", "2026-12"):
        assert read_facts(cfg, tcd, code)["lich_tiep"].startswith("Thông báo số")


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    """The province's tháng 10/2026 of tcd-monthly opened, returned (all but four communes,
    two of them late)."""
    from tasks.intake import ingest_files

    root = tmp_path_factory.mktemp("province-tcd")
    settings = get_settings(data_dir=root / "data", config_dir=PROVINCE)
    rt = build_runtime(report_id=TCD, settings=settings)
    dates = period_dates(MONTH, rt.schedule)
    opened = open_period(rt, period=MONTH, units=None, now=parse_moment(f"{dates.open_day}T08:00"))
    tokens = request_tokens(rt, MONTH)
    communal = rt.cfg.resolve_owners(("@cap-xa",))
    returned = {c: tcd_figures(c) for c in communal if c not in MISSING}
    returned.update(TCD_DEPARTMENTS)
    inbox = root / "returned"
    inbox.mkdir()

    def xlsx(code: str):
        path = inbox / f"{code}_{MONTH.code}.xlsx"
        form = _filled(rt, code, tokens[code], returned[code], dates.unit_deadline, MONTH)
        path.write_bytes(form)
        return path

    on_time = [xlsx(c) for c in returned if c not in MONTH_LATE]
    results = ingest_files(rt, on_time, now=parse_moment(f"{dates.window_end}T16:00"))
    late = [xlsx(c) for c in MONTH_LATE]
    results += ingest_files(rt, late, now=parse_moment(f"{dates.unit_last_day}T08:00") + DAY)
    return {"rt": rt, "opened": opened, "results": results, "returned": returned}


@pytest.mark.slow
def test_a_province_month_sums_what_came_back_and_says_how_much_did(month, tmp_path):
    from tasks.consolidate import consolidate_period
    from tasks.render import build_document, write_report

    rt, returned = month["rt"], month["returned"]
    assert (month["opened"]["units"], month["opened"]["new_requests"]) == (98, 98)
    assert month["opened"]["facts"] == ""  # the month's facts file is bundled
    assert [r.outcome for r in month["results"]] == ["accepted"] * 94
    assert {r.unit for r in month["results"] if r.late} == set(MONTH_LATE)
    result = consolidate_period(rt, MONTH)
    for code in ("tcd_tong_luot", "tcd_so_nguoi", "don_nhan", "don_du_dieu_kien", "kn_tham_quyen"):
        assert result.values[code] == sum(v.get(code, 0) for v in returned.values()), code
    assert result.completeness == "94/98" and result.timeliness == "92/94"
    cov = result.coverage["tcd_doan_dong_nguoi"]
    assert (cov.units, cov.owners, sorted(cov.missing)) == (93, 97, sorted(MISSING))
    assert (result.coverage["don_nhan"].units, result.coverage["don_nhan"].owners) == (94, 98)
    assert result.coverage["thu_hoi_tien"].complete  # Thanh tra tỉnh's own figure
    doc = build_document(rt.env, result, rt.report, rt.cfg.body, dt.date(2026, 10, 20))
    paths = write_report(
        rt.env, doc, result, rt.report, tmp_path, rt.cfg.body, dt.date(2026, 10, 20)
    )
    assert next(p for p in paths if p.suffix == ".docx").name == (
        "BC-TCD-thang-10-2026-UBND-tinh-Quang-Ngai.docx"
    )
    md = next(p for p in paths if p.suffix == ".md").read_text(encoding="utf-8")
    total = vnformat.number(result.values["tcd_tong_luot"])
    for text in (
        "TỈNH QUẢNG NGÃI",
        "tháng 10/2026",
        f"toàn tỉnh đã tiếp {total} (số liệu của 93/97 đơn vị) lượt",
        # four communes are missing: their zero is no 'không có đoàn đông người'
        "đã tiếp 0 (số liệu của 93/97 đơn vị) đoàn đông người",
        "đã kiến nghị thu hồi 1.250,5 triệu đồng",  # complete: no coverage note
        "trên địa bàn tỉnh không phát sinh vụ việc khiếu nại, tố cáo phức tạp",
        "ngày 17/9/2026 và ngày 08/10/2026",  # the month's facts file
        "KT. CHỦ TỊCH",
        "Thanh tra Chính phủ",
    ):
        assert text in md, text
    assert "không có đoàn đông người" not in md and "huyện" not in md


@pytest.mark.slow
def test_one_reminder_per_commune_late_on_both_reports(tmp_path):
    """Quý IV/2026 (opened 03/12) and tháng 12/2026 (opened 09/12) both due 15/12, nothing
    back from anyone: on 15/12 each commune, ward and the special zone gets ONE reminder naming
    both reports; a department gets one about its own report only; a rerun sends nothing."""
    from tasks.remind import queue_reminders

    settings = get_settings(data_dir=tmp_path / "data", config_dir=PROVINCE)
    rt = build_runtime(report_id=None, settings=settings)
    for report_id, period, opens in ((CCHC, PERIOD, "03"), (TCD, Period.parse("2026-12"), "09")):
        mine = rt.for_report(report_id)
        open_period(mine, period=period, units=None, now=parse_moment(f"2026-12-{opens}T08:00"))
    queue_reminders(rt, today=dt.date(2026, 12, 15), units=None)
    with session_scope(rt.engine) as s:
        rows = s.exec(select(OutboxMessage).where(OutboxMessage.kind == "reminder")).all()
    by_unit: dict[str, list[OutboxMessage]] = {}
    for row in rows:
        by_unit.setdefault(row.unit_code, []).append(row)
    assert set(by_unit) == {u.code for u in rt.cfg.units}  # all 104, late on what they owe
    assert all(len(mine) == 1 for mine in by_unit.values())
    for code in rt.cfg.resolve_owners(("@cap-xa",)):
        [row] = by_unit[code]
        assert row.subject.endswith(f"Nhắc: 2 báo cáo chưa gửi - {rt.cfg.unit_map[code].name}")
        assert "(CCHC) Quý IV/2026" in row.body and "(TCD) tháng 12/2026" in row.body
        assert len(json.loads(row.attachments)) == 2  # both forms again
    [lyson] = by_unit["DK-001"]
    assert "hôm nay, ngày 15/12/2026" in lyson.body
    [ttt], [snv] = by_unit["TTT"], by_unit["SNV"]  # a department: its own report only
    assert "Quý IV/2026" not in ttt.body and "tháng 12/2026" in ttt.body
    assert "tháng 12/2026" not in snv.body and "Quý IV/2026" in snv.body
    assert queue_reminders(rt, today=dt.date(2026, 12, 15), units=None) == []  # a rerun
    rt.engine.dispose()
