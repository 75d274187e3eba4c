"""`baocao demo`: the bundled Sơn Tây example, Quý I/2022, from requests to the dispatched
report, on SQLite and a local Prefect, with a real mail server on loopback."""

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
from baocao.returns import as_returned, example_unit
from baocao.settings import PROJECT_ROOT, get_settings

EXAMPLE = PROJECT_ROOT / "examples" / "son-tay-2022-q1"
# A version's files are named by the report, the period and the body (tasks.render.output_names):
# what an earlier demo copied into `out` is found by these patterns and replaced.
OUTPUTS = ("BC-*.md", "BC-*.html", "BC-*.docx", "BC-*.xlsx", "Tinh-hinh-nop-*.xlsx")
MARKER = ".baocao-demo"
NUMBER = "25"  # the number the office's register gives the report (Số: 25/BC-UBND)
APPROVER = "chu-tich"  # the chairman approves the demo's report
BY_MAIL = "SON-TINH_2022-Q1.xlsx"  # this unit replies to its request by mail


def timeline(manifest: dict) -> list[tuple[str, str, object]]:
    """The example's events in time order: (when, what, payload)."""
    events = [(str(manifest["open_at"]), "open", None)]
    events += [(str(w["at"]), "arrive", w["files"]) for w in manifest["arrivals"]]
    events += [(str(t), "remind", None) for t in manifest.get("reminders_at", [])]
    events.append((f"{manifest['report_date']}T09:00", "publish", None))
    return sorted(events, key=lambda e: e[0])


def request_tokens(config_dir: Path | None, period: str) -> dict[str, str]:
    """Unit code -> the form code its request carried (read from the demo's store)."""
    settings = get_settings(config_dir=config_dir)
    report = load_config(settings.config_dir).report()
    engine = open_store(settings)
    try:
        with session_scope(engine) as s:
            row = crud.get_period(s, report_id=report.id, code=period)
            return {u: r.token for u, r in crud.requests_for(s, period_id=row.id).items()}
    finally:
        engine.dispose()


@contextlib.contextmanager
def office_mailbox(say=print) -> Iterator[LoopbackImap | None]:
    """The office's mailbox for the demo: a Dovecot on loopback, set as BAOCAO_IMAP_URL for
    the ingest runs (restored afterwards); None, with a note, when Dovecot is not installed."""
    if dovecot_binary() is None:
        say(
            "(Chưa cài dovecot: thư trả lời của đơn vị được chép vào thư mục tiếp nhận thay vì "
            "gửi vào hộp thư / dovecot not installed: the mailed reply goes to the inbox folder; "
            "apt-get install dovecot-imapd)"
        )
        yield None
        return
    keys = ("BAOCAO_IMAP_URL", "BAOCAO_IMAP_PASSWORD")
    before = {k: os.environ.get(k) for k in keys}
    try:
        server = LoopbackImap().start()
    except ImapServerError as exc:
        say(f"(Không chạy được dovecot: {exc}; thư trả lời đi qua thư mục tiếp nhận)")
        yield None
        return
    try:
        os.environ["BAOCAO_IMAP_URL"] = server.url
        os.environ["BAOCAO_IMAP_PASSWORD"] = server.password
        yield server
    finally:
        server.stop()
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


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


def publish_and_approve(
    publish_report, mail, period: str, day: str, when: str, cfg: str, config_dir, say
) -> dict:
    """Publish renders the draft and mails the approvers their codes; the chairman reads his
    and approves on the command line (`baocao approve`) with the number from the register and
    the signing date; publish again sends the report, numbered."""
    from baocao.periods import Period, now_vn, parse_day
    from baocao.runtime import build_runtime
    from tasks.approve import answered_by_command_line, decide_latest

    with answered_by_command_line():
        draft = publish_report(period=period, report_date=day, as_of=when, config_dir=cfg)
    if draft["status"] == "approved":  # approved before (never in a fresh demo)
        return draft
    rt = build_runtime(settings=get_settings(config_dir=config_dir))
    try:
        approver = rt.report.approval.approver(APPROVER)
        say(
            f"{when}  bản nháp v{draft['version']} chờ duyệt: mã duyệt một lần đã gửi tới "
            f"{len(rt.report.approval.approvers)} người duyệt"
            + (f" ({draft['late']})" if draft.get("late") else "")
        )
        code = approval_code(mail, approver.contacts[0].email)
        signed = parse_day(day)
        verdict = decide_latest(
            rt,
            Period.parse(period),
            approver=APPROVER,
            code=code,
            approve=True,
            comment="Đồng ý ban hành",
            now=now_vn(),
            number=NUMBER,
            signed_on=signed,
        )
        if not verdict.ok:
            raise RuntimeError(f"demo approval refused: {verdict.message}")
        say(
            f"{when}  chủ tịch duyệt bản nháp v{draft['version']}, số {NUMBER}/{rt.report.symbol} "
            f"ngày {signed:%d/%m/%Y} (baocao approve {period} --by {APPROVER} --code {code} "
            f"--number {NUMBER} --date {day})"
        )
    finally:
        rt.engine.dispose()
    sent = publish_report(period=period, report_date=day, as_of=when, config_dir=cfg)
    say(
        f"{when}  phát hành v{sent['version']} số {sent['number']}/{rt.report.symbol}: "
        f"{sent['sent']} thư gửi nơi nhận; đã nhận {sent['completeness']} đơn vị, "
        f"đúng hạn {sent['timeliness']}"
    )
    return {**sent, "draft": draft, "decision": verdict.message}


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
    earlier = [f for pattern in OUTPUTS for f in out.glob(pattern)]
    for old in [out / "mail", *earlier]:
        if old.is_dir():
            shutil.rmtree(old)
        elif old.exists():
            old.unlink()
    manifest = yaml.safe_load((EXAMPLE / "manifest.yaml").read_text(encoding="utf-8"))
    period = str(manifest["period"])
    body = load_config(config_dir or get_settings().config_dir).body
    with (
        MailCatcher(out / "mail", sender=body.sender_email) as mail,
        office_mailbox(say) as imap,
    ):
        os.environ["BAOCAO_DATA_DIR"] = str(data)
        os.environ["BAOCAO_MAIL_URL"] = mail.mail_url
        os.environ.pop("BAOCAO_DATABASE_URL", None)
        os.environ.pop("BAOCAO_INBOX_DIR", None)
        from flows.ingest_submissions import ingest_submissions
        from flows.open_period import open_period
        from flows.publish_report import publish_report
        from flows.send_reminders import send_reminders

        cfg = str(config_dir) if config_dir else ""
        inbox = data / "inbox"
        published = {}
        by_mail: list[str] = []  # what the ingest runs took from the mailbox
        for when, what, files in timeline(manifest):
            if what == "open":
                r = open_period(period=period, as_of=when, config_dir=cfg)
                say(
                    f"{when}  mở kỳ {period}: {r['new_requests']} yêu cầu, {r['sent']} thư đã gửi (hạn {r['unit_deadline']})"
                )
            elif what == "arrive":
                tokens = request_tokens(config_dir, period)
                for name in files:  # each unit returns the form it received, with its code
                    source = EXAMPLE / "submissions" / name
                    if imap is not None and name == BY_MAIL:  # one unit replies by mail
                        unit = example_unit(source)
                        form = as_returned(source, data / "sent" / name, tokens, unit)
                        reply = reply_by_mail(config_dir, period, unit, form, when)
                        imap.deliver(reply)
                        say(f"{when}  {reply['From']} trả lời thư đề nghị, đính kèm {name}")
                        continue
                    sent = as_returned(source, inbox / name, tokens, example_unit(source))
                    moment = parse_moment(when).timestamp()
                    os.utime(sent, (moment, moment))  # arrived then: settled, not being written
                for r in ingest_submissions(as_of=when, config_dir=cfg):
                    if r.get("source") == "mail":
                        by_mail.append(f"{r['file']} ({r['sender']}): {r['outcome']}")
                    late = " TRỄ HẠN" if r["late"] else ""
                    how = f" qua hộp thư, từ {r['sender']}" if r.get("source") == "mail" else ""
                    say(
                        f"{when}  nhận {r['file']}{how}: {r['unit']} v{r['version']} "
                        f"{r['outcome']}{late}" + (f" ({r['errors']} lỗi)" if r["errors"] else "")
                    )
            elif what == "remind":
                r = send_reminders(period=period, as_of=when, config_dir=cfg)
                say(
                    f"{when}  nhắc hạn: {r['queued']} thư nhắc"
                    if r["queued"]
                    else f"{when}  nhắc hạn: hôm nay không có bước nhắc cho đơn vị còn thiếu"
                )
            else:
                published = publish_and_approve(
                    publish_report,
                    mail,
                    period,
                    str(manifest["report_date"]),
                    when,
                    cfg,
                    config_dir,
                    say,
                )
        received = mail.received
    from tasks.publish import stamped_name

    folder = Path(published["folder"])
    number = published.get("number") or ""
    outputs = []  # the files that went out: the .docx, .html and appendix carry the number
    for f in sorted(f for pattern in OUTPUTS for f in folder.glob(pattern) if "-so-" not in f.name):
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
        "published": published,
    }
