"""What a flow or command needs, built by a factory (never at import time) and kept for the
process: a second build with the same inputs (the cycle's subflows, the demo's steps) reuses
the parsed config, the migrated store's engine and the templates."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from pathlib import Path

from jinja2 import Environment
from sqlalchemy import Engine

from baocao.config import Config, ConfigError, ReportDef, Schedule, load_config
from baocao.db import check_store, in_memory, open_store
from baocao.settings import Settings, get_settings
from baocao.templating import make_env, templates_fingerprint


class Runtime:
    """One run's settings, config, store and templates, about one report or all of them.

    `report_id` names the report a run is about; None means every report of the config
    (intake, reminders, the calendar), and then `report` is the config's only one, or a
    one-line error asking to name one.

    A plain read-only class, deliberately not a dataclass: Prefect walks every dataclass and
    pydantic model in a task's arguments looking for futures, and through the config that is
    every unit and indicator, 1.2 s per task call at 10,000 units. An object of its own is
    passed as it is."""

    __slots__ = ("settings", "cfg", "engine", "env", "report_id")

    settings: Settings
    cfg: Config
    engine: Engine
    env: Environment
    report_id: str | None

    def __init__(
        self,
        *,
        settings: Settings,
        cfg: Config,
        engine: Engine,
        env: Environment,
        report_id: str | None = None,
    ) -> None:
        for name, value in (
            ("settings", settings),
            ("cfg", cfg),
            ("engine", engine),
            ("env", env),
            ("report_id", report_id),
        ):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(f"Runtime is read-only: use for_report / build_runtime ({name})")

    def __repr__(self) -> str:
        return f"Runtime(config={self.settings.config_dir}, report={self.report_id or 'all'})"

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

    def for_report(self, report_id: str | None) -> Runtime:
        """The same run about one report (checked: an unknown id is a one-line error), or
        about every report (None)."""
        if report_id is not None:
            self.cfg.report(report_id)
        return Runtime(
            settings=self.settings,
            cfg=self.cfg,
            engine=self.engine,
            env=self.env,
            report_id=report_id,
        )


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
    cfg = cached_config(settings.config_dir)
    fallback = None
    if (settings.config_dir / "templates").is_dir():  # a district may override templates
        fallback = settings.templates_dir
        settings = settings.model_copy(update={"templates_dir": settings.config_dir / "templates"})
    return Runtime(
        settings=settings,
        cfg=cfg,
        report_id=cfg.report(report_id).id if report_id else None,
        engine=cached_store(settings),
        env=_cached(
            _ENVS,
            (
                settings.templates_dir,
                fallback,
                templates_fingerprint(settings.templates_dir, fallback),
            ),
            make_env,
        ),
    )


# Kept per process, a few of each (tests build hundreds in temporary folders): an entry
# pushed out is not disposed, since a runtime may still use it; the collector closes it.
_KEEP = 8
_LOCK = threading.Lock()
_CONFIGS: OrderedDict[tuple, Config] = OrderedDict()
_ENGINES: OrderedDict[tuple, Engine] = OrderedDict()
_ENVS: OrderedDict[tuple, Environment] = OrderedDict()


def _remember(cache: OrderedDict, key: tuple, value):
    """Keep `value` under `key`; the oldest of more than `_KEEP` entries goes."""
    with _LOCK:
        cache[key] = value
        while len(cache) > _KEEP:
            cache.popitem(last=False)
    return value


def _cached(cache: OrderedDict, key: tuple, make):
    """`cache[key]`, made by `make(*key)` when missing."""
    with _LOCK:
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
    return _remember(cache, key, make(*key))


def config_fingerprint(root: Path) -> str:
    """A hash of every YAML file's name and content under the config folder: an edited, added
    or removed file gives another (the content, since an edit can keep size and mtime)."""
    digest = hashlib.blake2b(digest_size=16)
    for path in sorted(root.rglob("*.yaml")):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"\1unreadable")  # load_config says what is wrong with it
        digest.update(b"\0")
    return digest.hexdigest()


def cached_config(root: Path) -> Config:
    """`load_config(root)`, parsed once per process while the folder's YAML stays the same."""
    folder = Path(root).resolve()
    if not folder.is_dir():
        return load_config(root)  # its one-line error
    key = (folder, config_fingerprint(folder))
    return _cached(_CONFIGS, key, lambda *_: load_config(root))


def cached_store(settings: Settings) -> Engine:
    """`open_store(settings)`, migrated once per process: a store opened before is reused
    while it is still there (checked again, so a store lost since is still refused)."""
    key = (settings.sqlalchemy_url, settings.data_dir.resolve())
    with _LOCK:
        engine = _ENGINES.get(key)
    if engine is not None and check_store(engine, settings) is False:
        return engine
    engine = open_store(settings)
    if in_memory(settings.sqlalchemy_url):  # each build gets its own, empty, as before
        return engine
    return _remember(_ENGINES, key, engine)
