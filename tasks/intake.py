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
  submission however often or however concurrently it is taken in, rejections queued to the
  units in the same transaction. A rerun after a crash finishes what was left.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import socket
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
from baocao.config import Config, ReportDef
from baocao.db import session_scope
from baocao.faults import checkpoint
from baocao.forms import ParsedFile
from baocao.models import Credential, Outcome, ReportingPeriod, SubmissionStatus
from baocao.periods import Period, PeriodError, as_vn
from baocao.reader import ReadLimits, read_isolated
from baocao.runtime import Runtime
from tasks.notify import compose, messages_for
from tasks.validate import validate

ACCEPTED_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".xlsb", ".ods", ".csv"}
_NAME = re.compile(r"^(?P<unit>[A-Za-z0-9-]+)_(?P<period>\d{4}(?:-[QqHh][1-4])?)")
CLAIMS = ".claims"
LEASE = ".lease"
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


@dataclass
class Claim:
    """The inbox files one run took: they are in `folder` until the run finishes them."""

    folder: Path | None
    arrivals: list[Arrival] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # still being written: next run


# ---- the inbox folder -------------------------------------------------------------------


def _alive(lease: dict) -> bool:
    """Whether the run that holds a claim still runs: same host and process alive, or, on
    another host, its lease not yet expired."""
    if lease.get("host") == socket.gethostname():
        try:
            os.kill(int(lease["pid"]), 0)
        except (ProcessLookupError, ValueError, KeyError):
            return False
        except PermissionError:
            return True
        return lease.get("expires", 0) > time.time()
    return lease.get("expires", 0) > time.time()


def _write_lease(folder: Path, lease_seconds: float) -> None:
    lease = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "expires": time.time() + lease_seconds,
    }
    tmp = folder / f"{LEASE}.{os.getpid()}"
    tmp.write_text(json.dumps(lease))
    tmp.replace(folder / LEASE)


def renew_claim(claim: Claim, lease_seconds: float) -> None:
    """Keep the claim while a long run works through it."""
    if claim.folder is not None and claim.folder.is_dir():
        _write_lease(claim.folder, lease_seconds)


def claim_inbox(inbox: Path, *, settle_seconds: float, lease_seconds: float) -> Claim:
    """Take the inbox's waiting files (and those of claims whose run died) for this run."""
    if not inbox.is_dir():
        return Claim(None)
    claims = inbox / CLAIMS
    claims.mkdir(exist_ok=True)
    folder = claims / f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    _write_lease(folder, lease_seconds)
    claim = Claim(folder)
    for old in sorted(p for p in claims.iterdir() if p.is_dir() and p != folder):
        try:
            lease = json.loads((old / LEASE).read_text())
        except (OSError, ValueError):
            lease = {}
        if lease and _alive(lease):
            continue
        for f in sorted(old.iterdir()):
            if f.name.startswith(LEASE):
                continue
            try:
                f.rename(folder / f.name)  # atomic: of two runs taking it over, one wins
            except FileNotFoundError:
                continue
        _remove_quietly(old)
    now = time.time()
    waiting = sorted(
        (p for p in inbox.iterdir() if p.is_file() and not p.name.startswith(".")),
        key=lambda p: (p.stat().st_mtime, p.name),
    )
    for path in waiting:
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        if now - st.st_mtime < settle_seconds:
            claim.waiting.append(path.name)  # still being written, or just copied in
            continue
        try:
            path.rename(folder / f"{uuid.uuid4().hex[:12]}__{path.name}")
        except FileNotFoundError:  # another run claimed it first
            continue
    for f in sorted(folder.iterdir()):
        if f.name.startswith(LEASE):
            continue
        arrival_id, _, name = f.name.partition("__")
        claim.arrivals.append(Arrival(f, name or f.name, f"folder:{arrival_id}"))
    return claim


def finish_claim(claim: Claim, results: list[IntakeResult], inbox: Path, now: dt.datetime) -> None:
    """Files taken in leave for inbox/processed/ (quarantined ones for inbox/quarantine/);
    files whose reader failed stay claimed for the next run; the claim is released."""
    if claim.folder is None:
        return
    by_key = {r.arrival: r for r in results}
    stamp = as_vn(now).strftime("%Y%m%dT%H%M%S")
    for arrival in claim.arrivals:
        result = by_key.get(arrival.key)
        if result is None or result.outcome == "retry" or not arrival.path.exists():
            continue
        where = "quarantine" if result.outcome == Outcome.QUARANTINED else "processed"
        target = inbox / where / f"{stamp}_{arrival.key.split(':')[-1][:8]}_{arrival.name}"
        target.parent.mkdir(exist_ok=True)
        arrival.path.replace(target)
        checkpoint("ingest.closed")
    (claim.folder / LEASE).unlink(missing_ok=True)  # what is left is free for the next run
    if not any(claim.folder.iterdir()):
        _remove_quietly(claim.folder)


def _remove_quietly(folder: Path) -> None:
    try:
        for f in folder.iterdir():
            if f.name.startswith(LEASE):
                f.unlink(missing_ok=True)
        folder.rmdir()
    except OSError:
        pass  # another run put a file there meanwhile: it stays for that run


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


# ---- identify and authorize -------------------------------------------------------------


@dataclass
class Group:
    """The rows of one file that belong to one unit and period, and how we know it is theirs."""

    unit: str
    period: str
    credential: Credential
    rows: list[dict]


@dataclass
class Problem:
    outcome: Outcome
    message: str
    unit: str = ""
    period: str = ""


@dataclass(frozen=True)
class Directory:
    """What identification needs, built once per batch."""

    tokens: dict[str, tuple[str, str]]  # token -> (unit, period)
    periods: dict[str, ReportingPeriod]  # opened periods of the report
    expected: frozenset[str]
    addresses: dict[str, frozenset[str]]  # e-mail address -> units it may submit for
    report: ReportDef


def build_directory(rt: Runtime) -> Directory:
    with session_scope(rt.engine) as s:
        tokens = crud.token_map(s, report_id=rt.report.id)
        periods = crud.periods_by_code(s, report_id=rt.report.id)
    return Directory(
        tokens=tokens,
        periods=periods,
        expected=frozenset(rt.cfg.expected_units(rt.report)),
        addresses=unit_addresses(rt.cfg),
        report=rt.report,
    )


def unit_addresses(cfg: Config) -> dict[str, frozenset[str]]:
    """Each registered e-mail address of a unit (its contacts and its head's) -> its units."""
    out: dict[str, set[str]] = {}
    for u in cfg.units:
        contacts = list(u.contacts) + (list(u.head.contacts) if u.head else [])
        for c in contacts:
            if c.email:
                out.setdefault(c.email.lower(), set()).add(u.code)
    return {k: frozenset(v) for k, v in out.items()}


def identify(
    parsed: ParsedFile, arrival: Arrival, d: Directory
) -> tuple[list[Group], list[Problem]]:
    """The file's rows grouped by unit and period, each with its credential, and what is
    wrong with the rest (unknown unit or period, closed period, no right to submit)."""
    meta = parsed.meta
    token = (meta.get("token") or "").strip()
    if token and token in d.tokens:
        unit, period = d.tokens[token]
        tagged = {(unit, period): [{**r, "unit": unit, "period": period} for r in parsed.rows]}
        credential: dict[tuple[str, str], Credential] = {(unit, period): Credential.TOKEN}
    else:
        if parsed.rows and all(r.get("unit") for r in parsed.rows):
            tagged = {}
            for r in parsed.rows:
                key = (str(r["unit"]).strip().upper(), str(r.get("period", "")).strip().upper())
                tagged.setdefault(key, []).append({**r, "unit": key[0], "period": key[1]})
        elif meta.get("unit_code") and meta.get("period"):
            key = (meta["unit_code"].strip().upper(), meta["period"].strip().upper())
            tagged = {key: [{**r, "unit": key[0], "period": key[1]} for r in parsed.rows]}
        elif m := _NAME.match(arrival.name):
            key = (m["unit"].upper(), m["period"].upper())
            tagged = {key: [{**r, "unit": key[0], "period": key[1]} for r in parsed.rows]}
        else:
            return [], [
                Problem(
                    Outcome.UNIDENTIFIED,
                    "Không xác định được đơn vị và kỳ báo cáo của tệp: hãy điền vào biểu mẫu đã "
                    "gửi kèm thư yêu cầu (biểu mẫu có mã riêng của đơn vị) rồi gửi lại.",
                )
            ]
        credential = {}
        for key, rows in tagged.items():
            row_tokens = {str(r.get("token") or "").strip() for r in rows} - {""}
            if row_tokens and all(d.tokens.get(t) == key for t in row_tokens):
                credential[key] = Credential.TOKEN
            elif arrival.sender and key[0] in d.addresses.get(arrival.sender.lower(), ()):
                credential[key] = Credential.SENDER
            elif arrival.vouched_unit and arrival.vouched_unit == key[0]:
                credential[key] = Credential.OPERATOR
    groups: list[Group] = []
    problems: list[Problem] = []
    for (unit, period), rows in tagged.items():
        problem = _check_group(unit, period, credential.get((unit, period)), token, arrival, d)
        if problem:
            problems.append(problem)
        else:
            groups.append(Group(unit, period, credential[(unit, period)], rows))
    return groups, problems


def _check_group(
    unit: str,
    period: str,
    credential: Credential | None,
    token: str,
    arrival: Arrival,
    d: Directory,
) -> Problem | None:
    if unit not in d.expected:
        return Problem(
            Outcome.UNIDENTIFIED,
            f"Mã đơn vị '{unit}' không có trong danh sách đơn vị báo cáo {d.report.name}; "
            "hãy dùng biểu mẫu đã gửi kèm thư yêu cầu.",
            unit,
            period,
        )
    try:
        p = Period.parse(period)
    except PeriodError as exc:
        return Problem(Outcome.UNIDENTIFIED, str(exc), unit, period)
    if p.kind != d.report.period_kind:
        return Problem(
            Outcome.UNIDENTIFIED,
            f"Kỳ '{period}' không phải kỳ của báo cáo {d.report.name}.",
            unit,
            period,
        )
    if p.code not in d.periods:
        return Problem(
            Outcome.CLOSED_PERIOD,
            f"Kỳ {p.label} của báo cáo {d.report.name} chưa mở hoặc không nhận số liệu; "
            "tệp không được dùng.",
            unit,
            p.code,
        )
    if credential is None:
        why = "mã biểu mẫu trong tệp không đúng" if token else "tệp không có mã biểu mẫu của đơn vị"
        return Problem(
            Outcome.UNAUTHORIZED,
            f"Tệp ghi số liệu của đơn vị {unit} kỳ {p.label} nhưng {why}, và không được gửi từ "
            f"địa chỉ đã đăng ký của đơn vị: không dùng để thay số liệu của {unit}. Đơn vị hãy "
            "điền vào biểu mẫu đã nhận kèm thư yêu cầu, hoặc gửi từ địa chỉ thư của đơn vị.",
            unit,
            p.code,
        )
    return None


# ---- one batch --------------------------------------------------------------------------


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
    directory = build_directory(rt)
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
        else:
            it.groups, it.problems = identify(out.parsed, it.arrival, directory)
            if not it.groups:
                first = it.problems[0]
                it.outcome, it.message = first.outcome, _join(p.message for p in it.problems)
                it.unit, it.period = first.unit or None, first.period or None
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
            "sub": f"{n}:{g.unit}:{g.period}",
            "unit": g.unit,
            "period": g.period,
            "indicator": str(r.get("indicator", "")),
            "raw": r.get("raw"),
            "cell": r.get("cell", ""),
            "problem": r.get("problem"),
        }
        for n, it in enumerate(items)
        for g in it.groups
        for r in g.rows
    ]
    columns = ["sub", "unit", "period", "indicator", "raw", "cell", "problem"]
    return pd.DataFrame(records, columns=columns)


def _validated(rt: Runtime, obs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Values and findings of every staged submission, one validation per year of plans."""
    values, findings = [], []
    for year, year_obs in obs.groupby(obs["period"].str[:4]):
        v, f = validate(year_obs, rt.report, rt.cfg, rt.report.plans.get(int(year), {}))
        values.append(v)
        findings.append(f)
    return pd.concat(values), pd.concat(findings)


def _store(rt: Runtime, items: list[_Item], d: Directory, now: dt.datetime) -> list[IntakeResult]:
    """Validate the staged groups and store everything in one transaction (retried when a
    concurrent run stored a version of the same unit first)."""
    obs = _observations(items)
    if len(obs):
        values, findings = _validated(rt, obs)
    else:
        values = findings = pd.DataFrame(columns=["sub", "severity"])
    values_by_sub = dict(tuple(values.groupby("sub"))) if len(values) else {}
    findings_by_sub = dict(tuple(findings.groupby("sub"))) if len(findings) else {}
    for attempt in range(STORE_TRIES):
        try:
            with session_scope(rt.engine) as s:
                return _store_in(rt, s, items, d, values_by_sub, findings_by_sub, now)
        except sa.exc.IntegrityError:
            if attempt == STORE_TRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def _store_in(rt, s, items, d, values_by_sub, findings_by_sub, now) -> list[IntakeResult]:
    subs = [
        (n, it, g)
        for n, it in enumerate(items)
        if it.outcome is None and not it.retry
        for g in it.groups
    ]
    period_ids = {code: d.periods[code].id for code in {g.period for _, _, g in subs}}
    existing = crud.existing_content(
        s, keys=[(period_ids[g.period], g.unit, it.sha) for _, it, g in subs]
    )
    versions = crud.latest_versions(s, pairs=[(period_ids[g.period], g.unit) for _, _, g in subs])
    new_rows, new_meta, per_item, taken = [], [], {}, set()
    empty = pd.DataFrame(columns=["severity"])
    for n, it, g in subs:
        pid = period_ids[g.period]
        sub_key = f"{n}:{g.unit}:{g.period}"
        found = findings_by_sub.get(sub_key, empty)
        errors = int((found["severity"] == "error").sum())
        warnings = len(found) - errors
        late = now > d.periods[g.period].unit_deadline
        if (pid, g.unit, it.sha) in existing or (pid, g.unit, it.sha) in taken:
            old = existing.get((pid, g.unit, it.sha))
            per_item.setdefault(n, []).append(
                IntakeResult(
                    it.arrival.name,
                    Outcome.DUPLICATE,
                    g.unit,
                    g.period,
                    old[1] if old else 0,
                    message="Tệp giống hệt một lần gửi trước; không tạo phiên bản mới.",
                    arrival=it.arrival.key,
                )
            )
            continue
        taken.add((pid, g.unit, it.sha))
        version = versions.get((pid, g.unit), 0) + 1
        versions[(pid, g.unit)] = version
        status = SubmissionStatus.REJECTED if errors else SubmissionStatus.VALID
        new_rows.append(
            {
                "period_id": pid,
                "unit_code": g.unit,
                "version": version,
                "receipt_id": it.receipt_id,
                "sha256": it.sha,
                "credential": g.credential,
                "received_at": now,
                "late": late,
                "status": status,
            }
        )
        new_meta.append((sub_key, (pid, g.unit, it.sha), n, g, version, status))
        per_item.setdefault(n, []).append(
            IntakeResult(
                it.arrival.name,
                Outcome.REJECTED if errors else Outcome.ACCEPTED,
                g.unit,
                g.period,
                version,
                late,
                errors,
                warnings,
                arrival=it.arrival.key,
            )
        )
    ids = crud.insert_submissions(s, rows=new_rows)
    value_rows, finding_rows, messages = [], [], []
    for sub_id, (sub_key, _, n, g, version, status) in zip(ids, new_meta, strict=True):
        it = items[n]
        vals = values_by_sub.get(sub_key)
        if vals is not None:
            value_rows += [
                {
                    "submission_id": sub_id,
                    "indicator": ind,
                    "value_num": None if pd.isna(num) else float(num),
                    "value_text": text,
                    "cell": cell,
                }
                for ind, num, text, cell in zip(
                    vals["indicator"],
                    vals["value_num"],
                    vals["value_text"],
                    vals["cell"],
                    strict=True,
                )
            ]
        found = findings_by_sub.get(sub_key)
        rows = [] if found is None else _finding_rows(found, g.unit)
        finding_rows += [{**f, "receipt_id": it.receipt_id, "submission_id": sub_id} for f in rows]
        if status == SubmissionStatus.REJECTED:
            messages += rejection_messages(
                rt,
                g.unit,
                Period.parse(g.period),
                version,
                it.arrival.name,
                rows,
                d.periods[g.period].unit_deadline,
            )
    crud.add_values(s, rows=value_rows)
    closes, results = [], []
    for n, it in enumerate(items):
        if it.retry:
            results.append(
                IntakeResult(it.arrival.name, "retry", message=it.message, arrival=it.arrival.key)
            )
            continue
        if it.outcome is not None:
            closes.append(
                {
                    "id": it.receipt_id,
                    "outcome": it.outcome,
                    "unit_code": it.unit,
                    "period_code": it.period,
                    "message": it.message,
                }
            )
            finding_rows.append(
                {
                    "receipt_id": it.receipt_id,
                    "submission_id": None,
                    "unit_code": it.unit,
                    "indicator": "",
                    "cell": "",
                    "rule": str(it.outcome),
                    "severity": "error",
                    "message_vi": it.message,
                    "message_en": "",
                }
            )
            results.append(
                IntakeResult(
                    it.arrival.name,
                    it.outcome,
                    it.unit or "",
                    it.period or "",
                    message=it.message,
                    arrival=it.arrival.key,
                )
            )
            continue
        mine = per_item.get(n, [])
        for p in it.problems:  # a CSV's other units that could not be taken
            finding_rows.append(
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
            )
            mine.append(
                IntakeResult(
                    it.arrival.name,
                    p.outcome,
                    p.unit,
                    p.period,
                    message=p.message,
                    arrival=it.arrival.key,
                )
            )
        outcomes = {r.outcome for r in mine}
        outcome = (
            Outcome.REJECTED
            if Outcome.REJECTED in outcomes
            else Outcome.ACCEPTED
            if Outcome.ACCEPTED in outcomes
            else Outcome.DUPLICATE
            if Outcome.DUPLICATE in outcomes
            else it.problems[0].outcome
        )
        units = {r.unit for r in mine if r.unit}
        closes.append(
            {
                "id": it.receipt_id,
                "outcome": outcome,
                "unit_code": units.pop() if len(units) == 1 else None,
                "period_code": it.groups[0].period,
                "message": _join(r.message for r in mine if r.message),
            }
        )
        results += mine
    crud.add_findings(s, findings=finding_rows)
    crud.close_receipts(s, updates=closes)
    crud.enqueue(s, messages=messages)
    return results


def _finding_rows(found: pd.DataFrame, unit: str) -> list[dict]:
    return [
        {
            "unit_code": unit,
            "indicator": ind,
            "cell": cell,
            "rule": rule,
            "severity": sev,
            "message_vi": vi,
            "message_en": en,
        }
        for ind, cell, rule, sev, vi, en in zip(
            found["indicator"],
            found["cell"],
            found["rule"],
            found["severity"],
            found["message_vi"],
            found["message_en"],
            strict=True,
        )
    ]


MAX_FINDINGS_IN_MESSAGE = 20


def rejection_messages(
    rt: Runtime,
    unit_code: str,
    period: Period,
    version: int,
    file_name: str,
    findings: list[dict],
    deadline: dt.datetime,
) -> list[dict]:
    """The message telling the unit what is wrong: at most the first findings and a count,
    so a file with a hundred thousand mistakes is still a short mail."""
    unit = rt.cfg.unit_map[unit_code]
    last_day = as_vn(deadline) - dt.timedelta(seconds=1)
    errors = [f for f in findings if f["severity"] == "error"]
    warnings = [f for f in findings if f["severity"] == "warning"]
    subject, body = compose(
        rt.env,
        "messages/rejection.txt",
        body=rt.cfg.body,
        unit=unit,
        period=period,
        report=rt.report,
        version=version,
        file_name=file_name,
        errors=errors[:MAX_FINDINGS_IN_MESSAGE],
        warnings=warnings[: max(0, MAX_FINDINGS_IN_MESSAGE - len(errors))],
        error_count=len(errors),
        more=max(0, len(findings) - MAX_FINDINGS_IN_MESSAGE),
        deadline=vnformat.date(last_day.date()),
    )
    return messages_for(
        key=f"rejection:{rt.report.id}:{period.code}:{unit_code}:v{version}",
        kind="rejection",
        period_code=period.code,
        unit_code=unit_code,
        recipient=unit_code,
        contacts=unit.contacts,
        subject=subject,
        body=body,
    )


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


@task(name="claim-inbox", cache_policy=NO_CACHE)
def claim_inbox_task(rt: Runtime) -> Claim:
    """Claim the inbox's waiting files for this run."""
    return claim_inbox(
        rt.settings.inbox,
        settle_seconds=rt.settings.inbox_settle_seconds,
        lease_seconds=rt.settings.claim_lease_seconds,
    )


@task(name="ingest-files", cache_policy=NO_CACHE)
def ingest_arrivals_task(rt: Runtime, arrivals: list[Arrival], now: dt.datetime) -> list[dict]:
    """Archive, validate and store a batch of received files."""
    return [asdict(r) for r in ingest_arrivals(rt, arrivals, now=now)]


@task(name="finish-claim", cache_policy=NO_CACHE)
def finish_claim_task(rt: Runtime, claim: Claim, results: list[dict], now: dt.datetime) -> None:
    """Move the files taken in out of the inbox; release the claim."""
    finish_claim(claim, [IntakeResult(**r) for r in results], rt.settings.inbox, now)
