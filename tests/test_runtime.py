"""Per-run costs: the runtime's parts kept per process, no heartbeat on the local server."""

from __future__ import annotations

import os

import prefect.context
import pytest

from baocao.config import ConfigError
from baocao.errors import SetupError
from baocao.prefect_server import quiet_local_runs, use_server
from baocao.runtime import build_runtime
from baocao.settings import get_settings, use_settings
from tests.conftest import edited_config


def _settings(data_dir, config_dir):
    return get_settings(data_dir=data_dir, config_dir=config_dir)


def test_a_second_build_reuses_config_store_and_templates(tmp_path):
    config = edited_config(tmp_path / "config", "body.yaml", "Sơn Tây", "Sơn Tây")
    first = build_runtime(settings=_settings(tmp_path / "data", config))
    again = build_runtime(settings=_settings(tmp_path / "data", config), report_id=None)
    assert again.cfg is first.cfg and again.engine is first.engine and again.env is first.env
    other = build_runtime(settings=_settings(tmp_path / "other", config))
    assert other.engine is not first.engine and other.cfg is first.cfg
    assert other.settings.data_dir == tmp_path / "other"


def test_an_edited_config_file_is_read_again(tmp_path):
    config = edited_config(tmp_path / "config", "body.yaml", "Sơn Tây", "Sơn Tây")
    first = build_runtime(settings=_settings(tmp_path / "data", config))
    body = config / "body.yaml"
    # same length, written at once: size and (coarse) mtime may well be unchanged
    body.write_text(body.read_text(encoding="utf-8").replace("Sơn Tây", "Sơn Tâx"), "utf-8")
    edited = build_runtime(settings=_settings(tmp_path / "data", config))
    assert edited.cfg is not first.cfg and edited.cfg.body.place == "Sơn Tâx"
    assert edited.engine is first.engine
    body.write_text("place: [", encoding="utf-8")  # a broken file is still its one line
    with pytest.raises(ConfigError, match="body.yaml"):
        build_runtime(settings=_settings(tmp_path / "data", config))


def test_an_edited_template_is_used_by_the_next_runtime(tmp_path):
    """Templates are not checked on disk at every message; a runtime built after an edit (the
    next run) has them as edited."""
    import shutil

    from baocao.settings import PROJECT_ROOT

    config = edited_config(tmp_path / "config", "body.yaml", "Sơn Tây", "Sơn Tây")
    shutil.copytree(PROJECT_ROOT / "templates" / "messages", config / "templates" / "messages")
    first = build_runtime(settings=_settings(tmp_path / "data", config))
    name = "messages/request.j2"

    def subject(env) -> str:
        template = env.get_template(name)
        ctx = {"report": {"name": "CCHC"}, "period": {"label": "Quý I"}, "overdue": True}
        return "".join(template.blocks["subject"](template.new_context(ctx)))

    assert subject(first.env).startswith("Đề nghị báo cáo CCHC Quý I")
    request = config / "templates" / name
    request.write_text(request.read_text("utf-8").replace("Đề nghị", "Kính đề nghị"), "utf-8")
    assert subject(first.env).startswith("Đề nghị")  # this run keeps what it loaded
    again = build_runtime(settings=_settings(tmp_path / "data", config))
    assert again.env is not first.env and not again.env.auto_reload
    assert subject(again.env).startswith("Kính đề nghị báo cáo CCHC Quý I")


def test_a_disposed_engine_is_reused_and_a_lost_store_still_refused(tmp_path):
    config = edited_config(tmp_path / "config", "body.yaml", "Sơn Tây", "Sơn Tây")
    data = tmp_path / "data"
    first = build_runtime(settings=_settings(data, config))
    first.engine.dispose()  # as the command line does at its end
    again = build_runtime(settings=_settings(data, config))
    assert again.engine is first.engine
    with again.engine.connect() as conn:  # usable after dispose: a new pool
        assert conn.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1
    again.engine.dispose()
    for f in data.glob("baocao.sqlite*"):
        f.unlink()
    with pytest.raises(SetupError, match="restore it from backup"):
        build_runtime(settings=_settings(data, config))


@pytest.fixture
def global_prefect_settings(monkeypatch):
    """The process's Prefect settings put back as they were after the test."""
    saved = prefect.context.GLOBAL_SETTINGS_CONTEXT
    monkeypatch.setenv("PREFECT_API_URL", "unset below")  # so monkeypatch restores it
    yield
    prefect.context.GLOBAL_SETTINGS_CONTEXT = saved


def test_no_heartbeat_on_the_local_server_and_as_configured_on_a_real_one(
    monkeypatch, global_prefect_settings
):
    monkeypatch.delenv("PREFECT_API_URL")
    monkeypatch.setenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "60")
    prefect.context.refresh_global_settings_context()
    assert prefect.context.GLOBAL_SETTINGS_CONTEXT.settings.flows.heartbeat_frequency == 60
    assert quiet_local_runs() is True
    local = prefect.context.GLOBAL_SETTINGS_CONTEXT.settings
    assert local.flows.heartbeat_frequency is None
    assert local.server.ephemeral.startup_timeout_seconds == 60  # unset: 60 s, not 20
    assert quiet_local_runs() is False  # already off

    use_server("http://127.0.0.1:4200/api", None)  # `baocao serve`: settings read again
    settings = prefect.context.GLOBAL_SETTINGS_CONTEXT.settings
    assert str(settings.api.url) == "http://127.0.0.1:4200/api"
    assert settings.flows.heartbeat_frequency == 60
    assert quiet_local_runs() is False
    assert prefect.context.GLOBAL_SETTINGS_CONTEXT.settings.flows.heartbeat_frequency == 60


def test_nothing_is_started_ahead_when_a_server_is_configured(monkeypatch, global_prefect_settings):
    from baocao import prefect_server

    def refuse(*args, **kwargs):
        raise AssertionError("no server process may be started")

    monkeypatch.setattr(prefect_server.subprocess, "Popen", refuse)
    prefect.context.refresh_global_settings_context()  # PREFECT_API_URL set
    prefect_server.warm_local_server()()


WARM = """
import sys, httpx
from baocao.prefect_server import warm_local_server
ready = warm_local_server()
from prefect import flow
@flow
def answer():
    return 42
ready()
from prefect.settings import get_current_settings
settings = get_current_settings()
assert answer() == 42
assert "prefect.server.api.server" not in sys.modules  # the server was never imported here
assert settings.flows.heartbeat_frequency is None
from baocao.prefect_server import temporary_server
from tasks.approve import can_pause
assert temporary_server() and not can_pause()  # no UI to answer: `baocao approve` decides
print(settings.api.url)
"""


@pytest.mark.slow
def test_the_local_server_started_ahead_runs_flows_and_stops_with_the_process(tmp_path):
    """The demo starts Prefect's temporary server itself, as a process, while it lays out the
    example: runs go to it, this process never imports the server, and it stops at exit."""
    import subprocess
    import sys

    import httpx

    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")
    done = subprocess.run(
        [sys.executable, "-c", WARM], env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]
    api = done.stdout.strip().splitlines()[-1]
    assert api.startswith("http://127.0.0.1:") and api.endswith("/api")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{api}/health", timeout=2)


def test_a_worker_process_keeps_the_heartbeat(monkeypatch, global_prefect_settings):
    """A run a worker starts has PREFECT_API_URL in its environment when it imports flows."""
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    monkeypatch.delenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", raising=False)
    prefect.context.refresh_global_settings_context()
    assert quiet_local_runs() is False
    assert prefect.context.GLOBAL_SETTINGS_CONTEXT.settings.flows.heartbeat_frequency == 180


def test_settings_held_for_this_process_s_flows_without_touching_the_environment(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("BAOCAO_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("BAOCAO_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    with use_settings(data_dir=tmp_path / "held", database_url=None) as held:
        assert held.data_dir == tmp_path / "held" and held.database_url is None
        assert get_settings().data_dir == tmp_path / "held"
        assert get_settings(data_dir=tmp_path / "asked").data_dir == tmp_path / "asked"
        rt = build_runtime()  # what every flow run's `start` does
        assert rt.settings.data_dir == tmp_path / "held"
        assert rt.engine.url.get_backend_name() == "sqlite"
    assert get_settings().data_dir == tmp_path / "env"
    assert os.environ["BAOCAO_DATA_DIR"] == str(tmp_path / "env")


def test_prefect_passes_the_runtime_without_walking_the_config(tmp_path):
    """Prefect looks for futures inside every task argument that is a collection, dataclass
    or pydantic model; the runtime is none of these, so a task call does not walk every
    unit of the config (1.2 s a call at 10,000 units when it did)."""
    from prefect.utilities.collections import visit_collection

    rt = build_runtime(settings=_settings(tmp_path / "data", None))
    seen: list[object] = []
    visit_collection({"rt": rt}, lambda x: seen.append(x) or x, return_data=False)
    assert rt in seen and len(seen) <= 3  # the dict, its key and the runtime: not the config
    with pytest.raises(AttributeError, match="read-only"):
        rt.report_id = "other"
    assert rt.for_report("cchc-quarterly").report.id == "cchc-quarterly"
    assert rt.for_report(None).report_id is None
