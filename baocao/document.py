"""The rendered report as plain data: one model, three writers (Markdown, HTML, .docx).

`tasks/render.py` builds a `Document` from the report definition and the consolidated
figures; the writers only lay it out. Inline markup inside paragraph texts is tiny and
parsed once by `parse_inline`: `*italic*`, `**bold**` and `[^N]` for a footnote reference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

BlockKind = Literal["heading1", "heading2", "paragraph", "bullet", "subbullet", "note"]


@dataclass(frozen=True)
class Run:
    """A stretch of text with one formatting; `footnote` marks a reference (text is empty)."""

    text: str = ""
    italic: bool = False
    bold: bool = False
    footnote: int | None = None
    link: str | None = None  # the text is this URL


@dataclass(frozen=True)
class Block:
    """A heading or paragraph of the body.

    heading1: "I. CÔNG TÁC CHỈ ĐẠO ĐIỀU HÀNH"; heading2: "1. Cải cách thể chế";
    paragraph: plain body text; bullet: a "- ..." item; subbullet: a "+ ..." item;
    note: a centred italic line such as "(Có phụ lục 01, 02 kèm theo)".
    """

    kind: BlockKind
    runs: tuple[Run, ...]

    @property
    def text(self) -> str:
        return "".join(r.text for r in self.runs)


@dataclass(frozen=True)
class Signer:
    authority: str  # "TM. ỦY BAN NHÂN DÂN"
    title: str  # "CHỦ TỊCH"
    name: str  # "Nguyễn Ngọc Trân"


@dataclass(frozen=True)
class Layout:
    """Decree 30/2020/NĐ-CP page rules, from the report definition (millimetres, points)."""

    page_width_mm: float = 210
    page_height_mm: float = 297
    margin_top_mm: float = 20
    margin_bottom_mm: float = 20
    margin_left_mm: float = 30
    margin_right_mm: float = 15
    font_name: str = "Times New Roman"
    font_size_pt: float = 14
    first_line_indent_mm: float = 12.7
    line_spacing: float = 1.15
    space_after_pt: float = 6


@dataclass(frozen=True)
class Document:
    body_lines: tuple[str, ...]  # issuing body: ("ỦY BAN NHÂN DÂN", "HUYỆN SƠN TÂY")
    number: str  # "Số:      /BC-UBND"
    motto: tuple[str, str]  # ("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc")
    place_date: str  # "Sơn Tây, ngày 05 tháng 4 năm 2022"
    doc_type: str  # "BÁO CÁO"
    title: str  # "Kết quả thực hiện công tác cải cách hành chính Quý I/2022 ..."
    blocks: tuple[Block, ...]
    footnotes: dict[int, tuple[Run, ...]]  # number -> runs
    recipients: tuple[str, ...]  # Nơi nhận lines, e.g. "Sở Nội vụ;"
    signer: Signer
    layout: Layout = field(default_factory=Layout)


# A unit's own words (a text it typed on its form) travel between these two private-use
# characters from the context into the paragraph, so that no markup in them is ever read:
# `[^99]`, `**`, `<https://...>` typed by a unit print as typed.
VERBATIM_START, VERBATIM_END = "\ue000", "\ue001"
_VERBATIM = re.compile(f"{VERBATIM_START}(.*?){VERBATIM_END}", re.S)


def verbatim(text: str) -> str:
    """Mark a unit's text as plain: it is printed as typed, never read as markup."""
    clean = text.replace(VERBATIM_START, "").replace(VERBATIM_END, "")
    return f"{VERBATIM_START}{clean}{VERBATIM_END}"


def plain(text: str) -> str:
    """The text without the verbatim marks (for titles and headings, which have no markup)."""
    return text.replace(VERBATIM_START, "").replace(VERBATIM_END, "")


# In the office's HTML each printed figure is a link to where it comes from: the figure
# travels from the context into the runs between these marks, with its code
# (`\ue002tthc_tiep_nhan\ue0031.250\ue004`); the HTML template turns them into links
# (`templating.figure_links`). Only the office's copy is built with them.
FIGURE_START, FIGURE_CODE_END, FIGURE_END = "\ue002", "\ue003", "\ue004"


def mark_figure(code: str, text: str) -> str:
    """`text` marked as the printed figure `code`."""
    return f"{FIGURE_START}{code}{FIGURE_CODE_END}{text}{FIGURE_END}"


_INLINE = re.compile(
    r"\*\*(?P<bold>.+?)\*\*|\*(?P<italic>.+?)\*|\[\^(?P<fn>\d+)\]|<(?P<link>https?://[^>\s]+)>"
)


def parse_inline(text: str) -> tuple[Run, ...]:
    """Split `text` into runs: `**bold**`, `*italic*`, `[^1]` footnotes, `<https://...>` links.

    A unit's verbatim text takes part in the markup around it (the definition may print it
    in italics) but none inside it is read: it stands in as a numbered placeholder while the
    markup is parsed, and is put back into the runs afterwards."""
    pieces: list[str] = []

    def hold(m: re.Match) -> str:
        pieces.append(m.group(1))
        return f"{VERBATIM_START}{len(pieces) - 1}{VERBATIM_END}"

    held = _VERBATIM.sub(hold, text)
    runs = _parse_markup(held)
    if not pieces:
        return tuple(runs)
    back = re.compile(f"{VERBATIM_START}(\\d+){VERBATIM_END}")
    return tuple(
        Run(
            back.sub(lambda m: pieces[int(m.group(1))], r.text),
            r.italic,
            r.bold,
            r.footnote,
            r.link,
        )
        for r in runs
    )


def _parse_markup(text: str) -> list[Run]:
    runs: list[Run] = []
    pos = 0
    for m in _INLINE.finditer(text):
        if m.start() > pos:
            runs.append(Run(text[pos : m.start()]))
        if m.group("bold") is not None:
            runs.append(Run(m.group("bold"), bold=True))
        elif m.group("italic") is not None:
            runs.append(Run(m.group("italic"), italic=True))
        elif m.group("link") is not None:
            runs.append(Run(m.group("link"), link=m.group("link")))
        else:
            runs.append(Run(footnote=int(m.group("fn"))))
        pos = m.end()
    if pos < len(text):
        runs.append(Run(text[pos:]))
    return runs
