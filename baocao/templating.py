"""The one Jinja2 Environment: StrictUndefined (a missing figure fails loudly), autoescape
for HTML templates, Vietnamese number and date filters."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from baocao import vnformat

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>])")


def md_escape(text: str) -> str:
    """Plain text for Markdown: the characters that would start markup are escaped, so a
    `[^99]` or `**` in a unit's text prints as typed."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


@lru_cache(maxsize=8)
def make_env(templates_dir: Path) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(templates_dir)),
        undefined=StrictUndefined,
        # Templates are named report.html.j2: select_autoescape matches the name's ending,
        # so "html" alone would leave them unescaped.
        autoescape=select_autoescape(
            enabled_extensions=("html", "htm", "html.j2", "htm.j2"), default_for_string=False
        ),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(so=vnformat.number, pct=vnformat.percent, ngay=vnformat.date, md=md_escape)
    return env


def render_string(env: Environment, text: str, **context) -> str:
    """Render a text from config/ (a paragraph, a title) in the same environment."""
    return env.from_string(text).render(**context)
