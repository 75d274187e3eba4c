"""The scale benchmark (benchmarks/bench_scale.py) at N = 10 on SQLite: it runs end to end,
mails to its sink, exercises the rejections and writes every stage of ours and the bare
script's to its JSON and chart. Nothing about speed is asserted."""

from __future__ import annotations

import json

from benchmarks import bench_scale


def test_bench_runs_at_ten_on_sqlite(tmp_path):
    bench_scale.main(["--sizes", "10", "--db", "sqlite", "--out", str(tmp_path)])

    (path,) = tmp_path.glob("bench-*.json")
    figures = json.loads(path.read_text(encoding="utf-8"))
    assert [c["db"] for c in figures["ours"]] == ["sqlite"]
    (ours,), (bare,) = figures["ours"], figures["bare"]
    for case in (ours, bare):
        assert set(case["seconds"]) == set(bench_scale.STAGES), case["seconds"]
        assert case["rss_mb"] > 0
        assert case["mails_received"]["messages"] == ours["units"] == 24
    assert ours["mails_received"]["connections"] >= 1
    assert bare["mails_received"]["connections"] == 1
    counts = ours["counts"]
    assert counts["sent"] == counts["forms"] == 24
    assert counts["rejected"] >= 2 and counts["duplicate"] >= 1 and counts["unreadable"] == 1
    assert counts["late"] >= 2 and counts["missing"] == 0 and counts["rendered"]
    assert bare["counts"]["rejected"] == counts["rejected"]
    assert bare["counts"]["duplicate"] == counts["duplicate"] and bare["counts"]["missing"] == 0
    assert list(tmp_path.glob("bench-*.png"))
