"""What a flow or command needs, built once per run by a factory (never at import time)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from jinja2 import Environment
from sqlalchemy import Engine

from baocao.config import Config, ConfigError, ReportDef, Schedule, load_config
from baocao.db import open_store
from baocao.settings import Settings, get_settings
from baocao.templating import make_env


@dataclass(frozen=True)
class Runtime:
    """One run's settings, config, store and templates, about one report or all of them.

    `report_id` names the report a run is about; None means every report of the config
    (intake, reminders, the calendar), and then `report` is the config's only one, or a
    one-line error asking to name one."""

    settings: Settings
    cfg: Config
    engine: Engine
    env: Environment
    report_id: str | None = None

    @property
    def report(self) -> ReportDef:
        return self.cfg.report(self.report_id)

    @property
    def reports(self) -> list[ReportDef]:
        """The report named, or every report of the config."""
        return [self.report] if self.report_id else list(self.cfg.reports.values())

    @property
    def schedule(self) -> Schedule:
        """The report's dates and reminder policy (schedule.yaml, with its own keys)."""
        return self.report.schedule or self.cfg.schedule

    def for_report(self, report_id: str) -> Runtime:
        """The same run about one report (checked: an unknown id is a one-line error)."""
        self.cfg.report(report_id)
        return replace(self, report_id=report_id)


def allowed_config_dir(config_dir: str | Path, settings: Settings) -> Path:
    """`config_dir` (a run parameter, `--config`) if it lies in a folder the settings allow.

    A config folder may carry its own templates/, which the flows render: whoever can start
    a run must not be able to point it at a folder of their own making."""
    path = Path(config_dir).expanduser().resolve()  # `..` and symlinks resolved first
    roots = settings.allowed_config_roots
    if any(path == root or path.is_relative_to(root) for root in roots):
        return path
    raise ConfigError(
        f"thư mục cấu hình {path} không nằm trong các thư mục được phép "
        f"({', '.join(map(str, roots))}); thêm nó vào BAOCAO_ALLOWED_CONFIG_DIRS nếu tin cậy / "
        f"config folder {path} is not allowed: add it to BAOCAO_ALLOWED_CONFIG_DIRS"
    )


def build_runtime(
    config_dir: str | Path | None = None,
    report_id: str | None = None,
    settings: Settings | None = None,
) -> Runtime:
    """Settings from the environment, config validated, store migrated, templates ready.

    `config_dir` comes from outside (a run parameter, `--config`): it is accepted only in a
    folder of `Settings.allowed_config_roots`."""
    config_dir = config_dir or None  # blank means "not set", as the Prefect UI sends it
    settings = settings or get_settings()
    if config_dir:
        settings = settings.model_copy(
            update={"config_dir": allowed_config_dir(config_dir, settings)}
        )
    cfg = load_config(settings.config_dir)
    fallback = None
    if (settings.config_dir / "templates").is_dir():  # a district may override templates
        fallback = settings.templates_dir
        settings = settings.model_copy(update={"templates_dir": settings.config_dir / "templates"})
    return Runtime(
        settings=settings,
        cfg=cfg,
        report_id=cfg.report(report_id).id if report_id else None,
        engine=open_store(settings),
        env=make_env(settings.templates_dir, fallback),
    )
