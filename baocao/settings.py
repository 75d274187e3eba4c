"""One typed Settings object, read from the environment (`BAOCAO_...`) and an optional .env."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The configurations bundled with the clone: the Sơn Tây district of 2022 (the reference
# example) and today's province, Quảng Ngãi (two-level local government since July 2025).
BUNDLED_CONFIGS = (PROJECT_ROOT / "config", PROJECT_ROOT / "examples/quang-ngai-2026/config")


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
    outbox_max_attempts: int = Field(
        20, ge=1, description="A message failed this many times is not tried again (shown failed)"
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
    inbox_settle_seconds: float = Field(
        5, ge=0, description="An inbox file changed more recently than this is still being written"
    )
    claim_lease_seconds: float = Field(
        1800, gt=0, description="How long an ingest run's claim on inbox files holds unrenewed"
    )
    max_read_attempts: int = Field(
        3, ge=1, description="A file whose reader fails this many times is quarantined"
    )
    # ---- the office's mailbox (IMAP), read by the ingest flow ---------------------------
    imap_url: str | None = Field(
        None,
        description="The mailbox units reply to: imaps://USER@HOST[:993]/FOLDER (TLS), "
        "imap://USER@HOST[:143]/FOLDER (STARTTLS), `?mode=insecure` for plain IMAP (a server "
        "on loopback), `?verify=no` for a self-signed certificate; unset: no mailbox is read",
    )
    imap_password: SecretStr | None = Field(
        None,
        description="The mailbox's password; unset: the Prefect Secret block named by "
        "BAOCAO_IMAP_PASSWORD_SECRET. Never in the URL, config or the database",
    )
    imap_password_secret: str = Field(
        "imap-password", description="Prefect Secret block holding the mailbox's password"
    )
    imap_processed_folder: str = Field(
        "baocao-processed",
        description="Folder a message is moved to once what it carried is stored (created "
        "if missing)",
    )
    imap_timeout: float = Field(
        30.0, gt=0, description="Seconds to wait for the IMAP server to connect or answer"
    )
    imap_max_messages: int = Field(
        500, gt=0, description="Messages one ingest run takes; the rest wait for the next run"
    )
    timezone: str = "Asia/Ho_Chi_Minh"
    # ---- security ---------------------------------------------------------------------
    allowed_config_dirs: str = Field(
        "",
        description="Folders (separated by ':') under which a config folder named by a run "
        "parameter or --config is accepted; the bundled ones (config/, "
        "examples/quang-ngai-2026/config/) and BAOCAO_CONFIG_DIR always are",
    )
    prefect_auth: SecretStr | None = Field(
        None,
        description="user:password for the Prefect server's basic auth (the server `baocao "
        "serve` starts, and every client of it); unset: generated once into the data folder",
    )

    # reading received files (baocao.forms.ReadLimits): a real form is ~40 rows x 6 columns and
    # a few kB; a province's bulk CSV can be 10,000 units x 40 rows
    read_max_uncompressed_bytes: int = Field(
        100_000_000, gt=0, description="An .xlsx whose zip inflates to more is refused"
    )
    read_max_zip_entries: int = Field(1_000, gt=0, description="Entries in an .xlsx zip")
    read_max_compression_ratio: int = Field(
        200, gt=0, description="Inflated/compressed ratio of a zip entry over 1 MB"
    )
    read_max_sheets: int = Field(100, gt=0, description="Sheets in a workbook")
    read_max_rows: int = Field(
        1_000_000, gt=0, description="Rows of a sheet (absolute) and records of a CSV"
    )
    read_max_columns: int = Field(200, gt=0, description="Columns of a sheet and fields of a CSV")
    read_max_cells: int = Field(
        2_000_000, gt=0, description="Cells of a sheet, and the area a reader would allocate"
    )
    read_seconds_per_file: float = Field(
        30.0, gt=0, description="Wall-clock seconds a reader process may spend on one file"
    )
    read_memory_mb: int = Field(1_024, ge=128, description="Address space of a reader process")

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
    def allowed_config_roots(self) -> list[Path]:
        """Folders a config folder from a run parameter or --config must be in (resolved)."""
        roots = [*BUNDLED_CONFIGS, self.config_dir]
        roots += [Path(p) for p in self.allowed_config_dirs.split(os.pathsep) if p.strip()]
        return [p.expanduser().resolve() for p in roots]

    @property
    def inbox(self) -> Path:
        return self.inbox_dir or self.data_dir / "inbox"


_HELD: list[dict] = []  # the values `use_settings` holds, innermost last


def get_settings(**overrides) -> Settings:
    """Build Settings now (never at import time): the environment's, then what `use_settings`
    holds, then the explicit `overrides` (None: not given)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    settings = Settings(**given)
    held = {k: v for layer in _HELD for k, v in layer.items() if k not in given}
    return settings.model_copy(update=held) if held else settings


@contextlib.contextmanager
def use_settings(**values) -> Iterator[Settings]:
    """Within: every `get_settings()` in this process (the runtime of each flow run included)
    takes these values over the environment's; None clears a setting (e.g. `database_url`:
    the default SQLite). How the demo hands its data folder, mail server and mailbox to the
    flows it runs, instead of writing os.environ."""
    checked = Settings(**{k: v for k, v in values.items() if v is not None})
    _HELD.append({k: None if v is None else getattr(checked, k) for k, v in values.items()})
    try:
        yield get_settings()
    finally:
        _HELD.pop()
