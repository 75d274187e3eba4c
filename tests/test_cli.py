"""The command line: help on every verb, clean errors for a user's mistakes, status as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from baocao.db import MARKER
from tests.conftest import edited_config

runner = CliRunner()
VERBS = ["demo", "open", "ingest", "remind", "publish", "status", "form", "serve"]


@pytest.mark.parametrize("verb", VERBS)
def test_help_on_every_verb(verb):
    result = runner.invoke(app, [verb, "--help"])
    assert result.exit_code == 0 and "--config" in result.output


# an office with one report: no verb needs --report (several: see `_two_reports` below)
pytestmark = pytest.mark.usefixtures("one_report_config")


def test_bad_period_is_one_clear_line(example_runtime):
    result = runner.invoke(app, ["status", "2022-Q7"])
    assert result.exit_code == 2
    assert "2022-Q7" in result.output and "Traceback" not in result.output


def test_bad_config_folder_names_it(tmp_path):
    result = runner.invoke(app, ["status", "2022-Q1", "--config", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "nowhere" in result.output and "Traceback" not in result.output


def test_status_json(example_runtime, monkeypatch):
    monkeypatch.setenv("BAOCAO_DATA_DIR", str(example_runtime.settings.data_dir))
    result = runner.invoke(app, ["status", "2022-Q1", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["unit"]: r for r in json.loads(result.output)}
    assert len(rows) == 14
    assert (
        rows["TCKH"]["state"] == "valid"
        and rows["TCKH"]["version"] == 2
        and rows["TCKH"]["versions"] == 2
    )
    assert rows["SON-MUA"]["on_time"] is False and rows["NV"]["on_time"] is True


def test_form_writes_the_units_form(example_runtime, monkeypatch, tmp_path):
    from baocao.forms import read_file

    monkeypatch.setenv("BAOCAO_DATA_DIR", str(example_runtime.settings.data_dir))
    out = tmp_path / "tckh.xlsx"
    result = runner.invoke(app, ["form", "TCKH", "2022-Q1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    parsed = read_file(out)
    assert parsed.meta["unit_code"] == "TCKH" and parsed.meta["token"]
    unknown = runner.invoke(app, ["form", "XYZ", "2022-Q1", "--out", str(out)])
    assert unknown.exit_code == 2 and "XYZ" in unknown.output


def test_demo_never_wipes_a_folder_it_did_not_make(tmp_path):
    precious = tmp_path / "out" / "data" / "baocao.sqlite"
    precious.parent.mkdir(parents=True)
    precious.write_bytes(b"the district's real store")
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "--out" in result.output
    assert precious.read_bytes() == b"the district's real store"


def test_status_shows_the_findings_of_a_rejected_unit(tmp_path, monkeypatch):
    from baocao.periods import parse_moment
    from tasks.intake import ingest_files
    from tests.conftest import make_runtime, open_example, returned

    rt = make_runtime(tmp_path / "data")
    open_example(rt)
    ingest_files(rt, returned(rt, ["TCKH_2022-Q1.xlsx"]), now=parse_moment("2022-03-14T16:40"))
    monkeypatch.setenv("BAOCAO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    result = runner.invoke(app, ["status", "2022-Q1"])
    assert result.exit_code == 0
    assert "[error] Ô E12, Tổng chi ngân sách Nhà nước: 40.898, nhưng" in result.output
    assert "rejected" in result.output and "tc_tong_chi" not in result.output


def test_serve_names_a_server_that_does_not_answer(monkeypatch):
    from baocao.mailcatcher import free_port

    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{free_port()}/api")
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2 and "does not answer" in result.output
    assert "Traceback" not in result.output


def test_approve_before_anything_is_rendered_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("BAOCAO_DATA_DIR", str(tmp_path / "data"))
    result = runner.invoke(app, ["approve", "2022-Q1", "--by", "chu-tich", "--code", "123456"])
    assert result.exit_code == 2 and "baocao publish 2022-Q1" in result.output


def _baocao(*args: str, data: Path, **env: str) -> tuple[int, list[str]]:
    """The real command in its own process (Prefect's console logs included): exit code and
    the non-empty lines of its output."""
    run_env = {
        **os.environ,
        "BAOCAO_DATA_DIR": str(data),
        "PREFECT_HOME": str(data.parent / "prefect-home"),
        "COLUMNS": "80",
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        env=run_env,
        timeout=120,
    )
    out = done.stdout + done.stderr
    return done.returncode, [line for line in out.splitlines() if line.strip()]


def _one_error_line(code: int, lines: list[str]) -> str:
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("Lỗi / error: ")
    return lines[0]


@pytest.mark.slow
def test_a_config_mistake_never_reaches_prefect(tmp_path):
    """Before the pre-flight, `open` printed this line after a Prefect traceback."""
    config = edited_config(
        tmp_path / "config",
        "schedule.yaml",
        "unit_deadline_working_days_after_cutoff: 2",
        "unit_deadline_working_days_after_cutoff: -2",
    )
    line = _one_error_line(
        *_baocao("open", "2022-Q1", "--config", str(config), data=tmp_path / "data")
    )
    assert "schedule.yaml: key `unit_deadline_working_days_after_cutoff`: phải ≥ 0" in line
    assert not (tmp_path / "prefect-home" / "prefect.db").exists()  # no Prefect was started


@pytest.mark.slow
def test_a_deleted_store_is_refused_not_recreated(tmp_path):
    data = tmp_path / "data"
    assert (
        runner.invoke(app, ["status", "2022-Q1"], env={"BAOCAO_DATA_DIR": str(data)}).exit_code == 0
    )
    for name in ("baocao.sqlite", "baocao.sqlite-wal", "baocao.sqlite-shm"):
        (data / name).unlink(missing_ok=True)
    line = _one_error_line(*_baocao("open", "2022-Q1", data=data))
    assert "baocao.sqlite" in line and "restore it from backup" in line and MARKER in line
    assert not (data / "baocao.sqlite").exists()


@pytest.mark.slow
def test_a_corrupt_store_is_one_line(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "baocao.sqlite").write_bytes(b"\x00garbage" * 512)
    line = _one_error_line(*_baocao("open", "2022-Q1", data=data))
    assert "not a valid database" in line and str(data / "baocao.sqlite") in line


@pytest.mark.slow
def test_postgresql_down_is_one_line(tmp_path):
    from baocao.mailcatcher import free_port

    port = free_port()
    url = f"postgresql://postgres:pw-123@127.0.0.1:{port}/test"
    line = _one_error_line(*_baocao("remind", data=tmp_path / "data", BAOCAO_DATABASE_URL=url))
    assert f"127.0.0.1:{port}" in line and "PostgreSQL" in line and "pw-123" not in line


@pytest.mark.slow
def test_prefect_api_down_is_one_line(tmp_path):
    from baocao.mailcatcher import free_port

    api = f"http://127.0.0.1:{free_port()}/api"
    line = _one_error_line(*_baocao("open", "2022-Q1", data=tmp_path / "data", PREFECT_API_URL=api))
    assert api in line and "PREFECT_API_URL" in line


# In process (fast): every flow verb checks config, store and parameters before Prefect.


def _fails_before_prefect(args: list[str], data: Path, monkeypatch) -> str:
    import baocao.errors

    monkeypatch.setenv("BAOCAO_DATA_DIR", str(data))
    monkeypatch.setenv("COLUMNS", "400")

    def no_prefect():  # the last pre-flight step; a mistake must stop the command before it
        raise AssertionError("the pre-flight reached the Prefect check")

    monkeypatch.setattr(baocao.errors, "require_prefect_api", no_prefect)
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    return result.output


@pytest.mark.parametrize(
    "verb", [["open", "2022-Q1"], ["remind"], ["publish", "2022-Q1"], ["ingest"]]
)
def test_every_flow_verb_checks_the_config_first(verb, tmp_path, monkeypatch):
    config = edited_config(
        tmp_path / "config",
        "schedule.yaml",
        "open_working_days_before_cutoff: 5",
        "# open_working_days_before_cutoff: 5",
    )
    out = _fails_before_prefect([*verb, "--config", str(config)], tmp_path / "data", monkeypatch)
    assert "key `open_working_days_before_cutoff`: bắt buộc / required" in out


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["open", "2022-Q1", "-u", "NOPE"], "['NOPE']"),
        (["remind", "2022-H1"], "2022-H1"),
        (["open", "2022-Q1", "--as-of", "tomorrow"], "tomorrow"),
        (["publish", "2022-Q1", "--date", "31/02/2022"], "31/02/2022"),
        (["ingest", "nope.xlsx"], "nope.xlsx"),
    ],
)
def test_flow_parameters_are_checked_before_prefect(args, named, tmp_path, monkeypatch):
    assert named in _fails_before_prefect(args, tmp_path / "data", monkeypatch)


def test_a_deleted_store_is_refused_by_the_reading_verbs(tmp_path, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("BAOCAO_DATA_DIR", str(data))
    monkeypatch.setenv("COLUMNS", "400")
    assert runner.invoke(app, ["status", "2022-Q1"]).exit_code == 0
    (data / "baocao.sqlite").unlink()
    for args in (
        ["status", "2022-Q1"],
        ["form", "NV", "2022-Q1", "--out", str(tmp_path / "f.xlsx")],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "restore it from backup" in result.output
    assert not (data / "baocao.sqlite").exists()


@pytest.mark.parametrize("verb", [*VERBS, "approve"])
def test_help_speaks_vietnamese_first(verb):
    """Each verb's help opens in Vietnamese, English after " / "."""
    result = runner.invoke(app, [verb, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Thư mục cấu hình / config folder" in result.output
    lines = [line.strip() for line in result.output.splitlines() if line.strip()]
    first = lines[1]  # the verb's own help, after "Usage: ..."
    assert " / " in first and not first.startswith(("Run", "Open", "Take", "Send", "Write")), first


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["status", "2022-Q9"], "2022-Q9"),
        (["form", "NOPE", "2022-Q1", "--out", "x.xlsx"], "NOPE"),
        (
            ["approve", "2022-Q1", "--by", "chu-tich", "--code", "1", "--date", "31/02/2022"],
            "31/02",
        ),
        (["approve", "2022-Q7", "--by", "chu-tich", "--code", "1"], "2022-Q7"),
        (["ingest", "--unit", "NV"], "--unit"),
        (["remind", "2022-Q1", "-u", "NOPE"], "NOPE"),
        (["publish", "2022-Q5"], "2022-Q5"),
    ],
)
def test_a_users_mistake_is_one_red_line_and_exit_2(args, named, tmp_path, monkeypatch):
    monkeypatch.setenv("BAOCAO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "400")
    result = runner.invoke(app, args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert named in lines[0] and "Traceback" not in result.output


@pytest.mark.slow
def test_open_whose_mail_all_failed_exits_1_and_says_what_to_do(
    prefect_harness, tmp_path, monkeypatch
):
    """Before: `open` printed "0 sent, 14 failed" and exited 0."""
    from baocao.mailcatcher import free_port

    monkeypatch.setenv("BAOCAO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BAOCAO_MAIL_URL", f"mailto://127.0.0.1:{free_port()}?from=a@b.vn")
    monkeypatch.setenv("COLUMNS", "400")
    result = runner.invoke(app, ["open", "2022-Q1", "--as-of", "2022-03-07T08:00"])
    assert result.exit_code == 1, result.output
    assert "14 message(s) queued, 0 sent, 14 failed" in result.output  # the summary still shows
    assert "Chưa gửi được / not delivered: thư đề nghị / requests: 14 thư" in result.output
    assert "BAOCAO_MAIL_URL" in result.output and "Traceback" not in result.output


def _two_reports(folder: Path) -> Path:
    """The bundled config with a second quarterly report (a copy under another id)."""
    config = edited_config(folder, "schedule.yaml", "open_hour: 8", "open_hour: 8")
    text = (config / "reports" / "cchc-quarterly.yaml").read_text(encoding="utf-8")
    (config / "reports" / "cchc-copy.yaml").write_text(
        text.replace("id: cchc-quarterly", "id: cchc-copy", 1), encoding="utf-8"
    )
    return config


@pytest.mark.parametrize(
    "verb", [["status", "2022-Q1"], ["open", "2022-Q1"], ["publish", "2022-Q1"]]
)
def test_with_several_reports_a_verb_about_one_asks_which(verb, tmp_path, monkeypatch):
    config = _two_reports(tmp_path / "config")
    out = _fails_before_prefect([*verb, "--config", str(config)], tmp_path / "data", monkeypatch)
    assert "cchc-copy, cchc-quarterly" in out and "--report" in out


def test_a_report_is_named_with_report(tmp_path, monkeypatch):
    config = _two_reports(tmp_path / "config")
    monkeypatch.setenv("BAOCAO_DATA_DIR", str(tmp_path / "data"))
    ok = runner.invoke(app, ["status", "2022-Q1", "-r", "cchc-copy", "--config", str(config)])
    assert ok.exit_code == 0, ok.output
    assert "0/14" in ok.output.replace(" ", "")  # its own period: nobody has sent anything
    wrong = runner.invoke(app, ["status", "2022-Q1", "-r", "cchc", "--config", str(config)])
    assert wrong.exit_code == 2 and "cchc-copy, cchc-quarterly" in wrong.output
    assert "Traceback" not in wrong.output
