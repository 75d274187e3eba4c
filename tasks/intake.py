"""Take in returned forms: archive the raw file, identify unit and period, parse, validate,
store a new version, and queue a message to the unit when its submission is rejected.

A batch of files is one pass: one validation over all their values, bulk inserts, one
commit per file. The raw file is copied to the archive under its SHA-256 before anything
reads it, so even a file that cannot be parsed is kept.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from baocao import crud, vnformat
from baocao.db import session_scope
from baocao.forms import FormError, ParsedFile, read_file
from baocao.models import Receipt, Submission
from baocao.periods import Period, PeriodError, as_vn
from baocao.runtime import Runtime
from tasks.collect import ensure_period_row
from tasks.notify import compose, messages_for
from tasks.validate import validate

ACCEPTED_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".xlsb", ".ods", ".csv"}
_NAME = re.compile(r"^(?P<unit>[A-Za-z0-9-]+)_(?P<period>\d{4}(?:-[QqHh][1-4])?)")


@dataclass
class IntakeResult:
    """One line of the intake summary shown to the administrator."""

    file: str
    outcome: str  # accepted | rejected | duplicate | unreadable | unidentified | refused
    unit: str = ""
    period: str = ""
    version: int = 0
    late: bool = False
    errors: int = 0
    warnings: int = 0
    message: str = ""


def list_inbox(inbox: Path) -> list[Path]:
    """Files waiting in the inbox folder (not in its processed/ subfolder), oldest first."""
    if not inbox.is_dir():
        return []
    files = [p for p in inbox.iterdir() if p.is_file() and not p.name.startswith(".")]
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))


def archive_file(path: Path, archive_dir: Path) -> tuple[str, Path, int]:
    """Copy the raw file to archive/<sha[:2]>/<sha><suffix>; never overwrite. Returns
    (sha256, archived path, size)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    sha = digest.hexdigest()
    target = archive_dir / sha[:2] / f"{sha}{path.suffix.lower()}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".part")
        shutil.copyfile(path, tmp)
        tmp.replace(target)
    return sha, target, target.stat().st_size


def identify(parsed: ParsedFile, name: str, tokens: dict[str, tuple[str, str]]) -> list[dict]:
    """Rows of the file tagged with unit and period, from the hidden sheet's token, its
    metadata, the CSV's own columns, or the file name `UNIT_2022-Q1...`, in that order."""
    meta = parsed.meta
    if meta.get("token") in tokens:
        unit, period = tokens[meta["token"]]
    elif meta.get("unit_code") and meta.get("period"):
        unit, period = meta["unit_code"], meta["period"]
    elif parsed.rows and all(r.get("unit") for r in parsed.rows):
        return parsed.rows
    elif m := _NAME.match(name):
        unit, period = m["unit"].upper(), m["period"].upper()
    else:
        return []
    return [{**r, "unit": unit, "period": period} for r in parsed.rows]


def _problem(rows: list[dict], rt: Runtime) -> str | None:
    if not rows:
        return (
            "không xác định được đơn vị và kỳ báo cáo / cannot tell unit and period: dùng biểu "
            "mẫu đã gửi kèm yêu cầu, hoặc đặt tên tệp MÃĐƠNVỊ_2022-Q1.xlsx"
        )
    expected = set(rt.cfg.expected_units(rt.report))
    for r in rows:
        if r["unit"] not in expected:
            return (
                f"mã đơn vị '{r['unit']}' không có trong danh sách đơn vị báo cáo / unknown unit "
                f"code; mã hợp lệ: {', '.join(sorted(expected))}"
            )
        try:
            p = Period.parse(r["period"])
        except PeriodError as exc:
            return str(exc)
        if p.kind != rt.report.period_kind:
            return (
                f"kỳ '{r['period']}' không phải kỳ của báo cáo {rt.report.id} / wrong period kind"
            )
    return None


def ingest_files(
    rt: Runtime, paths: list[Path], *, now: dt.datetime, move_from: Path | None = None
) -> list[IntakeResult]:
    """Archive, identify, validate and store a batch of returned files."""
    archived = [(path, *archive_file(path, rt.settings.archive_dir)) for path in paths]
    with session_scope(rt.engine) as s:
        tokens = crud.token_map(s)
        known = crud.known_sha256(s, sha256s=[sha for _, sha, _, _ in archived])
    results: list[IntakeResult] = []
    staged: list[tuple[Receipt, list[dict]]] = []
    closed: list[Receipt] = []
    for path, sha, stored, size in archived:
        receipt = Receipt(
            arrival_key=f"once:{uuid.uuid4().hex}",
            sha256=sha,
            original_name=path.name,
            archive_path=str(stored),
            size=size,
            received_at=now,
            outcome="received",
        )
        outcome, message, rows = screen(rt, path, stored, size, sha in known, tokens)
        known.add(sha)  # the same file twice in one batch is one submission
        if rows:
            staged.append((receipt, rows))
        else:
            receipt.outcome, receipt.message = outcome, message
            closed.append(receipt)
            results.append(IntakeResult(path.name, outcome, message=message))
    with session_scope(rt.engine) as s:
        for receipt in closed:
            crud.add_receipt(s, row=receipt)
    results += _store_batch(rt, staged, now)
    if move_from is not None:
        _move_processed(paths, move_from, now)
    return results


def screen(
    rt: Runtime,
    path: Path,
    stored: Path,
    size: int,
    duplicate: bool,
    tokens: dict[str, tuple[str, str]],
) -> tuple[str, str, list[dict]]:
    """(outcome, message, rows): rows tagged with unit and period when the file can be taken
    in, else the reason in Vietnamese and English. Reads the archived copy, never the original."""
    if duplicate:
        return (
            "duplicate",
            (
                "tệp giống hệt một lần gửi trước, không tạo phiên bản mới / "
                "identical to an earlier submission"
            ),
            [],
        )
    if path.suffix.lower() not in ACCEPTED_SUFFIXES:
        return (
            "refused",
            (
                f"định dạng {path.suffix or '(không có)'} không được hỗ trợ / "
                "unsupported type; gửi .xlsx hoặc .csv"
            ),
            [],
        )
    if size > rt.settings.max_file_bytes:
        return (
            "refused",
            (
                f"tệp quá lớn ({size:,} byte) / file too large; giới hạn "
                f"{rt.settings.max_file_bytes:,} byte"
            ),
            [],
        )
    try:
        rows = identify(read_file(stored), path.name, tokens)
    except FormError as exc:
        return "unreadable", str(exc).replace(stored.name, path.name), []
    problem = _problem(rows, rt)
    return ("unidentified", problem, []) if problem else ("accepted", "", rows)


def _move_processed(paths: list[Path], inbox: Path, now: dt.datetime) -> None:
    """Inbox files leave for inbox/processed/ once taken in (their bytes are archived)."""
    done = inbox / "processed"
    done.mkdir(parents=True, exist_ok=True)
    for path in paths:
        if path.parent.resolve() == inbox.resolve():
            target = done / f"{now.strftime('%Y%m%dT%H%M%S')}_{path.name}"
            n = 1
            while target.exists():  # never overwrite an earlier file of the same name
                target = done / f"{now.strftime('%Y%m%dT%H%M%S')}_{n}_{path.name}"
                n += 1
            path.replace(target)


def _store_batch(
    rt: Runtime, staged: list[tuple[Receipt, list[dict]]], now: dt.datetime
) -> list[IntakeResult]:
    """Validate every staged file's values at once, then store one submission per unit and
    period found (a CSV may carry several units)."""
    if not staged:
        return []
    records = [
        {**row, "sub": f"{n}:{row['unit']}:{row['period']}"}
        for n, (_, rows) in enumerate(staged)
        for row in rows
    ]
    obs = pd.DataFrame(records, columns=["sub", "unit", "period", "indicator", "raw", "cell"])
    periods = {
        code: ensure_period_row(rt.engine, rt.cfg, rt.report, Period.parse(code), now)
        for code in obs["period"].unique()
    }
    with session_scope(rt.engine) as s:
        for receipt, _ in staged:
            crud.add_receipt(s, row=receipt)
    results: list[IntakeResult] = []
    for year, year_obs in obs.groupby(obs["period"].str[:4]):
        values, findings = validate(year_obs, rt.report, rt.cfg, rt.report.plans.get(int(year), {}))
        values_by_sub = dict(tuple(values.groupby("sub")))
        findings_by_sub = dict(tuple(findings.groupby("sub")))
        for sub, first in year_obs.groupby("sub", sort=False).first().iterrows():
            receipt = staged[int(sub.split(":")[0])][0]
            results.append(
                _store_one(
                    rt,
                    receipt,
                    first["unit"],
                    periods[first["period"]],
                    values_by_sub.get(sub, values.iloc[:0]),
                    findings_by_sub.get(sub, findings.iloc[:0]),
                )
            )
    _close_receipts(rt, staged, results)
    return results


def _close_receipts(
    rt: Runtime, staged: list[tuple[Receipt, list[dict]]], results: list[IntakeResult]
) -> None:
    """A file is rejected if any of its submissions is; its unit is named when it had one."""
    with session_scope(rt.engine) as s:
        for receipt, rows in staged:
            mine = [r for r in results if r.file == receipt.original_name]
            units = {r["unit"] for r in rows}
            receipt.outcome = (
                "rejected" if any(r.outcome == "rejected" for r in mine) else "accepted"
            )
            receipt.unit_code = units.pop() if len(units) == 1 else None
            receipt.period_code = rows[0]["period"]
            crud.add_receipt(s, row=receipt)


def _store_one(
    rt: Runtime,
    receipt: Receipt,
    unit: str,
    period_row,
    values: pd.DataFrame,
    findings: pd.DataFrame,
) -> IntakeResult:
    """One new version for the unit: values and findings bulk-inserted, and when it is
    rejected, the message to the unit queued in the same transaction."""
    period = Period.parse(period_row.code)
    errors = findings[findings["severity"] == "error"]
    status = "rejected" if len(errors) else "valid"
    late = receipt.received_at > period_row.unit_deadline
    value_rows = [
        {
            "indicator": r.indicator,
            "value_num": None if pd.isna(r.value_num) else float(r.value_num),
            "value_text": r.value_text,
            "cell": r.cell,
        }
        for r in values.itertuples()
    ]
    finding_rows = [
        {
            "unit_code": unit,
            "indicator": f.indicator,
            "cell": f.cell,
            "rule": f.rule,
            "severity": f.severity,
            "message_vi": f.message_vi,
            "message_en": f.message_en,
        }
        for f in findings.itertuples()
    ]
    with session_scope(rt.engine) as s:
        version = crud.next_version(s, period_id=period_row.id, unit_code=unit)
        sub = crud.add_submission(
            s,
            row=Submission(
                period_id=period_row.id,
                unit_code=unit,
                version=version,
                receipt_id=receipt.id,
                sha256=receipt.sha256,
                received_at=receipt.received_at,
                late=late,
                status=status,
            ),
            values=value_rows,
            findings=[{**f, "receipt_id": receipt.id} for f in finding_rows],
        )
        if status == "rejected":
            crud.enqueue(
                s,
                messages=rejection_messages(
                    rt,
                    unit,
                    period,
                    sub,
                    receipt.original_name,
                    finding_rows,
                    period_row.unit_deadline,
                ),
            )
    outcome = "rejected" if status == "rejected" else "accepted"
    return IntakeResult(
        receipt.original_name,
        outcome,
        unit,
        period.code,
        version,
        late,
        len(errors),
        len(findings) - len(errors),
    )


def rejection_messages(
    rt: Runtime,
    unit_code: str,
    period: Period,
    sub: Submission,
    file_name: str,
    findings: list[dict],
    deadline: dt.datetime,
) -> list[dict]:
    unit = rt.cfg.unit_map[unit_code]
    last_day = as_vn(deadline) - dt.timedelta(seconds=1)
    subject, body = compose(
        rt.env,
        "messages/rejection.txt",
        body=rt.cfg.body,
        unit=unit,
        period=period,
        report=rt.report,
        version=sub.version,
        file_name=file_name,
        errors=[f for f in findings if f["severity"] == "error"],
        warnings=[f for f in findings if f["severity"] == "warning"],
        deadline=vnformat.date(last_day.date()),
    )
    return messages_for(
        key=f"rejection:{rt.report.id}:{period.code}:{unit_code}:v{sub.version}",
        kind="rejection",
        period_code=period.code,
        unit_code=unit_code,
        recipient=unit_code,
        contacts=unit.contacts,
        subject=subject,
        body=body,
    )


@task(name="ingest-files", cache_policy=NO_CACHE)
def ingest_files_task(
    rt: Runtime, paths: list[Path], now: dt.datetime, move_from: Path | None = None
) -> list[dict]:
    """Archive, validate and store a batch of returned files."""
    return [asdict(r) for r in ingest_files(rt, paths, now=now, move_from=move_from)]
