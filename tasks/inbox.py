"""The inbox folder, for offices without a mailbox: files are claimed by an atomic rename
into `inbox/.claims/<claim>/`, so two ingest runs never take the same file; a claim left by a
run that died is taken over by the next one; files still being written (changed in the last
seconds) wait for the next run. Once taken in, a file leaves for `inbox/processed/` (or
`inbox/quarantine/`); a file whose reader failed stays claimed for the next run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from baocao.faults import checkpoint
from baocao.models import Outcome
from baocao.periods import as_vn
from baocao.runtime import Runtime
from tasks.intake import Arrival, IntakeResult

CLAIMS = ".claims"
LEASE = ".lease"


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
            # the arrival's id starts with when it arrived, so claimed files sort in arrival
            # order (versions follow it) and keep their id if another run takes them over
            arrival_id = f"{st.st_mtime_ns:020d}-{uuid.uuid4().hex[:8]}"
            path.rename(folder / f"{arrival_id}__{path.name}")
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
        target = inbox / where / f"{stamp}_{arrival.key[-8:]}_{arrival.name}"
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


@task(name="claim-inbox", cache_policy=NO_CACHE)
def claim_inbox_task(rt: Runtime) -> Claim:
    """Claim the inbox's waiting files for this run."""
    return claim_inbox(
        rt.settings.inbox,
        settle_seconds=rt.settings.inbox_settle_seconds,
        lease_seconds=rt.settings.claim_lease_seconds,
    )


@task(name="finish-claim", cache_policy=NO_CACHE)
def finish_claim_task(rt: Runtime, claim: Claim, results: list[dict], now: dt.datetime) -> None:
    """Move the files taken in out of the inbox; release the claim."""
    finish_claim(claim, [IntakeResult(**r) for r in results], rt.settings.inbox, now)
