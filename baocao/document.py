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


_INLINE = re.compile(
    r"\*\*(?P<bold>.+?)\*\*|\*(?P<italic>.+?)\*|\[\^(?P<fn>\d+)\]|<(?P<link>https?://[^>\s]+)>"
)


def parse_inline(text: str) -> tuple[Run, ...]:
    """Split `text` into runs: `**bold**`, `*italic*`, `[^1]` footnotes, `<https://...>` links."""
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
    return tuple(runs)
