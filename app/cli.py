"""The `baocao` command. Verbs that change things run the Prefect flows (a local Prefect
starts by itself when no server is configured); `status` and `form` only read."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no network here to phone

app = typer.Typer(
    help="baocao: thu thập, tổng hợp và phát hành báo cáo định kỳ / periodic reporting.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Thư mục cấu hình / config folder (mặc định / default: BAOCAO_CONFIG_DIR or the "
        "bundled one)",
    ),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of", help="Thời điểm giả định / run as of this time, e.g. 2022-03-15T08:00 (now)"
    ),
]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Gửi lại cả thư đã gửi / send again even what was sent")
]
PERIOD_HELP = "Kỳ báo cáo / period, e.g. 2022-Q1"
ReportOpt = Annotated[
    str | None,
    typer.Option(
        "--report",
        "-r",
        help="Báo cáo / report id, e.g. cchc-quarterly (mặc định: báo cáo duy nhất của cấu hình "
        "/ default: the config's only report)",
    ),
]
UnitsOpt = Annotated[
    list[str] | None,
    typer.Option("--unit", "-u", help="Chỉ đơn vị này / only this unit (repeatable)"),
]


@app.callback()
def _client_auth() -> None:
    """Commands that talk to a Prefect server (PREFECT_API_URL) log in to it like `serve`:
    BAOCAO_PREFECT_AUTH, or the password `serve` saved in the data folder."""
    if not os.environ.get("PREFECT_API_URL") or os.environ.get("PREFECT_API_AUTH_STRING"):
        return
    from baocao.prefect_server import ServerError, find_auth
    from baocao.settings import get_settings

    try:
        auth = find_auth(get_settings())
    except ServerError as exc:
        err.print(f"[bold red]Lỗi / error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    if auth is not None:
        os.environ["PREFECT_API_AUTH_STRING"] = auth.value


def _user_errors() -> tuple[type[BaseException], ...]:
    from baocao.errors import user_errors

    return user_errors()


def _run(fn, *args, **kwargs):
    """Call a flow or function; a mistake of the user's, or a folder, disk, database or API
    that cannot be used, becomes one red line (exit 2). Anything else keeps its traceback."""
    from baocao.errors import as_user_error, one_line

    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        problem = as_user_error(exc)
        if problem is None:
            raise
        err.print(f"[bold red]Lỗi / error:[/] {escape(one_line(problem))}", soft_wrap=True)
        raise typer.Exit(2) from None


def _flow(show, fn, **kwargs) -> None:
    """Run a flow and `show` its summary. When its messages all failed (they stay in the
    outbox), the summary, then what failed and what to do in red, and exit 1."""
    from tasks.notify import DeliveryFailed

    try:
        r = _run(fn, **kwargs)
    except DeliveryFailed as exc:
        if exc.summary is not None:
            show(exc.summary)
        err.print(f"[bold red]Chưa gửi được / not delivered:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None
    show(r)


def _preflight(
    config: Path | None,
    *,
    report: str | None = None,
    period: str | None = None,
    units: list[str] | None = None,
    as_of: str | None = None,
    paths: list[Path] | None = None,
    report_date: str | None = None,
) -> None:
    """Before a flow runs: the config loads, the store opens, the parameters make sense and
    the Prefect API answers (when one is configured), so that a mistake is one line here and
    never a Prefect traceback. The flow checks it all again when it runs."""

    def check() -> None:
        from baocao.errors import require_prefect_api
        from baocao.periods import parse_day
        from flows.common import pick_period, start

        rt, now = start(_cfg(config), as_of or "", units or None, report or "")
        try:
            if period:
                pick_period(rt, period, now)
        finally:
            rt.engine.dispose()
        if report_date:
            parse_day(report_date)
        missing = [str(p) for p in paths or [] if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"không tìm thấy / not found: {', '.join(missing)}")
        require_prefect_api()

    from baocao.prefect_server import warm_local_server

    ready = warm_local_server()  # the temporary local server (when it is the one) boots meanwhile
    _run(check)
    _run(ready)


def _delivered(r: dict) -> str:
    """What a delivery did, including messages taken back from a run that stopped while
    sending and those left for the next run when this one ran out of time."""
    text = f"{r.get('sent', 0)} sent, {r.get('failed', 0)} failed"
    if r.get("reclaimed"):
        text += f", {r['reclaimed']} taken back from a stopped run (may have arrived once)"
    if r.get("deferred"):
        text += f", {r['deferred']} left for the next run"
    return text


def _scopes(r: dict) -> str:
    """The reports and periods a run was about: `cchc-quarterly 2022-Q1, tcd-monthly 2022-03`."""
    periods = r.get("periods") or {}
    return ", ".join(f"{k} {v}" for k, v in periods.items()) or r.get("period") or "-"


def _cfg(config: Path | None) -> str:
    return str(config) if config else ""


@app.command()
def demo(
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Thư mục kết quả / folder for the report, the messages and the data"
        ),
    ] = Path("out"),
    config: ConfigOpt = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Hiện nhật ký Prefect / show Prefect's logs")
    ] = False,
) -> None:
    """Chạy thử ví dụ Sơn Tây (Quý I/2022) từ đầu đến cuối / run the bundled example end to
    end, mail on loopback."""
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from app.demo import run_demo
    from baocao.errors import require_prefect_api

    _run(require_prefect_api)

    console.print(
        "[bold]baocao demo[/]: UBND huyện Sơn Tây, báo cáo CCHC Quý I/2022 và báo cáo "
        "tiếp công dân tháng 3/2022 (Prefect khởi động cục bộ...)"
    )
    result = _run(run_demo, out, config, say=console.print)
    console.print("\n[bold green]Xong / done.[/]")
    for f in result["files"]:
        console.print(f"  báo cáo / report: {f}")
    console.print(
        f"  {result['messages']} thư / messages (.eml, đính kèm đầy đủ): {result['mail']}"
    )


@app.command("open")
def open_(
    period: Annotated[str, typer.Argument(help=PERIOD_HELP)],
    units: UnitsOpt = None,
    force: ForceOpt = False,
    as_of: AsOfOpt = None,
    report: ReportOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Mở kỳ PERIOD: gửi mỗi đơn vị thư đề nghị và biểu mẫu / open PERIOD: send every unit
    its request and pre-filled form."""
    from flows.open_period import open_period

    _preflight(config, report=report, period=period or "", units=units, as_of=as_of)

    def show(r: dict) -> None:
        console.print(
            f"{r['period']}: {r['new_requests']} new request(s), {r['queued_messages']} "
            f"message(s) queued, {_delivered(r)}; units' deadline {r['unit_deadline']}"
        )
        if r.get("facts"):  # the report cannot be published without them; opening goes on
            err.print(f"[yellow]Cảnh báo / warning:[/] {escape(r['facts'])}", soft_wrap=True)

    _flow(
        show,
        open_period,
        period=period or "",
        units=units or [],
        force=force,
        as_of=as_of or "",
        report=report or "",
        config_dir=_cfg(config),
    )


@app.command()
def ingest(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Tệp cần nhận / files (mặc định / default: the office's mailbox when "
            "BAOCAO_IMAP_URL is set, and the inbox folder)"
        ),
    ] = None,
    unit: Annotated[
        str | None,
        typer.Option(
            "--unit",
            "-u",
            help="Nộp thay cho đơn vị / file the given files for this unit (received by hand, "
            "e.g. over Zalo); without it each file must carry its unit's form code",
        ),
    ] = None,
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Nhận biểu mẫu gửi về / take in returned forms (.xlsx, .csv) from the mailbox, the inbox
    folder or the given files: archive, validate, store, tell units what is wrong."""
    from flows.ingest_submissions import ingest_submissions

    if unit and not paths:
        err.print("[bold red]Lỗi / error:[/] --unit cần tên tệp / --unit needs the files to file")
        raise typer.Exit(2)
    _preflight(config, as_of=as_of, paths=paths, units=[unit] if unit else None)
    if not paths:
        _run(_check_mailbox)
    rows = _run(
        ingest_submissions,
        paths=[str(p) for p in paths] if paths else [],
        unit=unit or "",
        as_of=as_of or "",
        config_dir=_cfg(config),
    )
    table = Table(
        "file", "outcome", "unit", "period", "version", "late", "errors", "warnings", "message"
    )
    for r in rows:
        style = {"accepted": "green", "rejected": "red", "duplicate": "blue"}.get(
            r["outcome"], "yellow"
        )
        by_mail = f"\n[dim]{escape(r['sender'])}[/]" if r.get("sender") else ""
        table.add_row(
            escape(r["file"]) + by_mail,
            f"[{style}]{r['outcome']}[/]",
            r["unit"],
            r["period"],
            str(r["version"] or ""),
            "yes" if r["late"] else "",
            str(r["errors"]),
            str(r["warnings"]),
            escape(r["message"]),
        )
    console.print(table if rows else "nothing to take in")


def _check_mailbox() -> None:
    """BAOCAO_IMAP_URL, when set, can be read (one line before the run, not after it)."""
    from baocao.settings import get_settings
    from tasks.mailbox import account_from

    settings = get_settings()
    if settings.imap_url:
        account_from(settings)


@app.command()
def remind(
    period: Annotated[str | None, typer.Argument(help=PERIOD_HELP)] = None,
    units: UnitsOpt = None,
    force: ForceOpt = False,
    as_of: AsOfOpt = None,
    report: ReportOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Nhắc các đơn vị chưa nộp hợp lệ / send today's reminder step to units without a valid
    submission."""
    from flows.send_reminders import send_reminders

    _preflight(config, report=report, period=period or "", units=units, as_of=as_of)
    _flow(
        lambda r: console.print(f"{_scopes(r)}: {r['queued']} reminder(s) queued, {_delivered(r)}"),
        send_reminders,
        period=period or "",
        units=units or [],
        force=force,
        as_of=as_of or "",
        report=report or "",
        config_dir=_cfg(config),
    )


@app.command()
def publish(
    period: Annotated[str, typer.Argument(help=PERIOD_HELP)],
    report_date: Annotated[
        str | None,
        typer.Option("--date", help="Ngày ký báo cáo / date printed on the report (today)"),
    ] = None,
    force: ForceOpt = False,
    as_of: AsOfOpt = None,
    report: ReportOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Tổng hợp, lập và gửi báo cáo kỳ PERIOD / consolidate PERIOD, render the report, send it
    to its recipients (once approved)."""
    from flows.publish_report import publish_report

    _preflight(config, report=report, period=period or "", as_of=as_of, report_date=report_date)
    _flow(
        lambda r: console.print(
            f"{r['period']} v{r['version']} ({'new' if r['new_version'] else 'unchanged'}, "
            f"{r['status']}) in {r['folder']}\nunits in {r['completeness']}, on time "
            f"{r['timeliness']}; {r['queued']} notice(s) queued, {_delivered(r)}"
        ),
        publish_report,
        period=period or "",
        report_date=report_date or "",
        force=force,
        as_of=as_of or "",
        report=report or "",
        config_dir=_cfg(config),
    )


@app.command()
def approve(
    period: Annotated[str, typer.Argument(help=PERIOD_HELP)],
    by: Annotated[
        str, typer.Option("--by", help="Mã người duyệt / your approver key, e.g. chu-tich")
    ],
    code: Annotated[
        str, typer.Option("--code", help="Mã duyệt một lần nhận qua thư / your one-time code")
    ],
    send_back: Annotated[
        bool, typer.Option("--send-back", help="Trả lại / send the draft back instead")
    ] = False,
    comment: Annotated[str, typer.Option("--comment", help="Ý kiến / why (for a send-back)")] = "",
    number: Annotated[
        str,
        typer.Option(
            "--number", help="Số văn bản cấp cho báo cáo / document number, e.g. 25 or 25/BC-UBND"
        ),
    ] = "",
    date: Annotated[
        str, typer.Option("--date", help="Ngày ký / signing date, e.g. 2022-04-05 (blank: today)")
    ] = "",
    report: ReportOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Duyệt / approve PERIOD's latest rendered report (or send it back) with your one-time
    code, the document number and the signing date; publish then sends it."""
    from baocao.periods import Period, now_vn, parse_day
    from baocao.runtime import build_runtime
    from tasks.approve import decide_latest

    rt = _run(build_runtime, _cfg(config), report or None)
    signed_on = _run(parse_day, date) if date else None
    verdict = _run(
        decide_latest,
        rt,
        _run(Period.parse, period),
        approver=by,
        code=code,
        approve=not send_back,
        comment=comment,
        now=now_vn(),
        number=number,
        signed_on=signed_on,
    )
    if not verdict.ok:
        err.print(f"[bold red]Không được tính / refused:[/] {escape(verdict.message)}")
        raise typer.Exit(2)
    row = verdict.row
    console.print(
        f"{period} v{row.version}: {row.status} by {escape(row.decided_by or '')}"
        + (
            f", số {row.number}/{rt.report.symbol} ngày {row.signed_on:%d/%m/%Y}"
            if row.number
            else ""
        )
        + ("" if send_back else f"; `baocao publish {period}` gửi đi / sends it now")
    )


@app.command()
def status(
    period: Annotated[str, typer.Argument(help=PERIOD_HELP)],
    as_json: Annotated[
        bool, typer.Option("--json", help="Kết quả dạng JSON / machine-readable output")
    ] = False,
    report: ReportOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Tình hình nộp của từng đơn vị / where each unit stands for PERIOD: state, version, on
    time, findings."""
    from baocao.periods import Period
    from baocao.runtime import build_runtime
    from tasks.status import period_status

    rt = _run(build_runtime, _cfg(config), report or None)
    rows = _run(period_status, rt, _run(Period.parse, period))
    if as_json:
        json.dump(rows, sys.stdout, ensure_ascii=False, indent=2, default=str)
        sys.stdout.write("\n")
        return
    table = Table(
        title=f"{period}: {sum(r['state'] == 'valid' for r in rows)}/{len(rows)} units in"
    )
    for name, kw in (
        ("unit", {"no_wrap": True}),
        ("name", {"max_width": 24}),
        ("state", {"no_wrap": True}),
        ("version", {"no_wrap": True}),
        ("on time", {"no_wrap": True}),
        ("errors", {}),
        ("warnings", {}),
        ("findings", {"ratio": 1}),
    ):
        table.add_column(name, **kw)
    for r in rows:
        style = {"valid": "green", "rejected": "red", "missing": "yellow"}[r["state"]]
        on_time = {True: "yes", False: "late", None: ""}[r["on_time"]]
        table.add_row(
            r["unit"],
            r["name"],
            f"[{style}]{r['state']}[/]",
            str(r["version"] or ""),
            on_time,
            str(r["errors"]),
            str(r["warnings"]),
            escape("\n".join(r["findings"])),
        )
    console.print(table)


@app.command()
def explain(
    period: Annotated[str, typer.Argument(help="e.g. 2022-Q1")],
    indicator: Annotated[str, typer.Argument(help="Mã chỉ tiêu / indicator code")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
    report: ReportOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Nguồn của một số liệu / where a printed figure comes from: units, versions, files, cells."""
    from baocao.periods import Period
    from baocao.runtime import build_runtime
    from baocao.vnformat import moment
    from tasks.explain import explain_figure

    rt = _run(build_runtime, _cfg(config), report or None)
    found = _run(explain_figure, rt, _run(Period.parse, period), indicator)
    if as_json:
        json.dump(found.to_dict(), sys.stdout, ensure_ascii=False, indent=2, default=str)
        sys.stdout.write("\n")
        return
    stack = [(found, 0)]
    while stack:
        e, depth = stack.pop(0)
        shown = e.printed or "(chưa có số liệu / no figure)"
        measure = f" {e.measure}" if e.printed and e.measure and e.measure != "%" else ""
        head = f"{'  ' * depth}[bold]{escape(e.label)}[/] ({e.code}): {escape(shown)}"
        console.print(head + escape(measure), soft_wrap=True)
        if e.formula:
            console.print(f"{'  ' * depth}Cách tính / formula: {escape(e.formula)}", soft_wrap=True)
        if e.note:
            console.print(f"{'  ' * depth}{escape(e.note)}", soft_wrap=True)
        if e.contributions:
            table = Table(title=f"Đã gửi / units in: {e.coverage}" if e.coverage else None)
            for name in ("đơn vị / unit", "phiên bản", "giá trị", "ô / cell", "tệp / file"):
                table.add_column(name)
            table.add_column("SHA-256", no_wrap=True)
            table.add_column("nhận lúc / received")
            table.add_column("xác thực / via")
            for c in e.contributions:
                table.add_row(
                    escape(f"{c.name} ({c.unit})"),
                    str(c.version),
                    escape(c.value),
                    escape(c.cell),
                    escape(c.file_name),
                    c.sha256,
                    moment(c.received_at),
                    escape(f"{c.credential}/{c.source}" + (f" {c.sender}" if c.sender else "")),
                )
            console.print(table)
        if e.missing:
            names = ", ".join(f"{m.name} ({m.unit})" for m in e.missing)
            console.print(f"[yellow]Chưa gửi / not in:[/] {escape(names)}", soft_wrap=True)
        stack[:0] = [(p, depth + 1) for p in e.parts]


@app.command()
def form(
    unit: Annotated[str, typer.Argument(help="Mã đơn vị / unit code, e.g. TCKH")],
    period: Annotated[str, typer.Argument(help=PERIOD_HELP)],
    out: Annotated[
        Path, typer.Option("--out", help="Nơi ghi tệp .xlsx / where to write the .xlsx")
    ],
    report: ReportOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Ghi biểu mẫu của UNIT cho kỳ PERIOD / write UNIT's pre-filled form for PERIOD (the one
    sent with its request, if any)."""
    from baocao.periods import Period
    from baocao.runtime import build_runtime
    from tasks.collect import form_for

    rt = _run(build_runtime, _cfg(config), report or None)
    content = _run(form_for, rt, unit, _run(Period.parse, period))
    _run(out.parent.mkdir, parents=True, exist_ok=True)
    _run(out.write_bytes, content)
    console.print(f"{out} ({len(content):,} bytes)")


@app.command()
def serve(
    config: ConfigOpt = None,
    limit: Annotated[
        int, typer.Option("--limit", help="Số lượt chạy cùng lúc / flow runs at once")
    ] = 4,
    ingest_minutes: Annotated[
        int,
        typer.Option(
            "--ingest-every", help="Số phút giữa hai lần nhận / minutes between inbox checks"
        ),
    ] = 5,
    once: Annotated[
        bool,
        typer.Option("--register-only", help="Chỉ đăng ký / register the deployments, print, exit"),
    ] = False,
    port: Annotated[
        int,
        typer.Option(
            "--port", help="Cổng máy chủ Prefect / port of the Prefect server on 127.0.0.1"
        ),
    ] = 4200,
) -> None:
    """Chạy mọi quy trình theo lịch, có giao diện Prefect / serve every flow as a scheduled
    deployment, with the Prefect UI on 127.0.0.1:4200, locked with a password
    (BAOCAO_PREFECT_AUTH, or one generated into the data folder)."""
    from baocao.periods import now_vn
    from baocao.prefect_server import ensure_server, use_server
    from baocao.settings import get_settings

    settings = get_settings()
    api, _proc, auth = _run(ensure_server, settings.data_dir / "prefect-server.log", settings, port)
    use_server(api, auth)
    from app.serve import build_deployments

    deployments, times = _run(build_deployments, now_vn(), _cfg(config), ingest_minutes)
    ui = api.removesuffix("/api")
    if auth is not None:
        where = (
            f"trong tệp / in {escape(str(auth.path))} (chỉ chủ máy đọc được / owner-only)"
            if auth.path
            else f"từ biến môi trường / from {auth.source}"
        )
        console.print(
            f"Máy chủ Prefect có khóa / locked: người dùng / user [bold]{escape(auth.user)}[/], "
            f"mật khẩu {where}"
            + (" - vừa tạo / just generated" if auth.created else "")
            + f"; đăng nhập giao diện bằng / log in to the UI with {escape(auth.user)}:<mật khẩu>"
        )
    table = Table("deployment", "next runs (Asia/Ho_Chi_Minh)", title=f"Prefect UI: {ui}")
    for d in deployments:
        name = f"{d.flow_name}/{d.name}"
        upcoming = [t for t in times.get(name, []) if t > now_vn()][:3]
        when = ", ".join(t.strftime("%d/%m/%Y %H:%M") for t in upcoming) or (
            f"every {ingest_minutes} min" if d.flow_name == "ingest-submissions" else "on demand"
        )
        table.add_row(name, when)
    console.print(table)
    if once:
        for d in deployments:
            d.apply()
        console.print(
            f"registered {len(deployments)} deployments at {ui}"
            + (f"; the server started for this (pid {_proc.pid}) keeps running" if _proc else "")
        )
        return
    from prefect import serve as prefect_serve

    console.print(f"serving; open {ui} to run, rerun or approve (Ctrl+C stops)")
    try:
        prefect_serve(*deployments, limit=limit)
    finally:
        if _proc is not None:
            _proc.terminate()


@app.command()
def calendar(
    year: Annotated[
        int | None, typer.Argument(help="Năm / year, e.g. 2026 (mặc định: năm nay / this year)")
    ] = None,
    ics: Annotated[
        Path | None,
        typer.Option("--ics", help="Tệp .ics / the iCalendar file (default: in the data folder)"),
    ] = None,
    report: ReportOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Lịch báo cáo / every report's opening day, units' deadline and report deadline of
    YEAR (Tết and holidays applied), and an .ics file a calendar program subscribes to."""
    from baocao.periods import now_vn
    from baocao.runtime import build_runtime
    from tasks.reporting_calendar import calendar_rows, write_calendar

    rt = _run(build_runtime, _cfg(config), report or None)
    year = year or now_vn().year
    entries, path = _run(write_calendar, rt, year, ics)
    rows = calendar_rows(entries)
    table = Table(title=f"Lịch báo cáo năm {year} / reporting calendar: {rt.cfg.body.short_name}")
    for name in rows[0] if rows else ["ngày / date"]:
        table.add_column(name)
    for r in rows:
        table.add_row(*(escape(str(v)) for v in r.values()))
    console.print(table)
    console.print(f"iCalendar (.ics): {escape(str(path))}")


if __name__ == "__main__":
    app()
