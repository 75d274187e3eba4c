"""Reading in worker processes: a file that kills its reader costs only itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from baocao.forms import FormError, ReadLimits, read_file
from baocao.reader import CRASH_ENV, HANG_ENV, ReadOutcome, read_isolated
from tests.test_forms import _form, far_cell_xlsx, ods_file

UNITS = ["TCKH", "MOTCUA", "NV", "TP", "VHTT"]


@pytest.fixture
def forms(tmp_path) -> list[Path]:
    """Five real forms, one per unit."""
    paths = []
    for unit in UNITS:
        path = tmp_path / f"{unit}_2022-Q1.xlsx"
        path.write_bytes(_form(unit, token=f"tok-{unit}"))
        paths.append(path)
    return paths


def _units(outcomes: list[ReadOutcome]) -> list[str | None]:
    return [o.parsed.meta.get("unit_code") if o.parsed else None for o in outcomes]


def test_outcomes_in_input_order(forms, tmp_path):
    csv = tmp_path / "communes.csv"
    csv.write_text("don_vi,ky_bao_cao,ma_chi_tieu,gia_tri\nSON-LONG,2022-Q1,tthc_pakn,1\n")
    paths = [*forms, csv, *reversed(forms)]
    outcomes = read_isolated(paths, ReadLimits(), workers=2)
    assert [o.path for o in outcomes] == paths
    assert _units(outcomes) == [*UNITS, None, *reversed(UNITS)]
    assert outcomes[5].parsed.rows[0]["unit"] == "SON-LONG"
    assert outcomes[5].parsed.encoding == "utf-8"
    assert all(not o.error and not o.crashed for o in outcomes)
    # the same as reading in this process
    assert outcomes[0].parsed == read_file(forms[0])


def test_no_files():
    assert read_isolated([], ReadLimits()) == []


def test_far_out_cell_refused_in_the_worker_without_a_crash(forms, tmp_path):
    """The IT officer's file, with A1 filled: unchecked, calamine allocates 512 GiB and
    aborts; here it is refused with a reason and the batch goes on."""
    far = tmp_path / "far.xlsx"
    far.write_bytes(far_cell_xlsx(with_a1=True))
    outcomes = read_isolated([forms[0], far, forms[1]], ReadLimits(), workers=1)
    assert _units(outcomes) == ["TCKH", None, "MOTCUA"]
    assert outcomes[1].crashed is False
    assert outcomes[1].error.startswith("far.xlsx: sheet BaoCao có ô ở XFD1048576")


def test_form_errors_come_back_as_reasons(forms, tmp_path):
    broken = tmp_path / "truncated.xlsx"
    broken.write_bytes(forms[0].read_bytes()[:1000])
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    outcomes = read_isolated([broken, pdf, forms[2]], ReadLimits())
    assert [o.crashed for o in outcomes] == [False, False, False]
    assert outcomes[0].error.startswith("truncated.xlsx: tệp bị hỏng")
    assert "'.pdf'" in outcomes[1].error
    assert outcomes[0].parsed is None and outcomes[2].parsed is not None
    with pytest.raises(FormError) as exc:
        read_file(broken)
    assert str(exc.value) == outcomes[0].error


def test_a_worker_that_aborts_costs_only_its_file(forms, monkeypatch):
    monkeypatch.setenv(CRASH_ENV, forms[2].name)
    outcomes = read_isolated(forms, ReadLimits(), workers=2)
    assert _units(outcomes) == ["TCKH", "MOTCUA", None, "TP", "VHTT"]
    bad = outcomes[2]
    assert bad.crashed is True and bad.parsed is None
    assert bad.error.startswith(f"{forms[2].name}: trình đọc dừng khi đọc tệp (")
    assert "SIGABRT" in bad.error or "aborted" in bad.error
    assert not any(o.crashed for o in outcomes[:2] + outcomes[3:])


def test_every_file_crashing_still_returns(forms, monkeypatch):
    monkeypatch.setenv(CRASH_ENV, ",".join(p.name for p in forms))
    outcomes = read_isolated(forms, ReadLimits(), workers=2)
    assert [o.crashed for o in outcomes] == [True] * 5


def test_a_reader_that_hangs_is_stopped(forms, monkeypatch):
    monkeypatch.setenv(HANG_ENV, forms[1].name)
    limits = ReadLimits(seconds_per_file=1)
    outcomes = read_isolated(forms[:3], limits, workers=1)
    assert _units(outcomes) == ["TCKH", None, "NV"]
    assert outcomes[1].crashed is True
    assert "quá 1 giây, đã dừng / timed out" in outcomes[1].error


def test_memory_limit_catches_what_the_prechecks_cannot(forms, tmp_path):
    """A 1 kB .ods whose repeated cells make calamine allocate over a GB. With limits loose
    enough for the pre-check to let it through, the worker's address-space limit turns that
    into a crash of this file alone."""
    bomb = ods_file(
        tmp_path / "bomb.ods",
        '<table:table-row table:number-rows-repeated="9000"><table:table-cell table:number-'
        'columns-repeated="10000" office:value-type="float" office:value="1"/></table:table-row>',
    )
    assert bomb.stat().st_size < 2000
    loose = ReadLimits(max_columns=20_000, max_cells=10**9, memory_mb=512)
    outcomes = read_isolated([forms[0], bomb, forms[1]], loose, workers=1)
    assert _units(outcomes) == ["TCKH", None, "MOTCUA"]
    assert outcomes[1].crashed is True
    assert "bộ nhớ" in outcomes[1].error and "memory" in outcomes[1].error


@pytest.mark.slow
def test_memory_error_in_python_is_a_crash_of_that_file(forms, tmp_path):
    """A 105 MB CSV in a reader allowed 192 MB: MemoryError, reported, the worker replaced."""
    big = tmp_path / "big.csv"
    big.write_bytes(b"don_vi,ky_bao_cao,ma_chi_tieu,gia_tri\n" + b"NV,2022-Q1,x,1\n" * 7_000_000)
    outcomes = read_isolated([big, forms[3]], ReadLimits(memory_mb=192), workers=1)
    assert outcomes[0].crashed is True and "bộ nhớ" in outcomes[0].error
    assert _units(outcomes) == [None, "TP"]


def test_fault_point_kills_a_worker_mid_batch(forms, monkeypatch):
    """BAOCAO_FAULT=reader.file:2: SIGKILL at a worker's second file; its replacement counts
    afresh, so only that file is lost."""
    monkeypatch.setenv("BAOCAO_FAULT", "reader.file:2")
    outcomes = read_isolated(forms[:3], ReadLimits(), workers=1)
    assert _units(outcomes) == ["TCKH", None, "NV"]
    assert "SIGKILL" in outcomes[1].error


def test_odd_formats_read_in_the_worker(tmp_path):
    ods = ods_file(
        tmp_path / "libre.ods",
        '<table:table-row><table:table-cell office:value-type="string"><text:p>Mã chỉ tiêu'
        '</text:p></table:table-cell><table:table-cell office:value-type="string"><text:p>Giá '
        "trị</text:p></table:table-cell></table:table-row><table:table-row><table:table-cell "
        'office:value-type="string"><text:p>tthc_pakn</text:p></table:table-cell><table:table-'
        'cell office:value-type="float" office:value="5"/></table:table-row>',
    )
    [outcome] = read_isolated([ods], ReadLimits())
    assert outcome.parsed.rows == [{"indicator": "tthc_pakn", "raw": 5.0, "cell": "BaoCao!B2"}]
