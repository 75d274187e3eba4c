"""Where each unit stands: the rows, and the table the UI shows at any scale."""

from __future__ import annotations

import pandas as pd

import tasks.status as status
from tests.conftest import PERIOD


def test_the_full_table_is_a_file_and_the_ui_shows_every_unit_while_few(example_runtime):
    rt = example_runtime
    rows = status.period_status(rt, PERIOD)
    table, path = status.status_table(rt, PERIOD, rows)
    assert len(table) == len(rows) == 14
    back = pd.read_csv(path, encoding="utf-8-sig")
    assert back["unit"].tolist() == [r["unit"] for r in rows]
    assert back.loc[back["unit"] == "SON-MUA", "on_time"].item() == False  # noqa: E712


def test_past_a_screenful_the_ui_shows_only_the_units_needing_attention(
    example_runtime, monkeypatch
):
    rt = example_runtime
    monkeypatch.setattr(status, "ARTIFACT_ROWS", 5)
    rows = status.period_status(rt, PERIOD)
    table, path = status.status_table(rt, PERIOD, rows)
    assert {r["unit"] for r in table} == {r["unit"] for r in rows if status.needs_attention(r)}
    assert "SON-MUA" in {r["unit"] for r in table}  # a day late
    assert "NV" not in {r["unit"] for r in table}  # in, on time, clean
    assert len(pd.read_csv(path, encoding="utf-8-sig")) == 14  # the file keeps them all
