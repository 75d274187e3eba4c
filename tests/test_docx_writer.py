"""The .docx writer: reopen the written file and check the Decree 30/2020/NĐ-CP layout."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import docx
import pytest
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.oxml.ns import qn
from docx.shared import Pt
from lxml import etree

from baocao.document import Block, Document, Layout, Signer, parse_inline
from baocao.docx_writer import write_docx

W = {"w": "http://schemas.openxmlformats.org/wordprocessingml/2006/main"}
FOOTNOTES_CT = "application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml"

FOOTNOTE_1 = "Kế hoạch số 15/KH-UBND ngày 20/01/2022 của UBND huyện Sơn Tây."
FOOTNOTE_2 = "Quyết định số 120/QĐ-UBND ngày 10/02/2022 của Chủ tịch UBND huyện."


def _block(kind: str, text: str) -> Block:
    return Block(kind, parse_inline(text))


def sample_document(**changes) -> Document:
    fields = dict(
        body_lines=("ỦY BAN NHÂN DÂN", "HUYỆN SƠN TÂY"),
        number="Số:      /BC-UBND",
        motto=("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc"),
        place_date="Sơn Tây, ngày 05 tháng 4 năm 2022",
        doc_type="BÁO CÁO",
        title="Kết quả thực hiện công tác cải cách hành chính Quý I/2022",
        blocks=(
            _block("heading1", "I. CÔNG TÁC CHỈ ĐẠO, ĐIỀU HÀNH CẢI CÁCH HÀNH CHÍNH"),
            _block(
                "paragraph",
                "Thực hiện Kế hoạch cải cách hành chính năm 2022 của UBND huyện Sơn Tây[^1];"
                " trên địa bàn huyện đã triển khai đồng bộ các nhiệm vụ cải cách hành chính.",
            ),
            _block(
                "bullet",
                "- Ban hành Quyết định kiện toàn Bộ phận Một cửa huyện[^2] và 05 văn bản"
                " chỉ đạo, đôn đốc thực hiện.",
            ),
            _block("heading2", "1. Cải cách thủ tục hành chính"),
            _block(
                "paragraph",
                "Trong Quý I/2022, Bộ phận Một cửa huyện đã tiếp nhận 1.245 hồ sơ trực tuyến"
                " (*trong đó có 130 hồ sơ*) mức độ 3, 4; đã giải quyết đúng hạn 1.230 hồ sơ.",
            ),
            _block("subbullet", "+ Số hồ sơ giải quyết quá hạn: 0 hồ sơ."),
            _block("note", "(Có phụ lục 01 kèm theo)"),
        ),
        footnotes={1: parse_inline(FOOTNOTE_1), 2: parse_inline(FOOTNOTE_2)},
        recipients=("Sở Nội vụ;", "TT Huyện ủy;", "Lưu: VT, HSCCHC."),
        signer=Signer("TM. ỦY BAN NHÂN DÂN", "CHỦ TỊCH", "Nguyễn Ngọc Trân"),
    )
    fields.update(changes)
    return Document(**fields)


@pytest.fixture(scope="module")
def report() -> Document:
    return sample_document()


@pytest.fixture(scope="module")
def written(report: Document, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("docx") / "bao-cao.docx"
    assert write_docx(report, path) == path
    return path


@pytest.fixture(scope="module")
def reopened(written: Path):
    return docx.Document(str(written))


def _paragraph(reopened, text: str):
    matches = [p for p in reopened.paragraphs if p.text == text]
    assert len(matches) == 1, f"expected one body paragraph {text!r}, found {len(matches)}"
    return matches[0]


def _cell_paragraph(cell, text: str):
    matches = [p for p in cell.paragraphs if p.text == text]
    assert matches, f"{text!r} not in cell: {[p.text for p in cell.paragraphs]}"
    return matches[0]


def _text_runs(paragraph):
    runs = [r for r in paragraph.runs if r.text]
    assert runs
    return runs


def test_page_is_a4_with_decree_margins(reopened) -> None:
    section = reopened.sections[0]
    assert section.page_width.mm == pytest.approx(210, abs=0.5)
    assert section.page_height.mm == pytest.approx(297, abs=0.5)
    assert 20 <= round(section.top_margin.mm, 1) <= 25
    assert 20 <= round(section.bottom_margin.mm, 1) <= 25
    assert 30 <= round(section.left_margin.mm, 1) <= 35
    assert 15 <= round(section.right_margin.mm, 1) <= 20


def test_page_number_in_top_margin_except_first_page(reopened) -> None:
    section = reopened.sections[0]
    assert section.different_first_page_header_footer
    header = section.header.paragraphs[0]
    assert header.alignment == WD_ALIGN_PARAGRAPH.CENTER
    assert "PAGE" in "".join(header._p.xpath(".//w:instrText/text()"))
    assert section.first_page_header.paragraphs[0].text == ""


def test_normal_style_is_times_new_roman_for_every_script(reopened) -> None:
    normal = reopened.styles["Normal"]
    assert normal.font.name == "Times New Roman"
    assert 13 <= normal.font.size.pt <= 14
    rfonts = normal.element.rPr.rFonts
    for attr in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        assert rfonts.get(qn(attr)) == "Times New Roman", attr
    lang = normal.element.rPr.find(qn("w:lang"))
    assert lang is not None and lang.get(qn("w:val")) == "vi-VN"


def test_header_table_holds_body_number_motto_and_date(reopened, report: Document) -> None:
    header = reopened.tables[0]
    left = "\n".join(c.text for c in header.columns[0].cells)
    right = "\n".join(c.text for c in header.columns[1].cells)
    for line in (*report.body_lines, report.number):
        assert line in left
    for line in (*report.motto, report.place_date):
        assert line in right

    body_cell, motto_cell = header.rows[0].cells
    assert not any(r.bold for r in _cell_paragraph(body_cell, "ỦY BAN NHÂN DÂN").runs)
    assert all(r.bold for r in _text_runs(_cell_paragraph(body_cell, "HUYỆN SƠN TÂY")))
    for line in report.motto:
        motto = _cell_paragraph(motto_cell, line)
        assert motto.alignment == WD_ALIGN_PARAGRAPH.CENTER
        assert all(r.bold for r in _text_runs(motto))
    assert _text_runs(_cell_paragraph(motto_cell, report.motto[1]))[0].font.size == Pt(14)

    date = _cell_paragraph(header.rows[1].cells[1], report.place_date)
    assert all(r.italic for r in _text_runs(date))
    assert date.alignment == WD_ALIGN_PARAGRAPH.CENTER

    borders = header._tbl.tblPr.find(qn("w:tblBorders"))
    assert borders is not None
    assert {b.get(qn("w:val")) for b in borders} == {"nil"}
    # the short rules under the issuing body and the motto are paragraph borders
    ruled = header._tbl.xpath(".//w:pBdr/w:bottom")
    assert len(ruled) == 2


def test_doc_type_and_title_are_bold_and_centred(reopened, report: Document) -> None:
    for text in (report.doc_type, report.title):
        paragraph = _paragraph(reopened, text)
        assert paragraph.alignment == WD_ALIGN_PARAGRAPH.CENTER
        runs = _text_runs(paragraph)
        assert all(r.bold for r in runs)
        assert runs[0].font.size == Pt(14)


def test_body_paragraphs_are_justified_with_first_line_indent(reopened, report: Document) -> None:
    layout: Layout = report.layout
    body = [b for b in report.blocks if b.kind != "note"]
    for block in body:
        paragraph = _paragraph(reopened, block.text)
        fmt = paragraph.paragraph_format
        assert paragraph.alignment == WD_ALIGN_PARAGRAPH.JUSTIFY, block.text
        assert fmt.first_line_indent.mm == pytest.approx(layout.first_line_indent_mm, abs=0.1)
        assert fmt.line_spacing == pytest.approx(layout.line_spacing)
        assert fmt.space_after.pt == pytest.approx(layout.space_after_pt)
        assert paragraph.style.name == "Normal"  # no list numbering: the text has its marker
        assert paragraph._p.pPr.numPr is None
        bold = block.kind.startswith("heading")
        assert all(bool(r.bold) == bold for r in _text_runs(paragraph)), block.text


def test_italic_run_stays_italic_and_note_is_centred_italic(reopened) -> None:
    paragraph = next(p for p in reopened.paragraphs if "trong đó có 130 hồ sơ" in p.text)
    by_text = {r.text: r for r in paragraph.runs if r.text}
    assert by_text["trong đó có 130 hồ sơ"].italic
    assert not any(r.italic for t, r in by_text.items() if t != "trong đó có 130 hồ sơ")

    note = _paragraph(reopened, "(Có phụ lục 01 kèm theo)")
    assert note.alignment == WD_ALIGN_PARAGRAPH.CENTER
    assert all(r.italic for r in _text_runs(note))


def test_footnotes_are_real_word_footnotes(reopened, written: Path) -> None:
    part = reopened.part.part_related_by(RT.FOOTNOTES)
    assert part.partname == "/word/footnotes.xml"
    assert part.content_type == FOOTNOTES_CT
    footnotes = etree.fromstring(part.blob)
    ids = [int(f.get(qn("w:id"))) for f in footnotes.findall("w:footnote", W)]
    assert ids[:2] == [-1, 0]  # separator and continuation separator
    kinds = [f.get(qn("w:type")) for f in footnotes.findall("w:footnote", W)]
    assert kinds[:2] == ["separator", "continuationSeparator"]

    texts = {
        int(f.get(qn("w:id"))): "".join(f.xpath(".//w:t/text()", namespaces=W)).strip()
        for f in footnotes.findall("w:footnote", W)
        if f.get(qn("w:type")) is None
    }
    assert texts == {1: FOOTNOTE_1, 2: FOOTNOTE_2}
    for footnote in footnotes.findall("w:footnote", W)[2:]:
        assert len(footnote.xpath(".//w:footnoteRef", namespaces=W)) == 1
        sizes = footnote.xpath(".//w:r[w:t]/w:rPr/w:sz/@w:val", namespaces=W)
        assert sizes and all(10 <= int(s) / 2 <= 12 for s in sizes)

    refs = reopened.element.body.xpath(".//w:footnoteReference")
    assert len(refs) == 2
    assert sorted(int(r.get(qn("w:id"))) for r in refs) == sorted(texts)
    for ref in refs:
        rpr = ref.getparent().find(qn("w:rPr"))
        assert rpr.find(qn("w:rStyle")).get(qn("w:val")) == "FootnoteReference"
        assert rpr.find(qn("w:vertAlign")).get(qn("w:val")) == "superscript"
    assert reopened.styles["footnote reference"].font.superscript

    with zipfile.ZipFile(written) as package:
        content_types = package.read("[Content_Types].xml").decode()
        assert 'PartName="/word/footnotes.xml"' in content_types
        assert FOOTNOTES_CT in content_types
        assert "word/footnotes.xml" in package.namelist()
        settings = package.read("word/settings.xml").decode()
        assert "footnotePr" in settings


def test_closing_has_recipients_and_bold_signer(reopened, report: Document) -> None:
    recipients_cell, signer_cell = reopened.tables[-1].rows[0].cells
    label = recipients_cell.paragraphs[0]
    assert label.text == "Nơi nhận:"
    assert all(r.bold and r.italic for r in _text_runs(label))
    assert _text_runs(label)[0].font.size == Pt(12)
    lines = [p.text for p in recipients_cell.paragraphs[1:]]
    assert lines == [f"- {line}" for line in report.recipients]
    for paragraph in recipients_cell.paragraphs[1:]:
        assert paragraph.alignment == WD_ALIGN_PARAGRAPH.LEFT
        assert _text_runs(paragraph)[0].font.size == Pt(11)

    signer = report.signer
    for text in (signer.authority, signer.title, signer.name):
        paragraph = _cell_paragraph(signer_cell, text)
        assert paragraph.alignment == WD_ALIGN_PARAGRAPH.CENTER
        assert all(r.bold for r in _text_runs(paragraph))
    texts = [p.text for p in signer_cell.paragraphs]
    assert texts.index(signer.name) - texts.index(signer.title) > 2  # room for the signature


def test_missing_footnote_text_is_an_error(tmp_path: Path) -> None:
    report = sample_document(footnotes={1: parse_inline(FOOTNOTE_1)})
    with pytest.raises(KeyError, match=r"\[\^2\]"):
        write_docx(report, tmp_path / "x.docx")


def test_libreoffice_is_not_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, report: Document
) -> None:
    """Writing is pure python-docx: no PATH, no subprocess (so no soffice/libreoffice)."""

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"write_docx started a process: {args}")

    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setattr(subprocess, "Popen", no_subprocess)
    monkeypatch.setattr(subprocess, "run", no_subprocess)
    path = write_docx(report, tmp_path / "nested" / "bao-cao.docx")
    assert path.is_file()
    assert docx.Document(str(path)).tables[0].cell(0, 1).text.startswith(report.motto[0])
