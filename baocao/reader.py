"""Reading received files (provisional in-process version; replaced by the isolated reader)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from baocao.forms import FormError, ParsedFile, read_file


@dataclass(frozen=True)
class ReadLimits:
    seconds: float = 30

    @classmethod
    def from_settings(cls, settings) -> ReadLimits:
        return cls()


@dataclass
class ReadOutcome:
    path: Path
    parsed: ParsedFile | None
    error: str = ""
    crashed: bool = False


def read_isolated(paths: list[Path], limits: ReadLimits, workers: int = 2) -> list[ReadOutcome]:
    out = []
    for p in paths:
        try:
            out.append(ReadOutcome(p, read_file(p)))
        except FormError as exc:
            out.append(ReadOutcome(p, None, str(exc)))
    return out
