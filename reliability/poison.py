"""Poison files: the 14 units' good returns mixed with hostile files in one inbox (a cell at
XFD1048576, 1e400, 10^30 dossiers, a zip bomb, a truncated and an empty file, 300 sheets, a
formula without its value, an indicator twice, UTF-16 and Windows-1258 CSVs, 100,000 rows,
a file still being written, a PDF and a PNG, TCKH's figures without TCKH's form code, periods
1900-Q1 and 9999-Q4), then `baocao publish`.

Expected: every good unit stored once, as valid; every hostile file one receipt with a clear
message and never a valid version; no traceback; markup in a unit's text stays text in
report.md, report.html and report.docx.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import time
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reliability import hostile
from reliability.harness import (
    FIGURES,
    PERIOD,
    PUBLISH_ARGS,
    REPORT_ID,
    ROOT,
    UNITS,
    Suite,
    Tally,
    Workspace,
    count_mail,
    receipts_by_sha,
    sha256,
    submissions_by_sha,
)
from reliability.returns import FormFiller, fillers

MAX_MAIL_BYTES = 256_000  # a rejection mail lists the first findings and a count
RUNS = 6  # ingest runs at most (a file that kills its reader is tried 3 times over runs)
SLOW_SECONDS = 15.0  # the slow writer's file grows for this long
READ_SECONDS = 5  # BAOCAO_READ_SECONDS_PER_FILE here: a hung reader is given up after it


@dataclass
class Case:
    """One hostile file and what must (not) become of it."""

    name: str
    content: bytes
    what: str
    outcomes: set[str] = field(default_factory=set)  # allowed receipt outcomes (empty: any)
    version: str = "none"  # none | not_valid | any | stored
    mentions: tuple[str, ...] = ()  # its finding or message must mention one of these
    extra: Callable[[Workspace, Case], list[str]] | None = None

    @property
    def sha(self) -> str:
        return sha256(self.content)


NOT_READ = {"unreadable", "quarantined", "refused", "unidentified"}


def _cases(ws: Workspace, fill: dict[str, FormFiller], tok: dict[str, str]) -> list[Case]:
    good_tp = fill["TP"].fill(FIGURES["TP"])
    return [
        Case("bang_tinh_o_xa.xlsx", hostile.far_cell(), "only cell XFD1048576", NOT_READ),
        Case(
            "TCKH_2022-Q1_1e400.xlsx",
            hostile.money_1e400(fill["TCKH"]),
            "money cell 1e400",
            version="not_valid",
        ),
        Case(
            "MOTCUA_2022-Q1_1e30.xlsx",
            hostile.dossiers_1e30(fill["MOTCUA"]),
            "10^30 dossiers",
            version="not_valid",
        ),
        Case("bom_nen.xlsx", hostile.zip_bomb(), "zip bomb (190 MB of rows)", NOT_READ),
        Case("TP_2022-Q1_dut.xlsx", hostile.truncated(good_tp), "truncated .xlsx", NOT_READ),
        Case("rong.xlsx", b"", "empty file", NOT_READ),
        Case("300_sheet.xlsx", hostile.many_sheets(300), "300 sheets", NOT_READ),
        Case(
            "TP_2022-Q1_congthuc.xlsx",
            hostile.formula_without_value(fill["TP"]),
            "formula without cached value",
            version="not_valid",
            mentions=("công thức", "formula"),
        ),
        Case(
            "VHTT_2022-Q1_trung.xlsx",
            hostile.indicator_twice(fill["VHTT"]),
            "same indicator twice",
            version="not_valid",
            mentions=("vhtt_vb_dien_tu_pct",),
        ),
        Case(
            "TP_2022-Q1_utf16.csv",
            hostile.utf16_csv(tok),
            "UTF-16 CSV",
            version="stored",
            extra=_text_stored("tp_nguon", hostile.utf16_values()["tp_nguon"]),
        ),
        Case(
            "NV_2022-Q1_win1258.csv",
            hostile.cp1258_csv(tok),
            "Windows-1258 CSV",
            version="any",
            extra=_read_or_told("NV", "nv_tuyen_dung", hostile.cp1258_values()["nv_tuyen_dung"]),
        ),
        Case(
            "SON-DUNG_2022-Q1_100k.csv",
            hostile.huge_csv("SON-DUNG", tok["SON-DUNG"], suite_rows(ws.suite)),
            f"{suite_rows(ws.suite):,}-row CSV",
            version="not_valid",
        ),
        Case("baocao_scan.pdf", hostile.pdf(), "PDF", {"refused", "unreadable"}),
        Case("anh_chup.png", hostile.png(), "PNG", {"refused", "unreadable"}),
        Case(
            "SON-TAN_1900-Q1.csv",
            hostile.other_period_csv("SON-TAN", tok["SON-TAN"], "1900-Q1"),
            "period 1900-Q1",
            {"closed_period", "unauthorized"},
        ),
        Case(
            "SON-TINH_9999-Q4.csv",
            hostile.other_period_csv("SON-TINH", tok["SON-TINH"], "9999-Q4"),
            "period 9999-Q4",
            {"closed_period", "unauthorized"},
        ),
    ]


def suite_rows(suite: Suite) -> int:
    return suite.n(100_000, 1000)


def _values_of(ws: Workspace, submission_id: int) -> dict[str, dict]:
    rows = ws.q("SELECT * FROM submission_value WHERE submission_id = :i", i=submission_id)
    return {r["indicator"]: r for r in rows}


def _text_stored(indicator: str, text: str) -> Callable[[Workspace, Case], list[str]]:
    def check(ws: Workspace, case: Case) -> list[str]:
        subs = submissions_by_sha(ws).get(case.sha, [])
        if not subs:
            return [f"{case.name}: not read ({case.what} can be detected and read)"]
        got = _values_of(ws, subs[0]["id"]).get(indicator, {}).get("value_text") or ""
        if unicodedata.normalize("NFC", got) != text:
            return [f"{case.name}: {indicator} stored as {got!r}, sent {text!r}"]
        return []

    return check


def _read_or_told(unit: str, indicator: str, text: str) -> Callable[[Workspace, Case], list[str]]:
    """Read correctly, or the unit (named in the file) told what to do about the file."""

    def check(ws: Workspace, case: Case) -> list[str]:
        if not _text_stored(indicator, text)(ws, case):
            return []
        subs = submissions_by_sha(ws).get(case.sha, [])
        if subs and subs[0]["status"] == "valid":
            return [f"{case.name}: stored as valid with garbled text"]
        told = ws.q(
            "SELECT id FROM outbox_message WHERE unit_code = :u AND body LIKE :n",
            u=unit,
            n=f"%{case.name}%",
        )
        return [] if told else [f"{case.name}: neither read nor the unit {unit} told"]

    return check


def _receipt_text(ws: Workspace, receipt: dict) -> str:
    findings = ws.q(
        "SELECT indicator, rule, message_vi, message_en FROM finding WHERE receipt_id = :i",
        i=receipt["id"],
    )
    parts = [receipt["message"] or ""]
    parts += [" ".join(str(v or "") for v in f.values()) for f in findings]
    return "\n".join(parts)


def _check_case(ws: Workspace, case: Case, receipts: dict, subs: dict) -> None:
    t = ws.tally
    mine = receipts.get(case.sha, [])
    if not mine:
        t.lost += 1
        t.failures.append(f"{case.name} ({case.what}): no receipt (lost)")
        return
    t.check(len(mine) == 1, f"{case.name}: {len(mine)} receipts for one file")
    r = mine[-1]
    text = _receipt_text(ws, r)
    t.check(r["outcome"] != "received", f"{case.name} ({case.what}): left 'received'")
    t.check(
        r["outcome"] == "accepted" or bool(text.strip()),
        f"{case.name} ({case.what}): outcome {r['outcome']} with no message",
    )
    t.check("Traceback" not in text, f"{case.name}: a traceback in its message")
    if case.outcomes:
        t.check(
            r["outcome"] in case.outcomes,
            f"{case.name} ({case.what}): outcome {r['outcome']}, expected one of "
            f"{sorted(case.outcomes)} ({text.strip()[:120]!r})",
        )
    versions = subs.get(case.sha, [])
    if case.version == "none":
        t.check(not versions, f"{case.name} ({case.what}): stored as a version")
    elif case.version == "not_valid":
        t.check(
            all(s["status"] != "valid" for s in versions),
            f"{case.name} ({case.what}): stored as VALID",
        )
    elif case.version == "stored":
        pass  # its extra check says what must be stored
    if case.mentions:
        t.check(
            any(m.lower() in text.lower() for m in case.mentions),
            f"{case.name} ({case.what}): no finding names it ({' / '.join(case.mentions)}); "
            f"told: {text.strip()[:150]!r}",
        )
    if case.extra:
        for problem in case.extra(ws, case):
            t.failures.append(problem)
            t.checks += 1


def run(suite: Suite) -> list[Tally]:
    t = Tally("poison files (hostile + 14 units)")
    with Workspace(suite, "poison", t) as ws:
        ws.open_period()
        tokens = ws.tokens()
        tok = {u: r["token"] for u, r in tokens.items()}
        fill = fillers(tokens)
        valid = {u: fill[u].fill(FIGURES[u]) for u in UNITS}
        valid["NV"] = fill["NV"].fill({**FIGURES["NV"], "nv_tuyen_dung": hostile.MARKUP_TEXT})
        cases = _cases(ws, fill, tok)
        # files that kill or hang their reader (the reader's own test hooks, named by the
        # archived copy it is given: <sha256>.xlsx): tried at most 3 times over runs, then
        # quarantined, and the rest of the batch goes on
        killer = Case(
            "SON-MAU_2022-Q1_treo_may.xlsx",
            fill["SON-MAU"].fill({**FIGURES["SON-MAU"], "tthc_pakn": 1}),
            "a file that aborts its reader",
            {"quarantined"},
        )
        hanger = Case(
            "SON-MUA_2022-Q1_lap_vo_han.xlsx",
            fill["SON-MUA"].fill({**FIGURES["SON-MUA"], "tthc_pakn": 2}),
            "a file its reader never finishes",
            {"quarantined"},
        )
        cases += [killer, hanger]
        ws.env_extra.update(
            {
                "BAOCAO_READER_TEST_CRASH_ON": f"{killer.sha}.xlsx",
                "BAOCAO_READER_TEST_HANG_ON": f"{hanger.sha}.xlsx",
                "BAOCAO_READ_SECONDS_PER_FILE": str(READ_SECONDS),
            }
        )
        unauthorized = Case(
            "TCKH_2022-Q1_sua_lai.csv",
            hostile.no_token_csv("TCKH", {**FIGURES["TCKH"], "tc_thu_nsnn": 999999}),
            "TCKH's figures without TCKH's form code",
            {"unauthorized"},
        )
        slow_name, slow_unit = "SON-LIEN_2022-Q1.xlsx", "SON-LIEN"
        now = time.time()
        for i, c in enumerate(cases):  # hostile files arrived first
            ws.put(c.name, c.content, mtime=now - 900 + i)
        for i, u in enumerate(UNITS):  # then the units' good returns
            if u != slow_unit:
                ws.put(f"{u}_{PERIOD}.xlsx", valid[u], mtime=now - 600 + i)
        ws.put(unauthorized.name, unauthorized.content, mtime=now - 120)  # the newest
        cases.append(unauthorized)
        t.files_tried = len(cases) + len(UNITS)

        # a unit's file still being copied into the inbox while ingest runs
        src = ws.dir / "slow-source.xlsx"
        src.write_bytes(valid[slow_unit])
        writer = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reliability.hostile",
                "slow-write",
                str(src),
                str(ws.inbox / slow_name),
                str(SLOW_SECONDS),
            ],
            cwd=ROOT,
        )
        time.sleep(1.0)
        runs = 0
        deadline = time.monotonic() + 420
        while runs < RUNS and time.monotonic() < deadline:
            run_ = ws.ingest(timeout=max(30, deadline - time.monotonic()))
            runs += 1
            if runs == 1:  # one poison file must not hold back the others
                stored = {r["sha256"] for r in ws.q("SELECT sha256 FROM submission")}
                held = [u for u in UNITS if u != slow_unit and sha256(valid[u]) not in stored]
                t.check(not held, f"after the first run, good files not yet stored: {held}")
            t.check(run_.rc == 0, f"ingest run {runs} ended with exit {run_.rc}")
            done = writer.poll() is not None
            taken = bool(receipts_by_sha(ws).get(sha256(valid[slow_unit])))
            stuck = ws.q("SELECT id FROM receipt WHERE outcome = 'received'")
            if done and taken and not stuck and not ws.inbox_left():
                break
            time.sleep(3 if done else 2)
        if writer.poll() is None:
            writer.kill()
        writer.wait(timeout=10)
        t.note(f"{runs} ingest run(s) until the inbox was empty")

        receipts, subs = receipts_by_sha(ws), submissions_by_sha(ws)
        for c in cases:
            _check_case(ws, c, receipts, subs)
        partial = ws.q(
            "SELECT outcome, message FROM receipt WHERE original_name = :n AND sha256 <> :h",
            n=slow_name,
            h=sha256(valid[slow_unit]),
        )
        t.check(
            not partial,
            f"{slow_name} taken while still being written: "
            + "; ".join(f"{p['outcome']}: {p['message'][:80]}" for p in partial),
        )
        _check_units(ws, valid, subs)
        _check_order(ws, [(c.name, c.content) for c in cases], valid)
        t.check(not ws.inbox_left(), f"left in the inbox: {ws.inbox_left()[:5]}")
        t.check(
            all(r["attempts"] <= 3 for rs in receipts.values() for r in rs),
            "a file was tried more than 3 times",
        )
        periods = [r["code"] for r in ws.q("SELECT code FROM reporting_period")]
        t.check(periods == [PERIOD], f"periods created by submissions: {periods}")
        big = ws.q(
            "SELECT key, LENGTH(body) AS n FROM outbox_message WHERE LENGTH(body) > :m",
            m=MAX_MAIL_BYTES,
        )
        t.check(not big, f"outbox message bodies over {MAX_MAIL_BYTES:,} chars: {big[:2]}")
        sizes = [m.path.stat().st_size for m in ws.sink.received]
        t.check(
            max(sizes, default=0) <= MAX_MAIL_BYTES * 2,
            f"a mail of {max(sizes, default=0):,} bytes was sent",
        )

        # approval is not this scenario's subject (access.approval is): on the suite's real
        # Prefect server publish would pause for it, so here the district publishes without
        pub = ws.cli(*PUBLISH_ARGS, timeout=300, env={"BAOCAO_CONFIG_DIR": str(_no_approval(ws))})
        if t.check(
            pub.rc == 0,
            f"`baocao publish` failed after the poison files: "
            f"{(pub.user_lines() or [pub.traceback])[-1:]}",
        ):
            _check_report(ws)
        count_mail(ws)
    return [t]


def _no_approval(ws: Workspace) -> Path:
    """A copy of the bundled config with approval off, its report mailed as a courtesy copy."""
    folder = ws.dir / "config-no-approval"
    shutil.copytree(ROOT / "config", folder, dirs_exist_ok=True)
    schedule = folder / "schedule.yaml"
    text = schedule.read_text(encoding="utf-8")
    schedule.write_text(
        text.replace("approval_required: true", "approval_required: false"), encoding="utf-8"
    )
    report = folder / "reports" / f"{REPORT_ID}.yaml"  # unnumbered: a courtesy copy
    text = report.read_text(encoding="utf-8")
    report.write_text(
        text.replace("\napproval:\n", "\napproval:\n  courtesy_copy: true\n", 1), encoding="utf-8"
    )
    return folder


def _check_units(ws: Workspace, valid: dict[str, bytes], subs: dict) -> None:
    """Each unit's good file: one submission, valid, and its latest valid one."""
    t = ws.tally
    latest = {}
    for r in ws.q(
        "SELECT unit_code, sha256, version FROM submission WHERE status = 'valid' ORDER BY version"
    ):
        latest[r["unit_code"]] = r["sha256"]
    for u, content in valid.items():
        mine = subs.get(sha256(content), [])
        if not mine:
            t.lost += 1
            t.failures.append(f"{u}: its good file was not stored")
            continue
        t.doubled += max(0, len(mine) - 1)
        t.check(mine[0]["status"] == "valid", f"{u}: its good file stored as {mine[0]['status']}")
        t.check(
            latest.get(u) == sha256(content),
            f"{u}: its latest valid version is not its good file (replaced by another file)",
        )


def _check_order(
    ws: Workspace, hostile_files: list[tuple[str, bytes]], valid: dict[str, bytes]
) -> None:
    """A unit's versions follow the order its files arrived in (the hostile ones first, its
    good file after them), so the good file is its newest version."""
    t = ws.tally
    by_sha = {r["sha256"]: r for r in ws.q("SELECT sha256, unit_code, version FROM submission")}
    arrived: dict[str, list[tuple[str, int]]] = {}
    for name, content in [*hostile_files, *((f"{u}_{PERIOD}.xlsx", valid[u]) for u in UNITS)]:
        sub = by_sha.get(sha256(content))
        if sub:
            arrived.setdefault(sub["unit_code"], []).append((name, sub["version"]))
    for unit, files in arrived.items():
        versions = [v for _, v in files]
        t.check(
            versions == sorted(versions),
            f"{unit}: versions do not follow arrival order: "
            + ", ".join(f"{n} (arrived {i + 1}.) = v{v}" for i, (n, v) in enumerate(files)),
        )


def _report_folder(ws: Workspace):
    found = sorted(ws.data.rglob("BC-*.md"), key=lambda p: p.stat().st_mtime)
    return found[-1].parent if found else None


def _check_report(ws: Workspace) -> None:
    """The unit's markup is text: no link, no tag, no footnote, no emphasis, no template."""
    t = ws.tally
    folder = _report_folder(ws)
    if not t.check(folder is not None, "publish wrote no report.md"):
        return
    md = next(folder.glob("BC-*.md")).read_text(encoding="utf-8")
    t.check("CHEN-VAO" in md, "report.md: NV's text is missing")
    t.check(not re.search(r"(?<!\\)\[\^99\]", md), "report.md: the unit's [^99] is a footnote mark")
    md_line = next((ln for ln in md.splitlines() if "CHEN-VAO" in ln), "")
    t.check("49" not in md_line.partition("CHEN-VAO")[2], "report.md: unit text ran as a template")
    try:
        import markdown

        html_of_md = markdown.markdown(md, extensions=["footnotes"])
    except ImportError:
        html_of_md = ""
    if html_of_md:
        t.check(
            'href="http://evil.example' not in html_of_md,
            "report.md: the unit's Markdown link renders as a link",
        )
        t.check("<b>CHEN-VAO</b>" not in html_of_md, "report.md: the unit's <b> tag is HTML")
        t.check("<strong>đậm</strong>" not in html_of_md, "report.md: the unit's **bold** is bold")
    html = next(folder.glob("BC-*.html")).read_text(encoding="utf-8")
    t.check("CHEN-VAO" in html, "report.html: NV's text is missing")
    t.check('href="http://evil.example' not in html, "report.html: the unit's link is a link")
    t.check("<b>CHEN-VAO</b>" not in html, "report.html: the unit's <b> tag is markup")
    t.check("<strong>đậm</strong>" not in html, "report.html: the unit's **bold** is bold")
    t.check("[^99]" in html, "report.html: the unit's '[^99]' is not shown as typed")
    docx = next(folder.glob("BC-*.docx"))
    with zipfile.ZipFile(docx) as z:
        rels = " ".join(
            z.read(n).decode("utf-8", "replace") for n in z.namelist() if n.endswith(".rels")
        )
    t.check("evil.example" not in rels, "report.docx: the unit's link is a hyperlink")
    import docx as python_docx

    doc = python_docx.Document(io.BytesIO(docx.read_bytes()))
    paras = [p.text for p in doc.paragraphs]
    line = next((p for p in paras if "CHEN-VAO" in p), "")
    if t.check(bool(line), "report.docx: NV's text is missing"):
        for piece in ("[^99]", "<b>CHEN-VAO</b>", "**đậm**", "{{ 7*7 }}"):
            t.check(piece in line, f"report.docx: {piece!r} of the unit's text not kept as typed")
