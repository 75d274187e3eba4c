"""What a flow or command needs, built once per run by a factory (never at import time)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment
from sqlalchemy import Engine

from baocao.config import Config, ReportDef, load_config
from baocao.db import open_store
from baocao.settings import Settings, get_settings
from baocao.templating import make_env


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    cfg: Config
    report: ReportDef
    engine: Engine
    env: Environment


def build_runtime(
    config_dir: str | Path | None = None,
    report_id: str | None = None,
    settings: Settings | None = None,
) -> Runtime:
    """Settings from the environment, config validated, store migrated, templates ready."""
    config_dir = config_dir or None  # blank means "not set", as the Prefect UI sends it
    settings = settings or get_settings(config_dir=config_dir)
    if config_dir:
        settings = settings.model_copy(update={"config_dir": Path(config_dir)})
    cfg = load_config(settings.config_dir)
    if (settings.config_dir / "templates").is_dir():  # a district may override templates
        settings = settings.model_copy(update={"templates_dir": settings.config_dir / "templates"})
    return Runtime(
        settings=settings,
        cfg=cfg,
        report=cfg.report(report_id),
        engine=open_store(settings),
        env=make_env(settings.templates_dir),
    )
