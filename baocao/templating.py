"""The one Jinja2 environment: StrictUndefined (a missing figure fails loudly), autoescape
for HTML templates, Vietnamese number and date filters, and sandboxed wherever the text is
not ours: a template from a config folder, and every text from config (a paragraph, a
title) can read the figures it is given and nothing else.

The bundled `templates/` ship with the code, like the Python that renders them, so they run
unsandboxed: the sandbox checks every attribute and call, about 40 % of a message's
rendering, which at ten thousand messages a batch is seconds (issue 10)."""

from __future__ import annotations

import hashlib
import re
import sys
from functools import lru_cache
from pathlib import Path

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    select_autoescape,
)
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


BUNDLED_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


class TrustedEnvironment(Environment):
    """The environment of the bundled templates (our own code): no sandbox. Texts from config
    still go through its sandboxed twin (`render_string`)."""


def _options() -> dict:
    return dict(
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


def _with_filters(env: Environment) -> Environment:
    env.filters.update(
        sources=figure_links,
        so=vnformat.number,
        pct=vnformat.percent,
        ngay=vnformat.date,
        md=md_escape,
    )
    return env


def is_bundled(folder: Path) -> bool:
    """Whether `folder` is the templates/ shipped with baocao (symlinks and `..` resolved)."""
    return Path(folder).resolve() == BUNDLED_TEMPLATES


@lru_cache(maxsize=8)
def make_env(
    templates_dir: Path, fallback: Path | None = None, version: str = ""
) -> BaocaoEnvironment | TrustedEnvironment:
    """Templates from `templates_dir`; one it lacks is taken from `fallback` (the bundled
    templates/, when a config folder overrides only some of them). Sandboxed unless every
    folder is the bundled one.

    With a `version` (`templates_fingerprint` of the folders) the caller asks for a new
    environment when a file changes, so templates are not checked on disk at every use
    (Jinja's auto_reload: a stat per template per message)."""
    folders = [templates_dir] + ([fallback] if fallback and fallback != templates_dir else [])
    loader = ChoiceLoader([FileSystemLoader(str(f)) for f in folders])
    kind = TrustedEnvironment if all(is_bundled(f) for f in folders) else BaocaoEnvironment
    return _with_filters(kind(loader=loader, auto_reload=not version, **_options()))


def templates_fingerprint(*folders: Path | None) -> str:
    """A hash of every file's name and content under the folders: another when one changes."""
    digest = hashlib.blake2b(digest_size=16)
    for folder in filter(None, folders):
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@lru_cache(maxsize=8)
def _sandbox_of(env: Environment) -> BaocaoEnvironment:
    """`env` itself when sandboxed, else a sandboxed twin with the same loader and filters."""
    if isinstance(env, BaocaoEnvironment):
        return env
    return _with_filters(BaocaoEnvironment(loader=env.loader, **_options()))


def render_string(env: Environment, text: str, **context) -> str:
    """Render a text from config/ (a paragraph, a title) with the same filters, always in the
    sandbox: a config folder may come from elsewhere even when the templates are ours."""
    return _sandbox_of(env).from_string(text).render(**context)
