"""Runs started from the UI meet the same mistakes as the command: a config key, a period, a
unit code, a lost store. Each ends the run Failed with one line, in the run's log and as the
state's message, and no traceback in the log (read back from the real Prefect API)."""

from __future__ import annotations

import asyncio
import time

import prefect.states
import pytest

from baocao.config import ConfigError
from baocao.errors import SetupError
from tests.conftest import edited_config

pytestmark = pytest.mark.slow


def _run_logs(flow_run_id) -> list:
    """The run's log records as the UI shows them (shipped to the API every 2 s)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()

    async def read():
        async with get_client() as client:
            return await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
            )

    logs: list = []
    for _ in range(40):  # until the final "Finished in state" record has arrived
        logs = asyncio.run(read())
        if any("Finished in state" in r.message for r in logs):
            return logs
        time.sleep(0.5)
    raise AssertionError(f"the run's logs never arrived: {[r.message for r in logs]}")


def _failed_cleanly(state, *words: str) -> str:
    assert state.is_failed(), state
    message = state.message
    assert "\n" not in message and all(w in message for w in words), message
    logs = _run_logs(state.state_details.flow_run_id)
    text = "\n".join(r.message for r in logs)
    assert "Traceback" not in text, text
    assert any(r.level >= 40 and message in r.message for r in logs), text
    return message


def test_a_config_mistake_fails_the_run_in_one_line(prefect_harness, tmp_path, monkeypatch):
    from flows.open_period import open_period

    monkeypatch.setenv("BAOCAO_DATA_DIR", str(tmp_path / "data"))
    config = edited_config(
        tmp_path / "config",
        "schedule.yaml",
        "unit_deadline_working_days_after_cutoff: 2",
        "unit_deadline_working_days_after_cutoff: -2",
    )
    state = open_period(
        report="cchc-quarterly", period="2022-Q1", config_dir=str(config), return_state=True
    )
    _failed_cleanly(state, "schedule.yaml", "unit_deadline_working_days_after_cutoff", "≥ 0")
    with pytest.raises(ConfigError, match="unit_deadline"):  # from Python: the same exception
        open_period(report="cchc-quarterly", period="2022-Q1", config_dir=str(config))


def test_bad_parameters_fail_the_run_in_one_line(prefect_harness, tmp_path, monkeypatch):
    from flows.publish_report import publish_report
    from flows.send_reminders import send_reminders

    monkeypatch.setenv("BAOCAO_DATA_DIR", str(tmp_path / "data"))
    _failed_cleanly(
        send_reminders(
            report="cchc-quarterly", period="2022-Q1", units=["NOPE"], return_state=True
        ),
        "NOPE",
    )
    _failed_cleanly(
        publish_report(report="cchc-quarterly", period="2022-Q7", return_state=True), "2022-Q7"
    )
    _failed_cleanly(send_reminders(as_of="yesterday", return_state=True), "yesterday")


def test_a_lost_store_fails_the_cycle_in_one_line(prefect_harness, tmp_path, monkeypatch):
    """Through a subflow too: the reporting cycle stops at once with the store's line."""
    from baocao.runtime import build_runtime
    from flows.reporting_cycle import reporting_cycle

    data = tmp_path / "data"
    monkeypatch.setenv("BAOCAO_DATA_DIR", str(data))
    build_runtime().engine.dispose()
    (data / "baocao.sqlite").unlink()
    state = reporting_cycle(
        report="cchc-quarterly", period="2022-Q1", as_of="2022-03-07T08:00", return_state=True
    )
    _failed_cleanly(state, "baocao.sqlite", "restore it from backup")
    with pytest.raises(SetupError):
        reporting_cycle(report="cchc-quarterly", period="2022-Q1", as_of="2022-03-07T08:00")
    assert not (data / "baocao.sqlite").exists()


def test_a_mistake_inside_a_task_is_one_line_too(prefect_harness, tmp_path, monkeypatch):
    """A district's own message template that the sandbox refuses fails in the task that
    renders it: the task's and the flow's logs carry the line, not a traceback."""
    from flows.open_period import open_period

    monkeypatch.setenv("BAOCAO_DATA_DIR", str(tmp_path / "data"))
    config = edited_config(tmp_path / "config", "body.yaml", "place: Sơn Tây", "place: Sơn Tây")
    (config / "templates" / "messages").mkdir(parents=True)
    (config / "templates" / "messages" / "request.j2").write_text(
        '{% extends "messages/_layout.j2" %}\n'
        "{% block text %}{{ ''.__class__.__mro__[1].__subclasses__() }}{% endblock %}\n",
        encoding="utf-8",
    )
    state = open_period(
        report="cchc-quarterly", period="2022-Q1", config_dir=str(config), return_state=True
    )
    _failed_cleanly(state, "request.j2")


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"stage": "publish", "units": ["NV"]}, ("units", "a report covers every unit")),
        ({"stage": "all", "units": ["NV"]}, ("units", "open and remind stages only")),
        ({"stage": "ingest", "period": "2022-Q1"}, ("period=2022-Q1", "whatever its period")),
        ({"stage": "ingest", "force": True}, ("force", "never taken twice")),
    ],
)
def test_a_parameter_the_cycle_would_not_use_is_refused(
    params, words, prefect_harness, tmp_path, monkeypatch
):
    """Before: `units` given to the publish stage was silently ignored."""
    from flows.reporting_cycle import reporting_cycle

    monkeypatch.setenv("BAOCAO_DATA_DIR", str(tmp_path / "data"))
    state = reporting_cycle(**params, as_of="2022-03-07T08:00", return_state=True)
    _failed_cleanly(state, *words)
    assert not (tmp_path / "data").exists()  # refused before anything was opened


def test_ingest_refuses_a_unit_without_files(prefect_harness, tmp_path, monkeypatch):
    from flows.ingest_submissions import ingest_submissions

    monkeypatch.setenv("BAOCAO_DATA_DIR", str(tmp_path / "data"))
    _failed_cleanly(ingest_submissions(unit="NV", return_state=True), "unit=NV", "without paths")


def test_a_run_whose_messages_all_failed_ends_failed_with_the_reason(
    prefect_harness, tmp_path, monkeypatch
):
    """Everything is recorded and kept for retry; the run is red, naming the count and the
    last error; once the server is back a rerun sends them and is green."""
    from baocao.mailcatcher import MailCatcher, free_port
    from flows.open_period import open_period
    from flows.reporting_cycle import reporting_cycle
    from tasks.notify import DeliveryFailed

    port = free_port()
    monkeypatch.setenv("BAOCAO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BAOCAO_MAIL_URL", f"mailto://127.0.0.1:{port}?from=a@b.vn&mode=insecure")
    state = open_period(
        report="cchc-quarterly", period="2022-Q1", as_of="2022-03-07T08:00", return_state=True
    )
    message = _failed_cleanly(state, "thư đề nghị / requests: 14 thư không gửi được")
    assert f"127.0.0.1:{port}" in message and "BAOCAO_MAIL_URL" in message
    with pytest.raises(DeliveryFailed) as caught:  # from Python: the summary travels with it
        reporting_cycle(
            report="cchc-quarterly", period="2022-Q1", stage="open", as_of="2022-03-07T09:00"
        )
    assert caught.value.summary["open"]["cchc-quarterly"]["failed"] == 14
    assert (
        caught.value.summary["open"]["cchc-quarterly"]["new_requests"] == 0
    )  # recorded once, retried
    with MailCatcher(tmp_path / "mail", port=port) as mail:
        state = open_period(
            report="cchc-quarterly", period="2022-Q1", as_of="2022-03-07T10:00", return_state=True
        )
        assert state.is_completed() and state.result()["sent"] == 14
        assert len(mail.received) == 14
        again = open_period(
            report="cchc-quarterly", period="2022-Q1", as_of="2022-03-07T11:00", return_state=True
        )
        assert again.is_completed()  # nothing to send is not a failure


def test_approval_codes_that_all_failed_fail_the_publish_run(
    prefect_harness, tmp_path, monkeypatch
):
    """No approver holds a code: no pause, the draft waits, the run is red and says why."""
    from baocao.mailcatcher import free_port
    from flows.publish_report import publish_report
    from tests.conftest import ingest_waves, make_runtime, open_example

    rt = make_runtime(tmp_path / "data")
    open_example(rt)
    ingest_waves(rt)
    monkeypatch.setenv("BAOCAO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BAOCAO_MAIL_URL", f"mailto://127.0.0.1:{free_port()}?from=a@b.vn")
    state = publish_report(
        report="cchc-quarterly",
        period="2022-Q1",
        report_date="2022-04-05",
        as_of="2022-04-05T09:00",
        return_state=True,
    )
    _failed_cleanly(state, "mã duyệt / approval codes: 2 thư không gửi được")
    summary = prefect.states.get_state_exception(state).summary
    assert (summary["status"], summary["sent"], summary["version"]) == ("draft", 0, 1)
