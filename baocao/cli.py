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
    typer.Option("--config", help="Config folder (default: BAOCAO_CONFIG_DIR or the bundled one)"),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option("--as-of", help="Run as of this time, e.g. 2022-03-15T08:00 (default: now)"),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Send again even what was already sent")]
UnitsOpt = Annotated[
    list[str] | None, typer.Option("--unit", "-u", help="Only this unit (repeatable)")
]


@app.callback()
def _client_auth() -> None:
    """Commands that talk to a Prefect server (PREFECT_API_URL) log in to it like `serve`:
    BAOCAO_PREFECT_AUTH, or the password `serve` saved in the data folder."""
    if not os.environ.get("PREFECT_API_URL") or os.environ.get("PREFECT_API_AUTH_STRING"):
        return
    from baocao.serve import ServerError, find_auth
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


def _preflight(
    config: Path | None,
    *,
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

        rt, now = start(_cfg(config), as_of or "", units or None)
        try:
            if period is not None:
                pick_period(rt, period, now)
        finally:
            rt.engine.dispose()
        if report_date:
            parse_day(report_date)
        missing = [str(p) for p in paths or [] if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"không tìm thấy / not found: {', '.join(missing)}")
        require_prefect_api()

    _run(check)


def _delivered(r: dict) -> str:
    """What a delivery did, including messages taken back from a run that stopped while
    sending and those left for the next run when this one ran out of time."""
    text = f"{r.get('sent', 0)} sent, {r.get('failed', 0)} failed"
    if r.get("reclaimed"):
        text += f", {r['reclaimed']} taken back from a stopped run (may have arrived once)"
    if r.get("deferred"):
        text += f", {r['deferred']} left for the next run"
    return text


def _cfg(config: Path | None) -> str:
    return str(config) if config else ""


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the report, the messages and the data")
    ] = Path("out"),
    config: ConfigOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="Show Prefect's logs")] = False,
) -> None:
    """Run the bundled Sơn Tây example (Quý I/2022) end to end, mail on loopback."""
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from baocao.demo import run_demo
    from baocao.errors import require_prefect_api

    _run(require_prefect_api)

    console.print(
        "[bold]baocao demo[/]: UBND huyện Sơn Tây, báo cáo CCHC Quý I/2022 (Prefect khởi động cục bộ...)"
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
    period: Annotated[str, typer.Argument(help="e.g. 2022-Q1")],
    units: UnitsOpt = None,
    force: ForceOpt = False,
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Open PERIOD: send every unit its request and pre-filled form."""
    from flows.open_period import open_period

    _preflight(config, period=period or "", units=units, as_of=as_of)
    r = _run(
        open_period,
        period=period or "",
        units=units or [],
        force=force,
        as_of=as_of or "",
        config_dir=_cfg(config),
    )
    console.print(
        f"{r['period']}: {r['new_requests']} new request(s), {r['queued_messages']} message(s) queued, "
        f"{_delivered(r)}; units' deadline {r['unit_deadline']}"
    )
    if r.get("facts"):  # the report cannot be published without them; opening goes on
        err.print(f"[yellow]Cảnh báo / warning:[/] {escape(r['facts'])}", soft_wrap=True)


@app.command()
def ingest(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Files (default: the office's mailbox when BAOCAO_IMAP_URL is set, and the "
            "inbox folder)"
        ),
    ] = None,
    unit: Annotated[
        str | None,
        typer.Option(
            "--unit",
            "-u",
            help="File the given files for this unit (received by hand, e.g. over Zalo); "
            "without it each file must carry its unit's form code",
        ),
    ] = None,
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Take in returned forms (.xlsx, .csv) from the mailbox, the inbox folder or the given
    files: archive, validate, store, tell units what is wrong."""
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
    period: Annotated[str | None, typer.Argument(help="e.g. 2022-Q1")] = None,
    units: UnitsOpt = None,
    force: ForceOpt = False,
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Send today's reminder step to units without a valid submission."""
    from flows.send_reminders import send_reminders

    _preflight(config, period=period or "", units=units, as_of=as_of)
    r = _run(
        send_reminders,
        period=period or "",
        units=units or [],
        force=force,
        as_of=as_of or "",
        config_dir=_cfg(config),
    )
    console.print(f"{r['period']}: {r['queued']} reminder(s) queued, {_delivered(r)}")


@app.command()
def publish(
    period: Annotated[str, typer.Argument(help="e.g. 2022-Q1")],
    report_date: Annotated[
        str | None, typer.Option("--date", help="Date printed on the report (default: today)")
    ] = None,
    force: ForceOpt = False,
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Consolidate PERIOD, render the report and send it to its recipients."""
    from flows.publish_report import publish_report

    _preflight(config, period=period or "", as_of=as_of, report_date=report_date)
    r = _run(
        publish_report,
        period=period or "",
        report_date=report_date or "",
        force=force,
        as_of=as_of or "",
        config_dir=_cfg(config),
    )
    console.print(
        f"{r['period']} v{r['version']} ({'new' if r['new_version'] else 'unchanged'}) in {r['folder']}\n"
        f"units in {r['completeness']}, on time {r['timeliness']}; {r['queued']} notice(s) queued, "
        f"{_delivered(r)}"
    )


@app.command()
def approve(
    period: Annotated[str, typer.Argument(help="e.g. 2022-Q1")],
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
    config: ConfigOpt = None,
) -> None:
    """Duyệt / approve PERIOD's latest rendered report (or send it back) with your one-time
    code, the document number and the signing date; publish then sends it."""
    from baocao.periods import Period, now_vn, parse_day
    from baocao.runtime import build_runtime
    from tasks.approve import decide_latest

    rt = _run(build_runtime, _cfg(config))
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
    period: Annotated[str, typer.Argument(help="e.g. 2022-Q1")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
    config: ConfigOpt = None,
) -> None:
    """Where each unit stands for PERIOD: state, version, on time, findings."""
    from baocao.periods import Period
    from baocao.runtime import build_runtime
    from tasks.status import period_status

    rt = _run(build_runtime, _cfg(config))
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
def form(
    unit: Annotated[str, typer.Argument(help="Unit code, e.g. TCKH")],
    period: Annotated[str, typer.Argument(help="e.g. 2022-Q1")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the .xlsx")],
    config: ConfigOpt = None,
) -> None:
    """Write UNIT's pre-filled form for PERIOD (the one sent with its request, if any)."""
    from baocao.periods import Period
    from baocao.runtime import build_runtime
    from tasks.collect import form_for

    rt = _run(build_runtime, _cfg(config))
    content = _run(form_for, rt, unit, _run(Period.parse, period))
    _run(out.parent.mkdir, parents=True, exist_ok=True)
    _run(out.write_bytes, content)
    console.print(f"{out} ({len(content):,} bytes)")


@app.command()
def serve(
    config: ConfigOpt = None,
    limit: Annotated[int, typer.Option("--limit", help="Flow runs at once (processes)")] = 4,
    ingest_minutes: Annotated[
        int, typer.Option("--ingest-every", help="Minutes between inbox checks")
    ] = 5,
    once: Annotated[
        bool, typer.Option("--register-only", help="Register the deployments, print, exit")
    ] = False,
    port: Annotated[
        int, typer.Option("--port", help="Port of the Prefect server on 127.0.0.1")
    ] = 4200,
) -> None:
    """Serve every flow as a scheduled deployment, with the Prefect UI on 127.0.0.1:4200,
    locked with a password (BAOCAO_PREFECT_AUTH, or one generated into the data folder)."""
    from baocao.periods import now_vn
    from baocao.serve import ensure_server, use_server
    from baocao.settings import get_settings

    settings = get_settings()
    api, _proc, auth = _run(ensure_server, settings.data_dir / "prefect-server.log", settings, port)
    use_server(api, auth)
    from baocao.serve import build_deployments

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
        upcoming = [t for t in times.get(d.name, []) if t > now_vn()][:3]
        when = ", ".join(t.strftime("%d/%m/%Y %H:%M") for t in upcoming) or (
            f"every {ingest_minutes} min" if d.name == "ingest-submissions" else "on demand"
        )
        table.add_row(d.name, when)
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


if __name__ == "__main__":
    app()
