"""Write a `Document` as a Word (.docx) file laid out per Decree 30/2020/NĐ-CP, Phụ lục I.

Layout of an administrative document (Nghị định 30/2020/NĐ-CP về công tác văn thư,
Phụ lục I "Thể thức, kỹ thuật trình bày văn bản hành chính"):

* A4 page, margins and body font from `doc.layout` (Times New Roman, 13-14 pt);
  page numbers centred in the top margin, not shown on the first page.
* Header: a borderless two-column table. Left: the issuing body (uppercase, last line
  bold) with a short rule under it, then the number "Số: .../BC-...". Right: the
  national motto (uppercase bold 13 pt, then bold 14 pt) with a rule as long as the
  second line, then place and date in italic.
* Document type ("BÁO CÁO") and title, bold and centred, with a short rule under them.
* Body: justified paragraphs with a first-line indent; footnote references become real
  Word footnotes (``/word/footnotes.xml``), which python-docx has no API for, so the part
  is built here with `docx.opc`.
* Closing: a borderless two-column table, "Nơi nhận:" and the recipients on the left,
  the signer's authority, title and name on the right.

Everything except the fixed label "Nơi nhận:" comes from the `Document`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path

import docx
from docx.document import Document as DocxDocument
from docx.enum.section import WD_ORIENT
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.opc.oxml import serialize_part_xml
from docx.opc.packuri import PackURI
from docx.opc.part import Part, XmlPart
from docx.oxml import OxmlElement, parse_xml
from docx.oxml.ns import nsdecls, qn
from docx.oxml.xmlchemy import BaseOxmlElement
from docx.shared import Mm, Pt
from docx.table import Table, _Cell
from docx.text.paragraph import Paragraph

from baocao.document import Block, Document, Layout, Run

__all__ = ["write_docx"]

RECIPIENTS_LABEL = "Nơi nhận:"
LANGUAGE = "vi-VN"

FOOTNOTES_CONTENT_TYPE = (
    "application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml"
)
FOOTNOTES_PARTNAME = "/word/footnotes.xml"
FOOTNOTE_TEXT_STYLE = ("footnote text", "FootnoteText")  # Word's built-in name and id
FOOTNOTE_REFERENCE_STYLE = ("footnote reference", "FootnoteReference")

# Sizes fixed by Phụ lục I (points).
HEADER_SIZE_PT = 13  # issuing body, number, first motto line
MOTTO_SIZE_PT = 14  # second motto line, place and date
TITLE_SIZE_PT = 14  # document type and title
RECIPIENTS_LABEL_SIZE_PT = 12
RECIPIENTS_SIZE_PT = 11
SIGNER_SIZE_PT = 14
FOOTNOTE_SIZE_PT = 12

HEADER_SPLIT = (0.35, 0.65)  # share of the text width: issuing body | motto
CLOSING_SPLIT = (0.45, 0.55)  # recipients | signer
SIGNATURE_LINES = 4  # empty lines left for signature and seal
CELL_PADDING_MM = 1.905  # Word's default left/right cell margin (108 twips)
MM_PER_PT = 25.4 / 72

# Schema order: the children of w:pPr that must follow w:pBdr, of w:tblPr after
# w:tblBorders, of w:trPr after w:cantSplit, of w:rPr after w:lang, of w:settings after
# w:footnotePr (only those likely to be present).
_PBDR_SUCCESSORS = (
    "w:shd", "w:tabs", "w:suppressAutoHyphens", "w:kinsoku", "w:wordWrap",
    "w:overflowPunct", "w:topLinePunct", "w:autoSpaceDE", "w:autoSpaceDN", "w:bidi",
    "w:adjustRightInd", "w:snapToGrid", "w:spacing", "w:ind", "w:contextualSpacing",
    "w:mirrorIndents", "w:suppressOverlap", "w:jc", "w:textDirection", "w:textAlignment",
    "w:textboxTightWrap", "w:outlineLvl", "w:divId", "w:cnfStyle", "w:rPr", "w:sectPr",
    "w:pPrChange",
)  # fmt: skip
_TBLBORDERS_SUCCESSORS = (
    "w:shd", "w:tblLayout", "w:tblCellMar", "w:tblLook", "w:tblCaption",
    "w:tblDescription", "w:tblPrChange",
)  # fmt: skip
_CANTSPLIT_SUCCESSORS = (
    "w:trHeight", "w:tblHeader", "w:tblCellSpacing", "w:jc", "w:hidden", "w:ins",
    "w:del", "w:trPrChange",
)  # fmt: skip
_LANG_SUCCESSORS = ("w:eastAsianLayout", "w:specVanish", "w:oMath")
_FOOTNOTEPR_SUCCESSORS = (
    "w:endnotePr", "w:compat", "w:docVars", "w:rsids", "m:mathPr", "w:attachedSchema",
    "w:themeFontLang", "w:clrSchemeMapping", "w:doNotIncludeSubdocsInStats",
    "w:doNotAutoCompressPictures", "w:forceUpgrade", "w:captions", "w:shapeDefaults",
    "w:decimalSymbol", "w:listSeparator",
)  # fmt: skip

_SEPARATORS_XML = (
    '<w:footnote w:type="separator" w:id="-1"><w:p><w:pPr>'
    '<w:spacing w:after="0" w:line="240" w:lineRule="auto"/></w:pPr>'
    "<w:r><w:separator/></w:r></w:p></w:footnote>"
    '<w:footnote w:type="continuationSeparator" w:id="0"><w:p><w:pPr>'
    '<w:spacing w:after="0" w:line="240" w:lineRule="auto"/></w:pPr>'
    "<w:r><w:continuationSeparator/></w:r></w:p></w:footnote>"
)


def _set_properties(document, doc: Document, author: str, date: dt.date | None) -> None:
    props = document.core_properties
    props.title = doc.title
    props.subject = doc.title
    props.language = LANGUAGE
    props.author = author
    props.last_modified_by = author
    props.comments = ""
    props.keywords = ""
    props.category = doc.doc_type
    props.revision = 1
    moment = dt.datetime.combine(date or dt.date.today(), dt.time(8, 0))
    props.created = moment
    props.modified = moment


def write_docx(doc: Document, path: Path, *, author: str = "", date: dt.date | None = None) -> Path:
    """Write `doc` to `path` as a .docx laid out per Decree 30/2020/NĐ-CP; return `path`.
    Its properties name `author` (the issuing body) and carry the report's `date`, not
    python-docx's template's ("python-docx", 2013)."""
    path = Path(path)
    layout = doc.layout
    document = docx.Document()
    text_width_mm = layout.page_width_mm - layout.margin_left_mm - layout.margin_right_mm

    _setup_page(document, layout)
    _setup_styles(document, layout)
    _set_properties(document, doc, author, date)

    _add_header(document, doc, text_width_mm)
    _add_title(document, doc, text_width_mm)
    footnotes = _Footnotes(document, doc.footnotes)
    for block in doc.blocks:
        _add_block(document, block, layout, footnotes)
    _add_closing(document, doc, text_width_mm)
    footnotes.flush()

    path.parent.mkdir(parents=True, exist_ok=True)
    document.save(str(path))
    return path


# -- page and styles -------------------------------------------------------------------


def _setup_page(document: DocxDocument, layout: Layout) -> None:
    section = document.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width = Mm(layout.page_width_mm)
    section.page_height = Mm(layout.page_height_mm)
    section.top_margin = Mm(layout.margin_top_mm)
    section.bottom_margin = Mm(layout.margin_bottom_mm)
    section.left_margin = Mm(layout.margin_left_mm)
    section.right_margin = Mm(layout.margin_right_mm)
    _add_page_numbers(document, layout)


def _add_page_numbers(document: DocxDocument, layout: Layout) -> None:
    """Arabic page number centred in the top margin, hidden on the first page."""
    section = document.sections[0]
    section.different_first_page_header_footer = True
    section.header_distance = Mm(layout.margin_top_mm / 2)
    section.first_page_header.is_linked_to_previous = False  # an empty first-page header
    paragraph = section.header.paragraphs[0]
    paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    for kind, value in (("begin", None), ("instr", " PAGE "), ("separate", None), ("end", None)):
        run = paragraph.add_run()
        run.font.size = Pt(layout.font_size_pt)
        if kind == "instr":
            element = OxmlElement("w:instrText")
            element.set(qn("xml:space"), "preserve")
            element.text = value
        else:
            element = OxmlElement("w:fldChar")
            element.set(qn("w:fldCharType"), kind)
        run._r.append(element)


def _setup_styles(document: DocxDocument, layout: Layout) -> None:
    """Normal = body font for every script, single spacing, Vietnamese; footnote styles."""
    styles = document.styles
    defaults_rpr = styles.element.find(
        qn("w:docDefaults") + "/" + qn("w:rPrDefault") + "/" + qn("w:rPr")
    )
    if defaults_rpr is not None:
        _set_font_names(defaults_rpr, layout.font_name)
        _set_lang(defaults_rpr, LANGUAGE)

    normal = styles["Normal"]
    _set_font(normal, layout.font_name, layout.font_size_pt)
    _set_lang(normal.element.get_or_add_rPr(), LANGUAGE)
    normal.paragraph_format.space_before = Pt(0)
    normal.paragraph_format.space_after = Pt(0)
    normal.paragraph_format.line_spacing = 1.0
    normal.paragraph_format.widow_control = True

    text_style = _get_or_add_style(document, FOOTNOTE_TEXT_STYLE, WD_STYLE_TYPE.PARAGRAPH)
    text_style.base_style = normal
    _set_font(text_style, layout.font_name, FOOTNOTE_SIZE_PT)
    text_style.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY

    ref_style = _get_or_add_style(document, FOOTNOTE_REFERENCE_STYLE, WD_STYLE_TYPE.CHARACTER)
    ref_style.font.superscript = True


def _get_or_add_style(document: DocxDocument, name_and_id: tuple[str, str], style_type):
    name, style_id = name_and_id
    for style in document.styles:
        if style.style_id == style_id or style.name == name:
            return style
    style = document.styles.add_style(name, style_type)
    style.style_id = style_id
    style.element.attrib.pop(qn("w:customStyle"), None)  # Word's own built-in style
    return style


def _set_font(style, name: str, size_pt: float) -> None:
    """Set a style's font name (Latin, East Asian and complex script) and size."""
    style.font.size = Pt(size_pt)
    style.font.name = name
    _set_font_names(style.element.get_or_add_rPr(), name)


def _set_font_names(rpr: BaseOxmlElement, name: str) -> None:
    """Name the font for all scripts on `rpr` and drop theme fonts that would override it."""
    rfonts = rpr.get_or_add_rFonts()
    for attr in ("asciiTheme", "hAnsiTheme", "eastAsiaTheme", "cstheme"):
        rfonts.attrib.pop(qn(f"w:{attr}"), None)
    for attr in ("ascii", "hAnsi", "eastAsia", "cs"):
        rfonts.set(qn(f"w:{attr}"), name)


def _set_lang(rpr: BaseOxmlElement, language: str) -> None:
    lang = rpr.find(qn("w:lang"))
    if lang is None:
        lang = OxmlElement("w:lang")
        rpr.insert_element_before(lang, *_LANG_SUCCESSORS)
    lang.set(qn("w:val"), language)


# -- paragraphs and runs ---------------------------------------------------------------


def _format(
    paragraph: Paragraph,
    align: WD_ALIGN_PARAGRAPH,
    *,
    first_line_mm: float | None = None,
    line_spacing: float = 1.0,
    space_before_pt: float = 0,
    space_after_pt: float = 0,
) -> Paragraph:
    fmt = paragraph.paragraph_format
    fmt.alignment = align
    fmt.line_spacing = line_spacing
    fmt.space_before = Pt(space_before_pt)
    fmt.space_after = Pt(space_after_pt)
    if first_line_mm is not None:
        fmt.first_line_indent = Mm(first_line_mm)
    return paragraph


def _add_text(
    paragraph: Paragraph,
    text: str,
    size_pt: float,
    *,
    bold: bool = False,
    italic: bool = False,
) -> Paragraph:
    run = paragraph.add_run(text)
    run.font.size = Pt(size_pt)
    if bold:
        run.bold = True
    if italic:
        run.italic = True
    return paragraph


def _add_runs(
    paragraph: Paragraph,
    runs: Iterable[Run],
    size_pt: float,
    *,
    bold: bool = False,
    italic: bool = False,
    footnotes: _Footnotes | None = None,
) -> None:
    """Append `runs`; `bold`/`italic` apply on top of each run's own formatting."""
    for run in runs:
        if run.footnote is not None:
            if footnotes is None:
                raise ValueError(f"footnote reference [^{run.footnote}] not allowed here")
            footnotes.reference(paragraph, run.footnote, size_pt)
        elif run.text:
            _add_text(
                paragraph, run.text, size_pt, bold=bold or run.bold, italic=italic or run.italic
            )


def _next_paragraph(container: DocxDocument | _Cell) -> Paragraph:
    """A new paragraph, or a table cell's initial empty one if it is still unused."""
    if isinstance(container, _Cell):
        paragraphs = container.paragraphs
        if len(paragraphs) == 1 and not paragraphs[0].runs and paragraphs[0]._p.pPr is None:
            return paragraphs[0]
    return container.add_paragraph()


def _add_rule(container: DocxDocument | _Cell, length_mm: float, available_mm: float) -> Paragraph:
    """A short centred horizontal line: the bottom border of an empty, 1 pt high paragraph."""
    paragraph = _next_paragraph(container)
    fmt = paragraph.paragraph_format
    fmt.alignment = WD_ALIGN_PARAGRAPH.CENTER
    indent = max((available_mm - length_mm) / 2, 0)
    fmt.left_indent = fmt.right_indent = Mm(indent)
    fmt.line_spacing = Pt(1)
    fmt.space_before = fmt.space_after = Pt(0)
    border = parse_xml(
        f"<w:pBdr {nsdecls('w')}>"
        '<w:bottom w:val="single" w:sz="6" w:space="1" w:color="auto"/></w:pBdr>'
    )
    paragraph._p.get_or_add_pPr().insert_element_before(border, *_PBDR_SUCCESSORS)
    return paragraph


def _text_width_mm(text: str, size_pt: float) -> float:
    """Rough printed width of `text` in Times New Roman; good enough to size a rule."""
    ems = sum(0.25 if c.isspace() else 0.7 if c.isupper() else 0.5 for c in text)
    return ems * size_pt * MM_PER_PT


# -- tables ----------------------------------------------------------------------------


def _borderless_table(document: DocxDocument, rows: int, widths_mm: tuple[float, ...]) -> Table:
    table = document.add_table(rows=rows, cols=len(widths_mm))
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = False
    edges = ("top", "left", "bottom", "right", "insideH", "insideV")
    borders = parse_xml(
        f"<w:tblBorders {nsdecls('w')}>"
        + "".join(f'<w:{edge} w:val="nil"/>' for edge in edges)
        + "</w:tblBorders>"
    )
    table._tbl.tblPr.insert_element_before(borders, *_TBLBORDERS_SUCCESSORS)
    for column, width in zip(table.columns, widths_mm, strict=True):
        column.width = Mm(width)
        for cell in column.cells:
            cell.width = Mm(width)
    return table


def _keep_row_together(table: Table) -> None:
    for row in table.rows:
        tr_pr = row._tr.get_or_add_trPr()
        tr_pr.insert_element_before(OxmlElement("w:cantSplit"), *_CANTSPLIT_SUCCESSORS)


def _centred_line(cell: _Cell, text: str, size_pt: float, **style) -> Paragraph:
    paragraph = _format(_next_paragraph(cell), WD_ALIGN_PARAGRAPH.CENTER)
    return _add_text(paragraph, text, size_pt, **style)


# -- sections of the report ------------------------------------------------------------


def _add_header(document: DocxDocument, doc: Document, text_width_mm: float) -> None:
    """Issuing body | motto, then number | place and date, on aligned rows."""
    widths = tuple(share * text_width_mm for share in HEADER_SPLIT)
    table = _borderless_table(document, rows=2, widths_mm=widths)
    (body_cell, motto_cell), (number_cell, date_cell) = (row.cells for row in table.rows)

    for i, line in enumerate(doc.body_lines):
        last = i == len(doc.body_lines) - 1
        _centred_line(body_cell, line.upper(), HEADER_SIZE_PT, bold=last)
    if doc.body_lines:
        rule = 0.4 * _text_width_mm(doc.body_lines[-1].upper(), HEADER_SIZE_PT)
        _add_rule(body_cell, rule, widths[0] - 2 * CELL_PADDING_MM)

    national, motto = doc.motto
    _centred_line(motto_cell, national.upper(), HEADER_SIZE_PT, bold=True)
    _centred_line(motto_cell, motto, MOTTO_SIZE_PT, bold=True)
    _add_rule(motto_cell, _text_width_mm(motto, MOTTO_SIZE_PT), widths[1] - 2 * CELL_PADDING_MM)

    _centred_line(number_cell, doc.number, HEADER_SIZE_PT).paragraph_format.space_before = Pt(6)
    date = _centred_line(date_cell, doc.place_date, MOTTO_SIZE_PT, italic=True)
    date.paragraph_format.space_before = Pt(6)


def _add_title(document: DocxDocument, doc: Document, text_width_mm: float) -> None:
    kind = _format(document.add_paragraph(), WD_ALIGN_PARAGRAPH.CENTER, space_before_pt=18)
    _add_text(kind, doc.doc_type.upper(), TITLE_SIZE_PT, bold=True)
    title = _format(document.add_paragraph(), WD_ALIGN_PARAGRAPH.CENTER)
    _add_text(title, doc.title, TITLE_SIZE_PT, bold=True)
    longest = max(doc.title.splitlines() or [""], key=len)
    rule = 0.4 * min(_text_width_mm(longest, TITLE_SIZE_PT), text_width_mm)
    _add_rule(document, rule, text_width_mm).paragraph_format.space_after = Pt(12)


def _add_block(document: DocxDocument, block: Block, layout: Layout, footnotes: _Footnotes) -> None:
    paragraph = document.add_paragraph()
    spacing = {"line_spacing": layout.line_spacing, "space_after_pt": layout.space_after_pt}
    if block.kind == "note":
        _format(paragraph, WD_ALIGN_PARAGRAPH.CENTER, **spacing)
    else:
        _format(
            paragraph,
            WD_ALIGN_PARAGRAPH.JUSTIFY,
            first_line_mm=layout.first_line_indent_mm,
            **spacing,
        )
    heading = block.kind in ("heading1", "heading2")
    if heading:
        paragraph.paragraph_format.keep_with_next = True
    _add_runs(
        paragraph,
        block.runs,
        layout.font_size_pt,
        bold=heading,
        italic=block.kind == "note",
        footnotes=footnotes,
    )


def _add_closing(document: DocxDocument, doc: Document, text_width_mm: float) -> None:
    """Recipients on the left; authority, title, signature space and name on the right."""
    widths = tuple(share * text_width_mm for share in CLOSING_SPLIT)
    table = _borderless_table(document, rows=1, widths_mm=widths)
    _keep_row_together(table)
    recipients_cell, signer_cell = table.rows[0].cells

    label = _format(_next_paragraph(recipients_cell), WD_ALIGN_PARAGRAPH.LEFT, space_before_pt=6)
    _add_text(label, RECIPIENTS_LABEL, RECIPIENTS_LABEL_SIZE_PT, bold=True, italic=True)
    for line in doc.recipients:
        paragraph = _format(recipients_cell.add_paragraph(), WD_ALIGN_PARAGRAPH.LEFT)
        _add_text(paragraph, f"- {line}", RECIPIENTS_SIZE_PT)

    signer = doc.signer
    first = _centred_line(signer_cell, signer.authority, SIGNER_SIZE_PT, bold=True)
    first.paragraph_format.space_before = Pt(6)
    _centred_line(signer_cell, signer.title, SIGNER_SIZE_PT, bold=True)
    for _ in range(SIGNATURE_LINES):
        _centred_line(signer_cell, "", SIGNER_SIZE_PT)
    _centred_line(signer_cell, signer.name, SIGNER_SIZE_PT, bold=True)


# -- footnotes -------------------------------------------------------------------------


class _Footnotes:
    """The /word/footnotes.xml part, reused from the template or created on first use.

    python-docx has no footnote API: the part is an `XmlPart` related to the document part
    by RT.FOOTNOTES; the package writer adds its content-type override on save.
    """

    def __init__(self, document: DocxDocument, texts: Mapping[int, tuple[Run, ...]]):
        self._document = document
        self._texts = texts
        self._part: Part | None = None
        self._element: BaseOxmlElement | None = None

    def reference(self, paragraph: Paragraph, number: int, size_pt: float) -> None:
        """Add a footnote reference run to `paragraph` and the footnote text to the part."""
        if number not in self._texts:
            raise KeyError(f"footnote [^{number}] is referenced but has no text")
        run = paragraph.add_run()
        run.style = FOOTNOTE_REFERENCE_STYLE[0]
        run.font.superscript = True
        run.font.size = Pt(size_pt)
        ref = OxmlElement("w:footnoteReference")
        ref.set(qn("w:id"), str(number))
        run._r.append(ref)
        self._add_footnote(number, self._texts[number])

    def flush(self) -> None:
        """Write the XML back if the template's footnotes part was a plain (blob) part."""
        if self._part is not None and not isinstance(self._part, XmlPart):
            self._part._blob = serialize_part_xml(self._element)

    def _add_footnote(self, number: int, runs: tuple[Run, ...]) -> None:
        footnotes = self._footnotes_element()
        for old in footnotes.findall(qn("w:footnote")):
            if old.get(qn("w:id")) == str(number):
                footnotes.remove(old)
        footnote = parse_xml(
            f'<w:footnote {nsdecls("w")} w:id="{number}"><w:p><w:pPr>'
            f'<w:pStyle w:val="{FOOTNOTE_TEXT_STYLE[1]}"/><w:jc w:val="both"/></w:pPr>'
            f'<w:r><w:rPr><w:rStyle w:val="{FOOTNOTE_REFERENCE_STYLE[1]}"/>'
            '<w:vertAlign w:val="superscript"/></w:rPr><w:footnoteRef/></w:r>'
            '<w:r><w:t xml:space="preserve"> </w:t></w:r></w:p></w:footnote>'
        )
        footnotes.append(footnote)
        _add_runs(Paragraph(footnote[0], None), runs, FOOTNOTE_SIZE_PT)

    def _footnotes_element(self) -> BaseOxmlElement:
        if self._element is None:
            document_part = self._document.part
            try:
                self._part = document_part.part_related_by(RT.FOOTNOTES)
            except KeyError:
                self._part = self._new_part()
                document_part.relate_to(self._part, RT.FOOTNOTES)
                _declare_separators(self._document)
            if isinstance(self._part, XmlPart):
                self._element = self._part.element
            else:
                self._element = parse_xml(self._part.blob)
        return self._element

    def _new_part(self) -> XmlPart:
        element = parse_xml(f"<w:footnotes {nsdecls('w', 'r')}>{_SEPARATORS_XML}</w:footnotes>")
        package = self._document.part.package
        return XmlPart(PackURI(FOOTNOTES_PARTNAME), FOOTNOTES_CONTENT_TYPE, element, package)


def _declare_separators(document: DocxDocument) -> None:
    """Settings list the separator footnotes (ids -1 and 0), as Word itself writes them."""
    settings = document.settings.element
    if settings.find(qn("w:footnotePr")) is not None:
        return
    footnote_pr = parse_xml(
        f'<w:footnotePr {nsdecls("w")}><w:footnote w:id="-1"/><w:footnote w:id="0"/></w:footnotePr>'
    )
    settings.insert_element_before(footnote_pr, *_FOOTNOTEPR_SUCCESSORS)
