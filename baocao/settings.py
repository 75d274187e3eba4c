"""One typed Settings object, read from the environment (`BAOCAO_...`) and an optional .env."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BAOCAO_", env_file=".env", extra="ignore")

    config_dir: Path = Field(PROJECT_ROOT / "config", description="Folder with the district's YAML")
    templates_dir: Path = Field(PROJECT_ROOT / "templates", description="Jinja2 templates")
    data_dir: Path = Field(Path("data"), description="SQLite file, archive, outputs")
    database_url: str | None = Field(None, description="Any SQLAlchemy URL; default SQLite")
    inbox_dir: Path | None = Field(None, description="Folder polled for returned forms")
    mail_url: str = Field(
        "mailto://localhost:25?from=baocao@localhost&mode=insecure",
        description="Mail server for `email:` contacts: mailto://[user:pass@]host[:port]"
        "?from=ADDR&mode=insecure|starttls|ssl[&name=...] (also smtp://, smtps://); "
        "${VAR} is read from the environment when sending",
    )
    outbox_lease_seconds: float = Field(
        120.0,
        gt=0,
        description="A delivery run's hold on the messages it claimed; renewed every third of "
        "it while sending, so a claim that outlives it belongs to a run that died",
    )
    outbox_budget_seconds: float = Field(
        1800.0,
        gt=0,
        description="Time a delivery run may spend; what is left stays pending for the next run",
    )
    outbox_page_size: int = Field(500, gt=0, description="Messages claimed at a time")
    smtp_connect_timeout: float = Field(
        10.0, gt=0, description="Seconds to connect to the mail server and get its greeting"
    )
    smtp_timeout: float = Field(
        10.0, gt=0, description="Seconds to wait for each later answer of the mail server"
    )
    smtp_sessions: int = Field(
        2, ge=1, le=32, description="SMTP connections a delivery run keeps open at once"
    )
    max_file_bytes: int = Field(
        20_000_000, description="Received files larger than this are refused"
    )
    timezone: str = "Asia/Ho_Chi_Minh"

    @cached_property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'baocao.sqlite').resolve()}"

    @property
    def archive_dir(self) -> Path:
        return self.data_dir / "archive"

    @property
    def forms_dir(self) -> Path:
        return self.data_dir / "forms"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def inbox(self) -> Path:
        return self.inbox_dir or self.data_dir / "inbox"


def get_settings(**overrides) -> Settings:
    """Build Settings now (never at import time), with optional explicit overrides."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
