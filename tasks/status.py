"""Where each unit stands in a period: for `baocao status` and the Prefect UI's artifact."""

from __future__ import annotations

from baocao import crud
from baocao.db import session_scope
from baocao.periods import Period, as_vn
from baocao.runtime import Runtime
from tasks.consolidate import load_period, unit_status


def period_status(rt: Runtime, period: Period) -> list[dict]:
    """One JSON-ready row per expected unit: state, version, on time, findings (Vietnamese)."""
    subs, _ = load_period(rt, period)
    table = unit_status(subs, rt.cfg, rt.cfg.expected_units(rt.report))
    chosen = {}
    for r in subs.itertuples():
        chosen.setdefault(r.unit, {})[int(r.version)] = int(r.submission_id)
    rows = []
    with session_scope(rt.engine) as s:
        for r in table.to_dict(orient="records"):
            sub_id = chosen.get(r["unit"], {}).get(r["version"])
            findings = crud.findings_for(s, submission_id=sub_id) if sub_id else []
            received = r["received_at"]
            rows.append(
                {
                    "unit": r["unit"],
                    "name": r["name"],
                    "state": r["state"],
                    "version": r["version"],
                    "versions": r["versions"],
                    "received_at": as_vn(received.to_pydatetime()).isoformat()
                    if received is not None and received == received
                    else None,
                    "on_time": r["on_time"],
                    "errors": r["errors"],
                    "warnings": r["warnings"],
                    "findings": [f"[{f.severity}] {f.message_vi}" for f in findings],
                }
            )
    return rows


def outbox_frame(rt: Runtime, period: Period):
    """The period's outbox as a DataFrame (kind, unit, recipient, status, ...)."""
    with session_scope(rt.engine) as s:
        return crud.outbox_frame(s, period_code=period.code)
