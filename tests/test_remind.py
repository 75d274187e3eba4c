"""Reminders over a simulated month: a fake clock in the domain functions, not in Prefect."""

from __future__ import annotations

import datetime as dt

from sqlmodel import select

from baocao.config import Reminders
from baocao.db import session_scope
from baocao.mailcatcher import MailCatcher
from baocao.models import OutboxMessage
from baocao.periods import Period, parse_moment
from baocao.runtime import build_runtime
from baocao.settings import get_settings
from tasks.intake import ingest_files
from tasks.notify import deliver_outbox
from tasks.remind import queue_reminders, reminder_step
from tests.conftest import MANIFEST, edited_config, make_runtime, open_example, returned

POLICY = Reminders(
    working_days_before=(7, 3, 1),
    on_the_day=True,
    overdue_every_working_days=2,
    escalate_after_working_days=3,
    escalate_to=("head", "chairman_office"),
)


def test_policy_steps_across_a_month():
    last_day = dt.date(2022, 3, 16)  # Wednesday
    days = [dt.date(2022, 3, 1) + dt.timedelta(days=n) for n in range(31)]
    steps = {d: reminder_step(d, last_day, POLICY) for d in days}
    fired = {d.isoformat(): s[0] for d, s in steps.items() if s}
    assert fired == {
        "2022-03-07": "before-7",
        "2022-03-11": "before-3",
        "2022-03-15": "before-1",
        "2022-03-16": "due-day",
        "2022-03-18": "overdue-2",
        "2022-03-22": "overdue-4",
        "2022-03-24": "overdue-6",
        "2022-03-28": "overdue-8",
        "2022-03-30": "overdue-10",
    }
    assert all(d.weekday() < 5 for d in (dt.date.fromisoformat(k) for k in fired))


def test_no_reminder_on_a_holiday():
    # Hùng Kings' day 2022 was observed on Monday 11/04/2022.
    assert reminder_step(dt.date(2022, 4, 11), dt.date(2022, 4, 14), POLICY) is None


def test_simulated_period_sends_exactly_the_policy(tmp_path):
    rt = make_runtime(tmp_path / "data")
    open_example(rt)
    period = Period.parse("2022-Q1")
    day = dt.date(2022, 3, 1)
    while day <= dt.date(2022, 3, 31):
        queue_reminders(rt, period=period, today=day, units=None)
        queue_reminders(rt, period=period, today=day, units=None)  # a rerun the same day
        day += dt.timedelta(days=1)
    with session_scope(rt.engine) as s:
        keys = [
            m.key for m in s.exec(select(OutboxMessage).where(OutboxMessage.kind == "reminder"))
        ]
    nv = sorted(k.split(":")[4] for k in keys if k.startswith("reminder:") and ":NV:" in k)
    assert nv == sorted(
        [
            "before-7",
            "before-3",
            "before-1",
            "due-day",
            "overdue-2",
            "overdue-4",
            "overdue-6",
            "overdue-8",
            "overdue-10",
        ]
    )
    escalated = ["overdue-10", "overdue-4", "overdue-6", "overdue-8"]
    head = sorted(k.split(":")[3] for k in keys if k.startswith("escalation:") and ":head:NV:" in k)
    assert head == escalated
    office = sorted(k.split(":")[3] for k in keys if ":chairman_office:" in k)
    assert office == escalated  # one digest a step for all the late units, not one per unit
    assert len(keys) == len(set(keys))


def test_units_with_a_valid_version_are_not_reminded(tmp_path):
    rt = make_runtime(tmp_path / "data")
    open_example(rt)
    first_wave = MANIFEST["arrivals"][0]
    ingest_files(rt, returned(rt, first_wave["files"]), now=parse_moment(str(first_wave["at"])))
    keys = queue_reminders(
        rt, period=Period.parse("2022-Q1"), today=dt.date(2022, 3, 11), units=None
    )
    reminded = {k.split(":")[3] for k in keys}
    assert reminded == set(rt.cfg.expected_units(rt.report)) - {"NV", "TP", "VHTT", "MOTCUA"}


def test_one_step_reaches_a_unit_once_by_mail_and_once_by_zalo(tmp_path, zalo_api):
    config = edited_config(
        tmp_path / "config",
        "units.yaml",
        "contacts: [{email: phongnoivu@sontay.quangngai.gov.vn, tags: [cchc]}]",
        "contacts: [{email: phongnoivu@sontay.quangngai.gov.vn}, {url: 'zalo://4455667788'}]",
    )
    with MailCatcher(tmp_path / "mail") as mail:
        settings = get_settings(
            data_dir=tmp_path / "data", config_dir=config, mail_url=mail.mail_url
        )
        rt = build_runtime(report_id="cchc-quarterly", settings=settings)
        open_example(rt)
        for _ in range(2):  # the step, then a rerun the same day
            queue_reminders(
                rt, period=Period.parse("2022-Q1"), today=dt.date(2022, 3, 15), units=["NV"]
            )
            deliver_outbox(rt.engine, mail_url=mail.mail_url, kinds=["reminder"])
        assert [m.rcpt for m in mail.received] == [["phongnoivu@sontay.quangngai.gov.vn"]]
        assert "Nhắc: còn 1 ngày làm việc" in mail.received[0].subject
    assert [(user["recipient"]["user_id"]) for _, _, user in zalo_api.seen] == ["4455667788"]
    assert "16/03/2022" in zalo_api.seen[0][2]["message"]["text"]
