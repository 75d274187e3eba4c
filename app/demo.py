"""`baocao demo`: the bundled Sơn Tây example, from requests to the dispatched reports, on
SQLite and a local Prefect, with a real mail server on loopback: the CCHC report of Quý I/2022
and the monthly report on citizen reception and complaints of tháng 3/2022, collected from
the same units in the same weeks (examples/son-tay-2022-q1/manifest.yaml)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import yaml
from sqlmodel import select

from baocao import crud
from baocao.config import load_config
from baocao.db import open_store, session_scope
from baocao.imapserver import ImapServerError, LoopbackImap, dovecot_binary
from baocao.mailcatcher import MailCatcher
from baocao.models import OutboxMessage
from baocao.periods import parse_moment
from baocao.prefect_server import warm_local_server
from baocao.returns import as_returned, example_unit
from baocao.settings import PROJECT_ROOT, get_settings, use_settings

EXAMPLE = PROJECT_ROOT / "examples" / "son-tay-2022-q1"
# A version's files are named by the report, the period and the body (tasks.render.output_names):
# what an earlier demo copied into `out` is found by these patterns and replaced.
OUTPUTS = ("BC-*.md", "BC-*.html", "BC-*.docx", "BC-*.xlsx", "Tinh-hinh-nop-*.xlsx")
MARKER = ".baocao-demo"
BY_MAIL = "SON-TINH_2022-Q1.xlsx"  # this unit replies to its request by mail


def collected(manifest: dict) -> list[dict]:
    """The reports the example collects: the manifest's own, then those under `also:`, each
    with its `report`, `period`, `open_at`, `report_date`, `number` and `approver`."""
    first = {k: manifest[k] for k in ("report", "period", "open_at", "report_date", "number")}
    return [{**first, "approver": manifest["approver"]}, *manifest.get("also", [])]


def wave_files(wave: dict, entry: dict, first: bool) -> list[str]:
    """The files of one report in an arrival wave: `files:` are the first report's, the
    others' are listed under their report id."""
    return list(wave.get("files", []) if first else wave.get(entry["report"], []))


def timeline(manifest: dict) -> list[tuple[str, str, object]]:
    """The example's events in time order: (when, what, payload)."""
    reports = collected(manifest)
    events = [(str(r["open_at"]), "open", r) for r in reports]
    events += [(str(w["at"]), "arrive", w) for w in manifest["arrivals"]]
    events += [(str(t), "remind", None) for t in manifest.get("reminders_at", [])]
    events += [(f"{r['report_date']}T09:00", "publish", r) for r in reports]
    return sorted(events, key=lambda e: e[0])


def request_tokens(config_dir: Path | None, report: str, period: str) -> dict[str, str]:
    """Unit code -> the form code its request carried (read from the demo's store)."""
    settings = get_settings(config_dir=config_dir)
    engine = open_store(settings)
    try:
        with session_scope(engine) as s:
            row = crud.get_period(s, report_id=report, code=period)
            return {u: r.token for u, r in crud.requests_for(s, period_id=row.id).items()}
    finally:
        engine.dispose()


@contextlib.contextmanager
def office_mailbox(say=print) -> Iterator[LoopbackImap | None]:
    """The office's mailbox for the demo: a Dovecot on loopback, held as the IMAP settings of
    this process's ingest runs (`use_settings`; the environment is not touched) until the
    block ends; None, with a note, when Dovecot is not installed."""
    if dovecot_binary() is None:
        say(
            "(Chưa cài dovecot: thư trả lời của đơn vị được chép vào thư mục tiếp nhận thay vì "
            "gửi vào hộp thư / dovecot not installed: the mailed reply goes to the inbox folder; "
            "apt-get install dovecot-imapd)"
        )
        yield None
        return
    try:
        server = LoopbackImap().start()
    except ImapServerError as exc:
        say(f"(Không chạy được dovecot: {exc}; thư trả lời đi qua thư mục tiếp nhận)")
        yield None
        return
    try:
        with use_settings(imap_url=server.url, imap_password=server.password):
            yield server
    finally:
        server.stop()


def reply_by_mail(
    config_dir: Path | None, period: str, unit_code: str, form: Path, when: str
) -> EmailMessage:
    """The unit's answer to its request, as its clerk's mail program writes it: from its
    registered address, "Re:" the request's subject, the filled form attached."""
    settings = get_settings(config_dir=config_dir)
    cfg = load_config(settings.config_dir)
    unit = cfg.unit_map[unit_code]
    engine = open_store(settings)
    try:
        with session_scope(engine) as s:
            request = s.exec(
                select(OutboxMessage).where(
                    OutboxMessage.kind == "request",
                    OutboxMessage.unit_code == unit_code,
                    OutboxMessage.period_code == period,
                )
            ).first()
            subject = request.subject if request else f"Báo cáo {period}"
            in_reply_to = request.message_id if request else ""
    finally:
        engine.dispose()
    sender = next(c.email for c in unit.contacts if c.email)
    msg = EmailMessage()
    msg["From"] = f"{unit.name} <{sender}>"
    msg["To"] = cfg.body.sender_email
    msg["Subject"] = f"Re: {subject}"
    msg["Date"] = format_datetime(parse_moment(when))
    msg["Message-ID"] = make_msgid(domain=sender.partition("@")[2])
    if in_reply_to:
        msg["In-Reply-To"] = msg["References"] = in_reply_to
    msg.set_content(
        f"Kính gửi {cfg.body.short_name},\n\n{unit.name} gửi biểu mẫu báo cáo kỳ {period} "
        "đính kèm.\n\nTrân trọng.\n"
    )
    msg.add_attachment(
        form.read_bytes(),
        maintype="application",
        subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        filename=form.name,
    )
    return msg


def approval_code(mail: MailCatcher, address: str) -> str:
    """The one-time code in the newest approval message `address` received, read as the
    approver reads their mail."""
    for m in reversed(mail.received):
        if address in m.rcpt and (found := re.search(r"ông/bà:\D{0,40}?(\d{6,8})", m.text())):
            return found.group(1)
    raise LookupError(f"no approval code reached {address}")


def combined_reminders(config_dir: Path | None, seen: set[str]) -> list[str]:
    """Units whose newest reminders (keys not in `seen`, added to it) list several reports."""
    settings = get_settings(config_dir=config_dir)
    engine = open_store(settings)
    try:
        with session_scope(engine) as s:
            rows = s.exec(select(OutboxMessage).where(OutboxMessage.kind == "reminder")).all()
    finally:
        engine.dispose()
    new = [r for r in rows if r.key not in seen]
    seen.update(r.key for r in new)
    return sorted({r.unit_code for r in new if "+" in r.key and r.unit_code})


def publish_and_approve(publish_report, mail, entry: dict, when: str, cfg: str, config_dir, say):
    """Publish renders the draft and mails the approvers their codes; the approver reads
    theirs and approves on the command line (`baocao approve`) with the number from the
    register and the signing date; publish again sends the report, numbered."""
    from baocao.periods import Period, now_vn, parse_day
    from baocao.runtime import build_runtime
    from tasks.approve import answered_by_command_line, decide_latest

    report, period, day = entry["report"], str(entry["period"]), str(entry["report_date"])
    number, key = str(entry["number"]), entry["approver"]
    args = {"report": report, "period": period, "report_date": day, "as_of": when}
    with answered_by_command_line():
        draft = publish_report(**args, config_dir=cfg)
    if draft["status"] == "approved":  # approved before (never in a fresh demo)
        return draft
    rt = build_runtime(report_id=report, settings=get_settings(config_dir=config_dir))
    try:
        approver = rt.report.approval.approver(key)
        say(
            f"{when}  {report} {period}: bản nháp v{draft['version']} chờ duyệt, mã duyệt một "
            f"lần đã gửi tới {len(rt.report.approval.approvers)} người duyệt"
            + (f" ({draft['late']})" if draft.get("late") else "")
        )
        code = approval_code(mail, approver.contacts[0].email)
        signed = parse_day(day)
        verdict = decide_latest(
            rt,
            Period.parse(period),
            approver=key,
            code=code,
            approve=True,
            comment="Đồng ý ban hành",
            now=now_vn(),
            number=number,
            signed_on=signed,
        )
        if not verdict.ok:
            raise RuntimeError(f"demo approval refused: {verdict.message}")
        say(
            f"{when}  {report} {period}: {approver.title} duyệt bản nháp v{draft['version']}, "
            f"số {number}/{rt.report.symbol} ngày {signed:%d/%m/%Y} (baocao approve {period} "
            f"--report {report} --by {key} --code {code} --number {number} --date {day})"
        )
    finally:
        rt.engine.dispose()
    sent = publish_report(**args, config_dir=cfg)
    say(
        f"{when}  {report} {period}: phát hành v{sent['version']} số {sent['number']}/"
        f"{rt.report.symbol}: {sent['sent']} thư gửi nơi nhận; đã nhận {sent['completeness']} "
        f"đơn vị, đúng hạn {sent['timeliness']}"
    )
    return {**sent, "draft": draft, "decision": verdict.message}


def arrive(imap, inbox: Path, manifest: dict, wave: dict, config_dir, say) -> None:
    """The wave's files of every report, as their units send them back: into the inbox
    folder, or (one unit) by mail to the office's mailbox."""
    when = str(wave["at"])
    for i, entry in enumerate(collected(manifest)):
        names = wave_files(wave, entry, first=i == 0)
        tokens = request_tokens(config_dir, entry["report"], str(entry["period"])) if names else {}
        for name in names:  # each unit returns the form it received, with its code
            source = EXAMPLE / "submissions" / name
            if imap is not None and name == BY_MAIL:  # one unit replies by mail
                unit = example_unit(source)
                form = as_returned(source, inbox.parent / "sent" / name, tokens, unit)
                reply = reply_by_mail(config_dir, str(entry["period"]), unit, form, when)
                imap.deliver(reply)
                say(f"{when}  {reply['From']} trả lời thư đề nghị, đính kèm {name}")
                continue
            sent = as_returned(source, inbox / name, tokens, example_unit(source))
            moment = parse_moment(when).timestamp()
            os.utime(sent, (moment, moment))  # arrived then: settled, not being written


def run_demo(out: Path, config_dir: Path | None = None, say=print) -> dict:
    """Run the example cycle into `out`; return where things are."""
    out = out.resolve()
    data = out / "data"
    if data.exists():  # each demo starts from an empty store, but never wipes a real one
        if not (data / MARKER).exists():
            raise FileExistsError(
                f"{data} exists and was not made by `baocao demo`: choose another --out folder"
            )
        shutil.rmtree(data)
    data.mkdir(parents=True)
    (data / MARKER).write_text("made by baocao demo; deleted by the next demo run\n")
    server_ready = warm_local_server()  # Prefect's temporary server boots meanwhile
    earlier = [f for pattern in OUTPUTS for f in out.glob(pattern)]
    for old in [out / "mail", *earlier]:
        if old.is_dir():
            shutil.rmtree(old)
        elif old.exists():
            old.unlink()
    manifest = yaml.safe_load((EXAMPLE / "manifest.yaml").read_text(encoding="utf-8"))
    body = load_config(config_dir or get_settings().config_dir).body
    with (
        MailCatcher(out / "mail", sender=body.sender_email) as mail,
        office_mailbox(say) as imap,
        use_settings(data_dir=data, mail_url=mail.mail_url, database_url=None, inbox_dir=None),
    ):
        from flows.ingest_submissions import ingest_submissions
        from flows.open_period import open_period
        from flows.publish_report import publish_report
        from flows.send_reminders import send_reminders

        cfg = str(config_dir) if config_dir else ""
        server_ready()
        published: dict[str, dict] = {}
        by_mail: list[str] = []  # what the ingest runs took from the mailbox
        reminded: set[str] = set()  # reminder keys already told
        combined: dict[str, list[str]] = {}  # day -> units reminded of several reports at once
        for when, what, payload in timeline(manifest):
            if what == "open":
                r = open_period(
                    report=payload["report"],
                    period=str(payload["period"]),
                    as_of=when,
                    config_dir=cfg,
                )
                say(
                    f"{when}  {payload['report']}: mở kỳ {payload['period']}: "
                    f"{r['new_requests']} yêu cầu, {r['sent']} thư đã gửi (hạn {r['unit_deadline']})"
                )
            elif what == "arrive":
                arrive(imap, data / "inbox", manifest, payload, config_dir, say)
                # one ingest run takes both reports' files: each file names its report
                for r in ingest_submissions(as_of=when, config_dir=cfg):
                    if r.get("source") == "mail":
                        by_mail.append(f"{r['file']} ({r['sender']}): {r['outcome']}")
                    late = " TRỄ HẠN" if r["late"] else ""
                    how = f" qua hộp thư, từ {r['sender']}" if r.get("source") == "mail" else ""
                    say(
                        f"{when}  nhận {r['file']}{how}: {r.get('report', '')} {r['unit']} "
                        f"v{r['version']} {r['outcome']}{late}"
                        + (f" ({r['errors']} lỗi)" if r["errors"] else "")
                    )
            elif what == "remind":
                # one run for every report: a unit late on two gets one reminder listing both
                r = send_reminders(as_of=when, config_dir=cfg)
                both = combined_reminders(config_dir, reminded)
                if both:
                    combined[when] = both
                say(
                    f"{when}  nhắc hạn: {r['queued']} thư nhắc"
                    + (
                        f"; {', '.join(both)} chậm cả hai báo cáo: mỗi đơn vị MỘT thư nhắc liệt "
                        "kê cả hai"
                        if both
                        else ""
                    )
                    if r["queued"]
                    else f"{when}  nhắc hạn: hôm nay không có bước nhắc cho đơn vị còn thiếu"
                )
            else:
                published[payload["report"]] = publish_and_approve(
                    publish_report, mail, payload, when, cfg, config_dir, say
                )
        received = mail.received
    from tasks.publish import stamped_name

    outputs = []  # the files that went out: the .docx, .html and appendix carry the number
    for done in published.values():
        folder = Path(done["folder"])
        number = done.get("number") or ""
        for f in sorted(
            f for pattern in OUTPUTS for f in folder.glob(pattern) if "-so-" not in f.name
        ):
            stamped = folder / stamped_name(f.name, number) if number else f
            source = stamped if stamped.is_file() else f
            shutil.copy2(source, out / source.name)
            outputs.append(source.name)
    return {
        "out": out,
        "files": [out / n for n in outputs],
        "mail": out / "mail",
        "messages": len(received),
        "by_mail": by_mail,
        "published": published[manifest["report"]],
        "reports": published,
        "combined_reminders": combined,
    }
