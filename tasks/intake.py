"""Take in returned files, exactly once, whatever arrives and whatever happens meanwhile.

    claim -> archive -> receipt -> read (isolated) -> identify and authorize -> validate -> store

- **Claim.** Inbox files are claimed by an atomic rename into `inbox/.claims/<claim>/`, so two
  ingest runs never take the same file; a claim left by a run that died is taken over by the
  next one. Files still being written (changed in the last seconds) wait for the next run.
- **Archive, then receipt.** The raw bytes are copied to `archive/` under their SHA-256 before
  anything reads them, and each arrival gets one receipt, keyed by the arrival (not by the
  run), with the read attempt counted before reading: a file that kills its reader three
  times is quarantined and the batch goes on.
- **Authorize.** A file counts for a unit only with that unit's form code (the token of its
  request), from one of its registered addresses, or filed by the office for it; only the
  report's opened periods accept submissions.
- **Store once.** A batch is validated in one pass and stored in one transaction: versions
  for all units at once, a unique key on (period, unit, content) so the same file is one
  submission however often or however concurrently it is taken in; each new version's
  message queued to its unit in the same transaction (a rejection saying what to fix, or a
  receipt with the figures as recorded). A rerun after a crash finishes what was left.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from prefect import task
from prefect.cache_policies import NO_CACHE

from baocao import crud, vnformat
from baocao.db import session_scope
from baocao.faults import checkpoint
from baocao.models import Outcome, SubmissionStatus
from baocao.notices import Notice, queue_notices
from baocao.periods import Period
from baocao.reader import ReadLimits, read_isolated
from baocao.runtime import Runtime
from tasks.identify import Directory, Group, Problem, build_directory, identify, named_by, report_of
from tasks.messages import receipt_notice, rejection_notice, unreadable_notice
from tasks.validate import validate

ACCEPTED_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".xlsb", ".ods", ".csv"}
STORE_TRIES = 5


@dataclass(frozen=True)
class Arrival:
    """One received file: where its bytes are now and how it came.

    `key` names the arrival across reruns (a claimed inbox file keeps its id in its name;
    a file given on the command line is its path and content)."""

    path: Path
    name: str  # as the sender named it
    key: str
    source: str = "folder"  # folder | mail | cli
    sender: str | None = None  # the mail sender's address, when it came by mail
    vouched_unit: str | None = None  # filed by the office for this unit (`ingest --unit`)


@dataclass
class IntakeResult:
    """One line of the intake summary shown to the administrator."""

    file: str
    outcome: str  # an Outcome, or "retry" (its reader failed; tried again next run)
    unit: str = ""
    period: str = ""
    version: int = 0
    late: bool = False
    errors: int = 0
    warnings: int = 0
    message: str = ""
    arrival: str = ""
    report: str = ""


def arrivals_from_paths(paths: Iterable[Path], *, unit: str | None = None) -> list[Arrival]:
    """Files named on the command line: one arrival per path and content (a rerun of the
    same command is the same arrival)."""
    out = []
    for p in paths:
        p = Path(p)
        out.append(
            Arrival(
                p,
                p.name,
                f"cli:{p.resolve()}:{sha256_of(p)}",
                source="cli",
                vouched_unit=unit,
            )
        )
    return out


# ---- archive ----------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def archive_file(path: Path, archive_dir: Path) -> tuple[str, Path, int]:
    """Copy the raw file to archive/<sha[:2]>/<sha><suffix>, never overwriting, safe when two
    runs archive the same content at once. Returns (sha256, archived path, size)."""
    sha = sha256_of(path)
    target = archive_dir / sha[:2] / f"{sha}{path.suffix.lower()}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{sha}.{uuid.uuid4().hex[:8]}.part"
        with path.open("rb") as src, tmp.open("wb") as dst:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        tmp.replace(target)
    return sha, target, target.stat().st_size


@dataclass
class _Item:
    """One arrival as it goes through the batch."""

    arrival: Arrival
    sha: str
    stored: Path
    size: int
    receipt_id: int = 0
    outcome: Outcome | None = None  # set when the arrival is finished without a version
    message: str = ""
    unit: str | None = None
    period: str | None = None
    report: str | None = None
    groups: list[Group] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    retry: bool = False
    done: bool = False  # finished by an earlier run: nothing to store


def ingest_arrivals(
    rt: Runtime, arrivals: list[Arrival], *, now: dt.datetime
) -> list[IntakeResult]:
    """Archive, read, identify, validate and store a batch of arrivals; one result each."""
    if not arrivals:
        return []
    items = [_Item(a, *archive_file(a.path, rt.settings.archive_dir)) for a in arrivals]
    checkpoint("ingest.archived")
    max_tries = rt.settings.max_read_attempts
    with session_scope(rt.engine) as s:
        receipts = crud.ensure_receipts(
            s,
            rows=[
                {
                    "arrival_key": it.arrival.key,
                    "source": it.arrival.source,
                    "sender": it.arrival.sender,
                    "attempts": 0,
                    "sha256": it.sha,
                    "original_name": it.arrival.name[:500],
                    "archive_path": str(it.stored),
                    "size": it.size,
                    "received_at": now,
                    "outcome": Outcome.RECEIVED,
                    "message": "",
                }
                for it in items
            ],
        )
        quarantined = crud.quarantined_sha256(s, sha256s={it.sha for it in items})
    directory = build_directory(rt)
    done_before: list[IntakeResult] = []
    to_read: list[_Item] = []
    for it in items:
        receipt = receipts[it.arrival.key]
        it.receipt_id = receipt.id
        if receipt.outcome != Outcome.RECEIVED:  # finished by an earlier run that then died
            it.done = True
            done_before.append(
                IntakeResult(
                    it.arrival.name,
                    receipt.outcome,
                    receipt.unit_code or "",
                    receipt.period_code or "",
                    message=_join([receipt.message, "(đã tiếp nhận ở lần chạy trước)"]),
                    arrival=it.arrival.key,
                    report=report_of(
                        receipt.unit_code or "", receipt.period_code or "", [], directory
                    ),
                )
            )
            continue
        if it.sha in quarantined or receipt.attempts > max_tries:
            it.outcome, it.message = Outcome.QUARANTINED, _quarantine_message(max_tries)
        elif it.arrival.path.suffix.lower() not in ACCEPTED_SUFFIXES:
            it.outcome = Outcome.REFUSED
            it.message = (
                f"Định dạng {it.arrival.path.suffix or '(không có)'} không dùng được: hãy gửi "
                "biểu mẫu Excel (.xlsx) đã nhận kèm thư yêu cầu, hoặc tệp .csv."
            )
        elif it.size > rt.settings.max_file_bytes:
            it.outcome = Outcome.REFUSED
            it.message = (
                f"Tệp quá lớn ({vnformat.number(it.size)} byte, giới hạn "
                f"{vnformat.number(rt.settings.max_file_bytes)} byte)."
            )
        else:
            to_read.append(it)
    outcomes = read_isolated(
        [it.stored for it in to_read], ReadLimits.from_settings(rt.settings), workers=2
    )
    checkpoint("ingest.read")
    for it, out in zip(to_read, outcomes, strict=True):
        if out.crashed:
            if receipts[it.arrival.key].attempts >= max_tries:
                it.outcome, it.message = Outcome.QUARANTINED, _quarantine_message(max_tries)
            else:
                it.retry, it.message = True, out.error
        elif out.parsed is None:
            it.outcome, it.message = (
                Outcome.UNREADABLE,
                out.error.replace(it.stored.name, it.arrival.name),
            )
            it.report, it.unit, it.period = named_by(it.arrival.name, directory)
        else:
            it.groups, it.problems = identify(out.parsed, it.arrival, directory)
            if not it.groups:
                first = it.problems[0]
                it.outcome, it.message = first.outcome, _join(p.message for p in it.problems)
                it.unit, it.period = first.unit or None, first.period or None
                it.report = first.report or None
    results = _store(rt, [it for it in items if not it.done], directory, now)
    checkpoint("ingest.stored")
    return done_before + results


def _quarantine_message(tries: int) -> str:
    return (
        f"Tệp làm trình đọc dừng {tries} lần nên được để riêng (cách ly), không đọc nữa. "
        "Hãy mở tệp bằng Excel, chép số liệu vào biểu mẫu gốc đã nhận kèm thư yêu cầu rồi gửi lại."
    )


def _join(texts: Iterable[str]) -> str:
    seen: list[str] = []
    for t in texts:
        if t not in seen:
            seen.append(t)
    return " ".join(seen)


def _observations(items: list[_Item]) -> pd.DataFrame:
    records = [
        {
            "sub": _sub_key(n, g),
            "report": g.report,
            "unit": g.unit,
            "period": g.period,
            "indicator": str(r.get("indicator", "")),
            "raw": r.get("raw"),
            "cell": r.get("cell", ""),
            "problem": r.get("problem"),
            "percent_cell": bool(r.get("percent_cell")),
        }
        for n, it in enumerate(items)
        for g in it.groups
        for r in g.rows
    ]
    columns = [
        "sub",
        "report",
        "unit",
        "period",
        "indicator",
        "raw",
        "cell",
        "problem",
        "percent_cell",
    ]
    return pd.DataFrame(records, columns=columns)


def _sub_key(n: int, g: Group) -> str:
    """The key of one staged submission: arrival number, report, unit, period."""
    return f"{n}:{g.report}:{g.unit}:{g.period}"


def _validated(rt: Runtime, obs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Values and findings of every staged submission, one validation per report and
    period: its year's plans, and its units' figures of the period before (one query)."""
    values, findings = [], []
    for (report_id, code), p_obs in obs.groupby(["report", "period"]):
        report = rt.cfg.report(report_id)
        with session_scope(rt.engine) as s:
            units = p_obs["unit"].unique().tolist()
            before = crud.previous_values(s, report_id=report_id, period_code=code, units=units)
        plans = rt.cfg.plan(report_id, Period.parse(code).year)
        v, f = validate(p_obs, report, rt.cfg, plans, before)
        values.append(v)
        findings.append(f)
    return pd.concat(values), pd.concat(findings)


@dataclass
class _Checked:
    """Validation of the batch: typed values and findings as plain records, by submission
    key (`_sub_key`); bucketed once, since a national batch has ten thousand submissions."""

    values: dict[str, list[dict]]
    findings: dict[str, list[dict]]

    @classmethod
    def of(cls, values: pd.DataFrame, findings: pd.DataFrame) -> _Checked:
        return cls(_by_sub(values), _by_sub(findings))

    def counts(self, key: str) -> tuple[int, int]:
        found = self.findings.get(key, [])
        errors = sum(1 for f in found if f["severity"] == "error")
        return errors, len(found) - errors


def _by_sub(frame: pd.DataFrame) -> dict[str, list[dict]]:
    """The frame's rows as records, grouped by their `sub` column, in order."""
    out: dict[str, list[dict]] = {}
    for record in frame.to_dict("records"):
        out.setdefault(record["sub"], []).append(record)
    return out


@dataclass
class _NewVersion:
    item: int  # index of the arrival in the batch
    group: Group
    key: str  # `_sub_key`
    row: dict  # the submission row to insert


def _store(rt: Runtime, items: list[_Item], d: Directory, now: dt.datetime) -> list[IntakeResult]:
    """Validate the staged groups and store everything in one transaction (retried when a
    concurrent run stored a version of the same unit first)."""
    obs = _observations(items)
    checked = _Checked({}, {})
    if len(obs):
        checked = _Checked.of(*_validated(rt, obs))
    for attempt in range(STORE_TRIES):
        try:
            with session_scope(rt.engine) as s:
                return _store_in(rt, s, items, d, checked, now)
        except sa.exc.IntegrityError:
            if attempt == STORE_TRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def _store_in(rt, s, items, d, checked: _Checked, now) -> list[IntakeResult]:
    """New versions, their values and findings, the receipts closed and the rejections
    queued: the statements of one transaction."""
    staged = [
        (n, it, g)
        for n, it in enumerate(items)
        if it.outcome is None and not it.retry
        for g in it.groups
    ]
    new, results = _plan_versions(s, staged, d, checked, now)
    ids = crud.insert_submissions(s, rows=[v.row for v in new])
    value_rows, finding_rows, notices = [], [], []
    for sub_id, v in zip(ids, new, strict=True):
        it = items[v.item]
        value_rows += _value_rows(checked.values.get(v.key), sub_id)
        found = checked.findings.get(v.key, [])
        rows = _finding_rows(found, v.group.unit)
        rows += [_note_row(note, v.group.unit) for note in v.group.notes]
        finding_rows += [{**f, "receipt_id": it.receipt_id, "submission_id": sub_id} for f in rows]
        notices.append(_version_notice(rt, it, v, found, checked.values.get(v.key), d))
    crud.add_values(s, rows=value_rows)
    closes, out = [], []
    for n, it in enumerate(items):
        if it.retry:
            out.append(
                IntakeResult(it.arrival.name, "retry", message=it.message, arrival=it.arrival.key)
            )
            continue
        close, mine, problem_findings = _close(it, results.get(n, []))
        closes.append(close)
        finding_rows += problem_findings
        out += mine
    notices += [
        unreadable_notice(
            rt.for_report(it.report),
            unit_code=it.unit,
            period=Period.parse(it.period),
            file_name=it.arrival.name,
            sha256=it.sha,
            reason=it.message,
            received=now,
            deadline=d.periods[(it.report, it.period)].unit_deadline,
        )
        for it in items
        if it.outcome == Outcome.UNREADABLE and it.unit and it.report
    ]
    crud.add_findings(s, findings=finding_rows)
    crud.close_receipts(s, updates=closes)
    queue_notices(s, notices)
    return out


def _version_notice(rt, it: _Item, v: _NewVersion, found, values, d: Directory) -> Notice:
    """What the unit hears about a new version: its rejection (the findings), or its receipt
    (the figures as recorded); either is queued with the version, once per version."""
    common = dict(
        unit_code=v.group.unit,
        period=Period.parse(v.group.period),
        version=v.row["version"],
        file_name=it.arrival.name,
        received=v.row["received_at"],
        deadline=d.periods[(v.group.report, v.group.period)].unit_deadline,
    )
    rt = rt.for_report(v.group.report)
    if v.row["status"] == SubmissionStatus.REJECTED:
        return rejection_notice(rt, **common, findings=found)
    figures = {r["indicator"]: (r["value_num"], r["value_text"]) for r in values or []}
    return receipt_notice(rt, **common, late=v.row["late"], values=figures, findings=found)


def _plan_versions(
    s, staged: list[tuple[int, _Item, Group]], d: Directory, checked: _Checked, now: dt.datetime
) -> tuple[list[_NewVersion], dict[int, list[IntakeResult]]]:
    """A version number for each new content, all units at once; content already stored
    for its unit and period (or twice in this batch) is a duplicate."""
    keys = [(d.periods[(g.report, g.period)].id, g.unit, it.sha) for _, it, g in staged]
    existing = crud.existing_content(s, keys=keys)
    versions = crud.latest_versions(s, pairs=[(p, u) for p, u, _ in keys])
    new: list[_NewVersion] = []
    results: dict[int, list[IntakeResult]] = {}
    taken: set[tuple[int, str, str]] = set()
    for (n, it, g), key in zip(staged, keys, strict=True):
        if key in existing or key in taken:
            old = existing.get(key)
            results.setdefault(n, []).append(
                IntakeResult(
                    it.arrival.name,
                    Outcome.DUPLICATE,
                    g.unit,
                    g.period,
                    old[1] if old else 0,
                    message=_join(
                        ["Tệp giống hệt một lần gửi trước; không tạo phiên bản mới.", *g.notes]
                    ),
                    arrival=it.arrival.key,
                    report=g.report,
                )
            )
            continue
        taken.add(key)
        version = versions.get(key[:2], 0) + 1
        versions[key[:2]] = version
        sub_key = _sub_key(n, g)
        errors, warnings = checked.counts(sub_key)
        late = now > d.periods[(g.report, g.period)].unit_deadline
        row = {
            "period_id": key[0],
            "unit_code": g.unit,
            "version": version,
            "receipt_id": it.receipt_id,
            "sha256": it.sha,
            "credential": g.credential,
            "received_at": now,
            "late": late,
            "status": SubmissionStatus.REJECTED if errors else SubmissionStatus.VALID,
        }
        new.append(_NewVersion(n, g, sub_key, row))
        outcome = Outcome.REJECTED if errors else Outcome.ACCEPTED
        results.setdefault(n, []).append(
            IntakeResult(
                it.arrival.name,
                outcome,
                g.unit,
                g.period,
                version,
                late,
                errors,
                warnings + len(g.notes),
                message=_join(g.notes),
                arrival=it.arrival.key,
                report=g.report,
            )
        )
    return new, results


_PRECEDENCE = (Outcome.REJECTED, Outcome.ACCEPTED, Outcome.DUPLICATE)


def _close(it: _Item, stored: list[IntakeResult]) -> tuple[dict, list[IntakeResult], list[dict]]:
    """The receipt's final outcome, the arrival's results and the findings of its problems.
    A file is rejected if any of its submissions is; its unit is named when it had one."""
    problems = (
        it.problems
        if it.outcome is None
        else [Problem(it.outcome, it.message, it.unit or "", it.period or "", it.report or "")]
    )
    mine = stored + [
        IntakeResult(
            it.arrival.name,
            p.outcome,
            p.unit,
            p.period,
            message=p.message,
            arrival=it.arrival.key,
            report=p.report,
        )
        for p in problems
    ]
    found = {r.outcome for r in stored}
    outcome = next((o for o in _PRECEDENCE if o in found), None) or problems[0].outcome
    units = {r.unit for r in mine if r.unit}
    periods = [r.period for r in mine if r.period]
    close = {
        "id": it.receipt_id,
        "outcome": outcome,
        "unit_code": units.pop() if len(units) == 1 else None,
        "period_code": periods[0] if periods else None,
        "message": _join(r.message for r in mine if r.message),
    }
    findings = [
        {
            "receipt_id": it.receipt_id,
            "submission_id": None,
            "unit_code": p.unit or None,
            "indicator": "",
            "cell": "",
            "rule": str(p.outcome),
            "severity": "error",
            "message_vi": p.message,
            "message_en": "",
        }
        for p in problems
    ]
    return close, mine, findings


def _note_row(note: str, unit: str) -> dict:
    """A warning about how the version came (e.g. a unit's form from another unit's address)."""
    return {
        "unit_code": unit,
        "indicator": "",
        "cell": "",
        "rule": "sender",
        "severity": "warning",
        "message_vi": note,
        "message_en": "",
    }


def _value_rows(vals: list[dict] | None, sub_id: int) -> list[dict]:
    return [
        {
            "submission_id": sub_id,
            "indicator": v["indicator"],
            "value_num": None if pd.isna(v["value_num"]) else float(v["value_num"]),
            "value_text": v["value_text"],
            "cell": v["cell"],
        }
        for v in vals or []
    ]


_FINDING_FIELDS = ("indicator", "cell", "rule", "severity", "message_vi", "message_en")


def _finding_rows(found: list[dict], unit: str) -> list[dict]:
    return [{"unit_code": unit, **{k: f[k] for k in _FINDING_FIELDS}} for f in found]


def ingest_files(
    rt: Runtime, paths: list[Path], *, now: dt.datetime, unit: str | None = None
) -> list[IntakeResult]:
    """Take in files named on the command line (not moved); `unit` files them for that unit."""
    return ingest_arrivals(rt, arrivals_from_paths(paths, unit=unit), now=now)


def intake_summary(results: list[dict]) -> dict[str, int]:
    """How many files ended how, for the run's log."""
    counts: dict[str, int] = {}
    for r in results:
        counts[str(r["outcome"])] = counts.get(str(r["outcome"]), 0) + 1
    return counts


@task(name="ingest-files", cache_policy=NO_CACHE)
def ingest_arrivals_task(rt: Runtime, arrivals: list[Arrival], now: dt.datetime) -> list[dict]:
    """Archive, validate and store a batch of received files."""
    return [asdict(r) for r in ingest_arrivals(rt, arrivals, now=now)]
