"""Where each unit stands in a period: for `baocao status` and the Prefect UI's artifact."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from baocao import crud
from baocao.db import session_scope
from baocao.periods import Period, as_vn
from baocao.runtime import Runtime
from tasks.consolidate import load_period, unit_status


def period_status(rt: Runtime, period: Period) -> list[dict]:
    """One JSON-ready row per expected unit: state, version, on time, findings (Vietnamese)."""
    subs, _ = load_period(rt, period)
    table = unit_status(subs, rt.cfg, rt.cfg.expected_units(rt.report))
    ids = {(r.unit, int(r.version)): int(r.submission_id) for r in subs.itertuples()}
    counted = {
        (r["unit"], int(r["version"])): ids[(r["unit"], int(r["version"]))]
        for r in table.to_dict(orient="records")
        if pd.notna(r["version"])
    }
    with session_scope(rt.engine) as s:
        findings = crud.findings_by_submission(s, submission_ids=list(counted.values()))
    rows = []
    for r in table.to_dict(orient="records"):
        version = int(r["version"]) if pd.notna(r["version"]) else None
        received = r["received_at"]
        rows.append(
            {
                "unit": r["unit"],
                "name": r["name"],
                "state": r["state"],
                "version": version,
                "versions": int(r["versions"]),
                "received_at": as_vn(pd.Timestamp(received).to_pydatetime()).isoformat()
                if pd.notna(received)
                else None,
                "on_time": None
                if r["on_time"] is None or pd.isna(r["on_time"])
                else bool(r["on_time"]),
                "errors": int(r["errors"]),
                "warnings": int(r["warnings"]),
                "findings": [
                    f"[{f.severity}] {f.message_vi}"
                    for f in findings.get(counted.get((r["unit"], version)), [])
                ],
            }
        )
    return rows


ARTIFACT_ROWS = 200  # a table the UI shows whole; past it, only the units needing attention


def needs_attention(row: dict) -> bool:
    """A unit the office should look at: nothing valid yet, late, or with warnings."""
    return row["state"] != "valid" or row["on_time"] is False or row["warnings"] > 0


def status_table(rt: Runtime, period: Period, rows: list[dict]) -> tuple[list[dict], Path]:
    """The status as the UI shows it, and the full table written as CSV in the data folder
    (`<data>/status/<report>/<period>.csv`): every unit while they are few, else only those
    needing attention, so a province's artifact stays small."""
    flat = [{**r, "findings": " | ".join(r["findings"])} for r in rows]
    path = rt.settings.data_dir / "status" / rt.report.id / f"{period.code}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pd.DataFrame(flat).to_csv(tmp, index=False, encoding="utf-8-sig")  # Excel reads the BOM
    os.replace(tmp, path)
    if len(flat) <= ARTIFACT_ROWS:
        return flat, path
    return [r for r, raw in zip(flat, rows, strict=True) if needs_attention(raw)][
        :ARTIFACT_ROWS
    ], path


def outbox_frame(rt: Runtime, period: Period):
    """The period's outbox as a DataFrame (kind, unit, recipient, status, ...)."""
    with session_scope(rt.engine) as s:
        return crud.outbox_frame(s, period_code=period.code)
