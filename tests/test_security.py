"""Nobody let in: a config folder from outside is refused, templates cannot run code, a
decision counts only with the approver's one-time code, the Prefect password stays out of
config and is kept owner-only. (The locked server itself: tests/test_server.py.)"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from baocao.config import ConfigError, load_config
from baocao.db import session_scope
from baocao.models import ApprovalCode, OutboxMessage, RenderedReport
from baocao.periods import now_vn, parse_moment
from baocao.prefect_server import ServerError, ensure_auth, find_auth
from baocao.runtime import allowed_config_dir, build_runtime
from baocao.settings import PROJECT_ROOT, get_settings
from baocao.templating import TemplateSecurityError, make_env, render_string
from tests.conftest import APPROVAL_ON, PERIOD, edited_config, ingest_waves, open_example

NOW = dt.datetime(2022, 4, 5, 2, tzinfo=dt.UTC)

# ---- a config folder of someone else's making -------------------------------------------


def _foreign_config(folder: Path, marker: Path, payload: str | None = None) -> Path:
    """A valid copy of the bundled config whose own templates/ would `touch marker` when
    rendered by an unsandboxed Jinja (the shape of the reproduced attack)."""
    shutil.copytree(PROJECT_ROOT / "config", folder)
    shutil.copytree(PROJECT_ROOT / "templates", folder / "templates")
    payload = payload or (
        "{{ cycler.__init__.__globals__.os.popen('touch " + str(marker) + "').read() }}"
    )
    (folder / "templates" / "messages" / "request.j2").write_text(
        "Đề nghị báo cáo {{ period.label }}\n" + payload + "\n", encoding="utf-8"
    )
    return folder


def test_a_config_folder_outside_the_allowed_ones_is_refused(tmp_path, monkeypatch):
    from tasks.collect import open_period

    monkeypatch.delenv("BAOCAO_ALLOWED_CONFIG_DIRS")  # only the bundled config/ is allowed
    marker = tmp_path / "pwned"
    foreign = _foreign_config(tmp_path / "evil", marker)
    monkeypatch.setenv("BAOCAO_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(ConfigError) as err:
        rt = build_runtime(str(foreign))
        open_period(rt, period=PERIOD, units=None, now=NOW)
    message = str(err.value)
    assert str(foreign) in message and "BAOCAO_ALLOWED_CONFIG_DIRS" in message
    assert not marker.exists()
    # the bundled folder, and one listed in the setting, are accepted
    assert build_runtime(str(PROJECT_ROOT / "config")).cfg.body.place == "Sơn Tây"
    monkeypatch.setenv("BAOCAO_ALLOWED_CONFIG_DIRS", str(tmp_path))
    assert build_runtime(str(foreign)).settings.config_dir == foreign.resolve()


def test_the_command_line_config_option_is_refused_in_one_line(tmp_path, monkeypatch):
    from app.cli import app

    monkeypatch.delenv("BAOCAO_ALLOWED_CONFIG_DIRS")
    foreign = _foreign_config(tmp_path / "evil", tmp_path / "pwned")
    result = CliRunner().invoke(app, ["status", "2022-Q1", "--config", str(foreign)])
    assert result.exit_code == 2, result.output
    assert "BAOCAO_ALLOWED_CONFIG_DIRS" in result.output and "Traceback" not in result.output


def test_dot_dot_and_symlinks_do_not_leave_an_allowed_folder(tmp_path):
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir(), outside.mkdir()
    (allowed / "link").symlink_to(outside)
    settings = get_settings(allowed_config_dirs=str(allowed))
    assert allowed_config_dir(allowed / "district", settings) == (allowed / "district").resolve()
    for sneaky in (allowed / ".." / "outside", allowed / "link"):
        with pytest.raises(ConfigError, match="BAOCAO_ALLOWED_CONFIG_DIRS"):
            allowed_config_dir(sneaky, settings)


def test_an_allowed_folder_s_templates_run_in_the_sandbox(tmp_path, monkeypatch):
    """Even a folder the settings allow cannot run code: the template fails, naming itself."""
    from tasks.collect import open_period

    marker = tmp_path / "pwned"
    foreign = _foreign_config(tmp_path / "district", marker)
    rt = build_runtime(str(foreign), "cchc-quarterly", get_settings(data_dir=tmp_path / "data"))
    with pytest.raises(TemplateSecurityError) as err:
        open_period(rt, period=PERIOD, units=None, now=NOW)
    assert "messages/request.j2" in str(err.value) and "dòng 2" in str(err.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ lipsum.__globals__['os'].system('id') }}",
        "{% set x = [] %}{{ x.append(1) }}",
        "{{ self._TemplateReference__context }}",
    ],
)
def test_unsafe_template_expressions_are_refused(tmp_path, payload):
    (tmp_path / "t.txt").write_text("ok\n" + payload, encoding="utf-8")
    env = make_env(tmp_path)
    with pytest.raises(TemplateSecurityError, match="t.txt, dòng 2"):
        env.get_template("t.txt").render()
    with pytest.raises(TemplateSecurityError, match="cấu hình"):  # a text from config/
        render_string(env, payload)


@pytest.mark.parametrize(
    "payload",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    ],
)
def test_config_texts_stay_sandboxed_with_the_bundled_templates(payload):
    """The bundled templates run unsandboxed (they are our code); a text from a config folder
    (a paragraph, a title) never does, whichever templates render around it."""
    from baocao.templating import BUNDLED_TEMPLATES, TrustedEnvironment

    env = make_env(BUNDLED_TEMPLATES)
    assert isinstance(env, TrustedEnvironment)
    with pytest.raises(TemplateSecurityError, match="cấu hình"):
        render_string(env, "Báo cáo " + payload)
    assert render_string(env, "{{ n | so }} {{ p | pct }}", n=112108, p=43.5) == "112.108 43,5%"


def test_only_the_bundled_folder_is_trusted(tmp_path):
    """A copy of the bundled templates, or the bundled ones behind a district's override,
    run in the sandbox."""
    from baocao.templating import BUNDLED_TEMPLATES, BaocaoEnvironment

    copy = shutil.copytree(BUNDLED_TEMPLATES, tmp_path / "templates")
    assert isinstance(make_env(copy), BaocaoEnvironment)
    assert isinstance(make_env(copy, BUNDLED_TEMPLATES), BaocaoEnvironment)
    (tmp_path / "link").symlink_to(BUNDLED_TEMPLATES)
    assert not isinstance(make_env(tmp_path / "link"), BaocaoEnvironment)


def test_the_sandbox_keeps_filters_strict_undefined_and_html_escaping(tmp_path):
    from jinja2 import UndefinedError

    (tmp_path / "a.html.j2").write_text("{{ x }} {{ n | so }}", encoding="utf-8")
    env = make_env(tmp_path)
    assert env.get_template("a.html.j2").render(x="<b>", n=112108) == "&lt;b&gt; 112.108"
    assert render_string(env, "{{ p | pct }} {{ d | ngay }}", p=43.5, d=dt.date(2022, 2, 21)) == (
        "43,5% 21/02/2022"
    )
    with pytest.raises(UndefinedError):
        render_string(env, "{{ missing }}")


def test_a_district_overriding_one_template_keeps_the_others(tmp_path):
    foreign = _foreign_config(tmp_path / "district", tmp_path / "m", payload="(đã sửa)")
    (foreign / "templates" / "messages" / "reminder.j2").unlink()
    rt = build_runtime(str(foreign), "cchc-quarterly", get_settings(data_dir=tmp_path / "data"))
    assert "(đã sửa)" in rt.env.get_template("messages/request.j2").render(period=PERIOD)
    assert rt.env.get_template("messages/reminder.j2")  # from the bundled templates/


# ---- who may approve --------------------------------------------------------------------


def test_approvers_are_checked_on_load(tmp_path):
    ok = edited_config(tmp_path / "ok", *APPROVAL_ON)
    keys = [a.key for a in load_config(ok).report("cchc-quarterly").approval.approvers]
    assert keys == ["chu-tich", "chanh-van-phong"]
    report = "reports/cchc-quarterly.yaml"
    cases = {
        "twice": (report, "key: chanh-van-phong", "key: chu-tich", "chu-tich' appears twice"),
        "no-contact": (
            report,
            "contacts: [{email: chutich@sontay.quangngai.gov.vn}]",
            "contacts: []",
            "approval.approvers.0.contacts",
        ),
    }
    for name, (file, old, new, expected) in cases.items():
        with pytest.raises(ConfigError, match=expected):
            load_config(edited_config(tmp_path / name, file, old, new))
    none = edited_config(tmp_path / "none", *APPROVAL_ON)
    path = none / report
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.index("approval:")], encoding="utf-8")
    with pytest.raises(ConfigError, match="approval.approvers"):
        load_config(none)
    shutil.copytree(none, tmp_path / "off")  # approval off: no approvers needed
    (tmp_path / "off" / "schedule.yaml").write_text(
        (PROJECT_ROOT / "config" / "schedule.yaml")
        .read_text(encoding="utf-8")
        .replace("approval_required: true", "approval_required: false"),
        encoding="utf-8",
    )
    assert load_config(tmp_path / "off").report("cchc-quarterly").approval.approvers == ()


@pytest.fixture
def drafted(tmp_path):
    """The example taken in and version 1 of its report rendered, approval on."""
    from tasks.consolidate import consolidate_period
    from tasks.publish import render_version

    config = edited_config(tmp_path / "config", *APPROVAL_ON)
    rt = build_runtime(
        report_id="cchc-quarterly",
        settings=get_settings(data_dir=tmp_path / "data", config_dir=config),
    )
    open_example(rt)
    ingest_waves(rt)
    result = consolidate_period(rt, PERIOD)
    row, _ = render_version(rt, result, dt.date(2022, 4, 5), NOW)
    return rt, row, config


def _codes_from_outbox(rt) -> dict[str, str]:
    """approver key -> the code in the newest message queued to them."""
    import re

    out = {}
    with session_scope(rt.engine) as s:
        for m in s.query(OutboxMessage).filter_by(kind="approval").order_by(OutboxMessage.id):
            key = m.key.split(":")[4]
            out[key] = re.search(r"Mã duyệt một lần của ông/bà: (\d+)", m.body).group(1)
    return out


def test_codes_go_to_each_approver_s_own_contacts_and_only_their_hash_is_stored(drafted):
    from tasks.approve import issue_codes

    rt, row, _ = drafted
    now = parse_moment("2022-04-05T09:00")
    keys = issue_codes(rt, row, PERIOD, now, completeness="14/14", timeliness="13/14")
    assert len(keys) == 2 and all(k.startswith("approval:cchc-quarterly:2022-Q1:v1:") for k in keys)
    codes = _codes_from_outbox(rt)
    assert set(codes) == {"chu-tich", "chanh-van-phong"}
    assert all(len(c) == 6 and c.isdigit() for c in codes.values())
    with session_scope(rt.engine) as s:
        messages = {m.recipient: m for m in s.query(OutboxMessage).filter_by(kind="approval")}
        stored = s.query(ApprovalCode).all()
    assert messages["Nguyễn Ngọc Trân"].address == "chutich@sontay.quangngai.gov.vn"
    draft = messages["Nguyễn Ngọc Trân"].attachments  # the draft to read, not the office's status
    assert "BC-CCHC-Quy-I-2022-UBND-huyen-Son-Tay.docx" in draft and "Tinh-hinh-nop" not in draft
    assert "--by chu-tich --code" in messages["Nguyễn Ngọc Trân"].body
    assert {c.approver for c in stored} == set(codes)
    for c in stored:
        assert codes[c.approver] not in c.code_hash and len(c.code_hash) == 64
        assert c.expires_at - c.created_at == dt.timedelta(hours=72)
    # a rerun while the codes are good sends nothing new
    assert issue_codes(rt, row, PERIOD, now + dt.timedelta(hours=1)) == []


def test_a_decision_counts_only_with_the_approver_s_live_code(drafted):
    from tasks.approve import decide, issue_codes

    rt, row, _ = drafted
    now = parse_moment("2022-04-05T09:00")
    issue_codes(rt, row, PERIOD, now)
    codes = _codes_from_outbox(rt)

    def try_(approver, code, **kw):
        kw.setdefault("number", "25")
        return decide(
            rt, row.id, approver=approver, code=code, approve=True, comment="", now=now, **kw
        )

    wrong = str((int(codes["chu-tich"]) + 1) % 1_000_000).zfill(6)
    assert not (v := try_("chu-tich", wrong)).ok and "mã không đúng" in v.message
    assert "còn 2 lần thử" in v.message
    # another approver's code is not mine
    assert not try_("chu-tich", codes["chanh-van-phong"]).ok
    # a name that is no approver
    assert not (v := try_("Văn phòng", codes["chu-tich"])).ok and "chu-tich" in v.message
    with session_scope(rt.engine) as s:
        assert s.get(RenderedReport, row.id).status == "draft"
        tries = {c.approver: c.failed_tries for c in s.query(ApprovalCode)}
    assert tries == {"chu-tich": 3, "chanh-van-phong": 1}  # 2 wrong + the unknown name
    # three wrong tries void the code, even for the right one now
    assert not (v := try_("chu-tich", codes["chu-tich"])).ok and "khóa" in v.message
    # the other approver's code still works, once
    ok = decide(
        rt,
        row.id,
        approver="chanh-van-phong",
        code=f" {codes['chanh-van-phong']} ",
        approve=False,
        comment="Sửa mục II.5",
        now=now,
    )
    assert ok.ok and ok.row.status == "sent_back"
    assert ok.row.decided_by == "Chánh Văn phòng HĐND và UBND huyện"
    assert not (v := try_("chanh-van-phong", codes["chanh-van-phong"])).ok
    assert "đã được dùng" in v.message
    with session_scope(rt.engine) as s:
        row_now = s.get(RenderedReport, row.id)
    assert (row_now.status, row_now.comment) == ("sent_back", "Sửa mục II.5")
    assert row_now.decided_at == now.astimezone(dt.UTC)


def test_an_expired_code_does_not_count_and_publish_issues_new_ones(drafted):
    from tasks.approve import decide, issue_codes

    rt, row, _ = drafted
    then = parse_moment("2022-04-01T09:00")
    issue_codes(rt, row, PERIOD, then)
    old = _codes_from_outbox(rt)["chu-tich"]
    later = then + dt.timedelta(hours=73)
    v = decide(
        rt, row.id, approver="chu-tich", code=old, approve=True, comment="", now=later, number="25"
    )
    assert not v.ok and "hết hạn" in v.message
    assert len(issue_codes(rt, row, PERIOD, later)) == 2  # fresh codes, new outbox keys
    new = _codes_from_outbox(rt)["chu-tich"]
    v = decide(
        rt, row.id, approver="chu-tich", code=new, approve=True, comment="", now=later, number="25"
    )
    assert v.ok and v.row.status == "approved" and v.row.decided_by == "Nguyễn Ngọc Trân"


def test_baocao_approve_needs_the_code(drafted, monkeypatch):
    from app.cli import app
    from tasks.approve import issue_codes

    rt, row, config = drafted
    monkeypatch.setenv("BAOCAO_DATA_DIR", str(rt.settings.data_dir))
    issue_codes(rt, row, PERIOD, now_vn())  # the command checks against the real clock
    code = _codes_from_outbox(rt)["chu-tich"]
    args = [
        "approve",
        "2022-Q1",
        "--report",
        "cchc-quarterly",
        "--by",
        "chu-tich",
        "--number",
        "25",
    ]
    args += ["--config", str(config), "--code"]
    bad = CliRunner().invoke(app, [*args, "000000" if code != "000000" else "111111"])
    assert bad.exit_code == 2 and "mã không đúng" in bad.output and "Traceback" not in bad.output
    good = CliRunner().invoke(app, [*args, code])
    assert good.exit_code == 0, good.output
    assert "approved by Nguyễn Ngọc Trân" in good.output
    again = CliRunner().invoke(app, [*args, code])
    assert again.exit_code == 2 and "đã được duyệt" in again.output


# ---- the Prefect server's password ------------------------------------------------------


def test_a_generated_password_is_owner_only_and_reused(tmp_path, monkeypatch):
    settings = get_settings(data_dir=tmp_path / "data")
    assert find_auth(settings) is None
    first = ensure_auth(settings)
    assert first.created and first.user == "baocao" and len(first.value) > 30
    assert first.path == tmp_path / "data" / "prefect-auth"
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    again = ensure_auth(settings)
    assert again.value == first.value and not again.created
    os.chmod(first.path, 0o644)
    with pytest.raises(ServerError, match="chmod 600"):
        find_auth(settings)


def test_the_environment_s_password_wins_and_is_checked(tmp_path, monkeypatch):
    settings = get_settings(data_dir=tmp_path / "data")
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", "admin:correct-horse-battery")
    assert find_auth(settings).value == "admin:correct-horse-battery"
    own = settings.model_copy(update={"prefect_auth": SecretStr("ubnd:staple-staple-staple")})
    assert find_auth(own).source == "BAOCAO_PREFECT_AUTH"
    assert not (tmp_path / "data" / "prefect-auth").exists()  # nothing written
    weak = settings.model_copy(update={"prefect_auth": SecretStr("admin:123")})
    with pytest.raises(ServerError, match="BAOCAO_PREFECT_AUTH"):
        find_auth(weak)
