"""The command line: help on every verb, clean errors for a user's mistakes, status as JSON."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from baocao.cli import app

runner = CliRunner()
VERBS = ["demo", "open", "ingest", "remind", "publish", "status", "form", "serve"]


@pytest.mark.parametrize("verb", VERBS)
def test_help_on_every_verb(verb):
    result = runner.invoke(app, [verb, "--help"])
    assert result.exit_code == 0 and "--config" in result.output


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
    assert "[error] Quy tắc tc_tong_chi" in result.output and "rejected" in result.output


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
