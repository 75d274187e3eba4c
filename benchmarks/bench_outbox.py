"""Mailing through the outbox against a bare smtplib loop, both to a local SMTP sink (aiosmtpd
in its own process, counting messages and connections, writing nothing).

    .venv/bin/python benchmarks/bench_outbox.py --mails 1000 [--database-url postgresql://...]

Prints ms per mail for: a bare smtplib client over one connection (the same MIME messages,
built beforehand), our SmtpTransport alone (building each message, no store), and
deliver_outbox end to end (claim, send, record each message as it is accepted) on SQLite
or the given database. Asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import smtplib
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    from email.message import EmailMessage

    from baocao import crud
    from baocao.config import Contact
    from baocao.db import open_store, session_scope
    from baocao.mailcatcher import free_port
    from baocao.mailer import (
        WIRE_POLICY,
        Outgoing,
        RunControl,
        SmtpTransport,
        build_message,
        message_id_for,
        parse_mail_url,
    )
    from baocao.settings import get_settings
    from benchmarks.sink import Sink
    from tasks.notify import deliver_outbox, messages_for

    ap = argparse.ArgumentParser()
    ap.add_argument("--mails", type=int, default=1000)
    ap.add_argument("--sessions", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    n = args.mails
    port = free_port()
    sink = Sink(port)
    url = f"mailto://127.0.0.1:{port}?from=vanthu@sontay.gov.vn&mode=insecure&name=UBND"
    server = parse_mail_url(url)
    body = "Kính gửi: UBND xã\n\nĐề nghị gửi báo cáo Quý I/2022 trước ngày 16/03/2022.\n" * 3
    outs = [
        Outgoing(
            id=i,
            key=f"k{i}",
            address=f"xa{i}@example.vn",
            url=f"email:xa{i}@example.vn",
            subject="Đề nghị báo cáo Quý I/2022",
            body=body,
            message_id=message_id_for(f"k{i}", server.domain),
        )
        for i in range(n)
    ]

    def bare_prebuilt():
        payloads = [build_message(o, server).as_bytes(policy=WIRE_POLICY) for o in outs]
        t = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port, local_hostname="localhost") as smtp:
            for o, p in zip(outs, payloads, strict=True):
                smtp.sendmail(server.from_addr, [o.to], p)
        return time.perf_counter() - t

    def bare_building():  # what a plain script does: EmailMessage with the stock policy
        t = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port, local_hostname="localhost") as smtp:
            for o in outs:
                msg = EmailMessage()
                msg["From"], msg["To"], msg["Subject"] = server.from_addr, o.to, o.subject
                msg["Message-ID"] = o.message_id
                msg.set_content(o.body)
                smtp.send_message(msg)
        return time.perf_counter() - t

    def transport(sessions):
        def run():
            tr = SmtpTransport(server, sessions=sessions)
            t = time.perf_counter()
            results = list(tr.send(outs, RunControl()))
            tr.close()
            assert all(r.status == "sent" for r in results)
            return time.perf_counter() - t

        return run

    dialect = {"name": "sqlite"}

    def outbox(sessions):
        def run():
            with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
                settings = get_settings(
                    data_dir=Path(tmp), database_url=args.database_url, smtp_sessions=sessions
                )
                engine = open_store(settings)
                dialect["name"] = engine.dialect.name
                key = f"bench:{time.time_ns()}"
                with session_scope(engine) as s:
                    crud.enqueue(
                        s,
                        messages=messages_for(
                            key=key,
                            kind="bench",
                            period_code=key,
                            unit_code=None,
                            recipient="x",
                            contacts=[Contact(email=o.to) for o in outs],
                            subject="Đề nghị báo cáo Quý I/2022",
                            body=body,
                        ),
                    )
                t = time.perf_counter()
                got = deliver_outbox(engine, settings=settings, mail_url=url, period_code=key)
                secs = time.perf_counter() - t
                engine.dispose()
                assert got["sent"] == n, got
                return secs

        return run

    cases = {
        "bare smtplib, one connection, prebuilt": bare_prebuilt,
        "bare smtplib, one connection, EmailMessage": bare_building,
        "SmtpTransport, 1 session": transport(1),
        f"SmtpTransport, {args.sessions} sessions": transport(args.sessions),
        "deliver_outbox, 1 session": outbox(1),
        f"deliver_outbox, {args.sessions} sessions": outbox(args.sessions),
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    seen: dict[str, dict] = {}
    try:
        sink.count()
        for _ in range(args.rounds):  # interleaved rounds: a busy machine hits all alike
            for label, run in cases.items():
                times[label].append(run())
                seen[label] = sink.count()
    finally:
        sink.stop()
    print(
        f"{n} mails to a local aiosmtpd sink, {args.rounds} interleaved rounds, store: "
        f"{dialect['name']}"
    )
    base = statistics.median(times["bare smtplib, one connection, EmailMessage"])
    for label, secs in times.items():
        med = statistics.median(secs)
        print(
            f"{label:<46} min {min(secs) * 1000 / n:5.2f}  median {med * 1000 / n:5.2f} ms/mail"
            f"  ×{med / base:4.2f}  ({seen[label]['messages']} received over "
            f"{seen[label]['connections']} connection(s))"
        )


if __name__ == "__main__":
    main()
