"""The one Jinja2 environment: sandboxed (a template from a config folder can read the
figures it is given and nothing else), StrictUndefined (a missing figure fails loudly),
autoescape for HTML templates, Vietnamese number and date filters."""

from __future__ import annotations

import re
import sys
from functools import lru_cache
from pathlib import Path

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup, escape

from baocao import vnformat
from baocao.document import FIGURE_CODE_END, FIGURE_END, FIGURE_START

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>])")


_FIGURE = re.compile(f"{FIGURE_START}([A-Za-z0-9_]+){FIGURE_CODE_END}(.*?){FIGURE_END}", re.S)
_FIGURE_MARKS = re.compile(f"[{FIGURE_START}{FIGURE_CODE_END}{FIGURE_END}]")


def figure_links(text: str, page: str = "") -> Markup:
    """Escaped HTML of `text` whose marked figures link to `page#<code>` (their sources);
    without a page, or for stray marks, the text alone."""
    html = str(escape(text))
    if page:
        href = escape(page)
        html = _FIGURE.sub(lambda m: f'<a class="figure" href="{href}#{m[1]}">{m[2]}</a>', html)
    return Markup(_FIGURE_MARKS.sub("", _FIGURE.sub(r"\2", html)))


def md_escape(text: str) -> str:
    """Plain text for Markdown: the characters that would start markup are escaped, so a
    `[^99]` or `**` in a unit's text prints as typed."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


class TemplateSecurityError(SecurityError, ValueError):
    """A template tried something the sandbox forbids (`''.__class__`, `cycler.__init__`,
    changing a list...): it is refused, not run; the message names the template and line."""


def _template_at_fault(tb) -> tuple[str, int | None]:
    """The innermost template frame of a traceback: (name, line in the template)."""
    name, line = "", None
    while tb is not None:
        template = tb.tb_frame.f_globals.get("__jinja_template__")
        if template is not None:
            name = template.name or ""  # None for a text from config (from_string)
            line = template.get_corresponding_lineno(tb.tb_lineno)
        tb = tb.tb_next
    return name, line


class BaocaoEnvironment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox whose refusals name the template instead of a bare
    SecurityError deep in a traceback."""

    def handle_exception(self, source: str | None = None):
        exc = sys.exc_info()[1]
        if isinstance(exc, SecurityError) and not isinstance(exc, TemplateSecurityError):
            name, line = _template_at_fault(exc.__traceback__)
            where = f"mẫu {name}" if name else "một đoạn văn bản mẫu trong cấu hình"
            at = f", dòng {line}" if line else ""
            raise TemplateSecurityError(
                f"{where}{at}: thao tác bị chặn vì không an toàn ({exc}); mẫu chỉ được dùng "
                f"số liệu và bộ lọc được cung cấp / template {name or '(config text)'} "
                "tried an unsafe operation and was not run"
            ) from None
        return super().handle_exception(source)


@lru_cache(maxsize=8)
def make_env(templates_dir: Path, fallback: Path | None = None) -> BaocaoEnvironment:
    """Templates from `templates_dir`; one it lacks is taken from `fallback` (the bundled
    templates/, when a config folder overrides only some of them)."""
    folders = [templates_dir] + ([fallback] if fallback and fallback != templates_dir else [])
    env = BaocaoEnvironment(
        loader=ChoiceLoader([FileSystemLoader(str(f)) for f in folders]),
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
    env.filters.update(
        sources=figure_links,
        so=vnformat.number,
        pct=vnformat.percent,
        ngay=vnformat.date,
        md=md_escape,
    )
    return env


def render_string(env: BaocaoEnvironment, text: str, **context) -> str:
    """Render a text from config/ (a paragraph, a title) in the same environment."""
    return env.from_string(text).render(**context)
