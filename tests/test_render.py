"""Render the Sơn Tây 2022-Q1 example and hold it against the real report.

The reference (tests/data/son-tay-cchc-2022-q1.txt, a copy of the seed's
son-tay-cchc-2022-q1.txt) is the body text of the report UBND huyện Sơn Tây actually sent,
extracted from its PDF. Our Markdown must reproduce it paragraph for paragraph; the only
tolerated differences are listed in ALLOWED_DIFFERENCES, each with its reason, and each
normalisation below checks that it really applied (none can silently do nothing).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import gc
import html
import re
import zipfile
from pathlib import Path

import docx
import openpyxl
import pytest
from docx.enum.text import WD_ALIGN_PARAGRAPH
from lxml import etree
from openpyxl.utils import get_column_letter

from baocao.periods import Period
from tasks.consolidate import Consolidated, consolidate_period
from tasks.render import (
    RenderError,
    appendix_reference,
    build_document,
    content_digest,
    output_names,
    write_appendices,
    write_report,
    write_status,
)
from tests.conftest import PERIOD

REFERENCE = Path(__file__).resolve().parent / "data" / "son-tay-cchc-2022-q1.txt"
REPORT_DATE = dt.date(2022, 4, 5)

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
W = {"w": W_NS}

ALLOWED_DIFFERENCES = {
    "a_header": (
        "The reference was extracted from the body of the PDF: it has no header block "
        "(issuing body, Số, national motto, place and date). Both texts are compared from "
        "'BÁO CÁO' on; our header is checked on its own against body.yaml and the definition."
    ),
    "b_markup": (
        "Markdown markup the PDF text cannot have: '#'/'##'/'###' before the document type "
        "and the headings, '**...**' around the title, 'Nơi nhận:' and the signer's lines, "
        "and the two trailing spaces of a Markdown hard line break. *Italics* inside "
        "paragraphs are NOT removed: the reference marks them too."
    ),
    "c_footnotes": (
        "Footnote references are '[^1]', '[^2]' in ours and '¹', '²' in the reference. The "
        "reference prints the footnote texts where its pages ended (in the middle of the "
        "body); they are taken out of its body and compared with our '[^N]: ...' "
        "definitions separately."
    ),
    "d_page_breaks": (
        "Three paragraphs of the reference are split by a page break (the footnote text sits "
        "between the halves, or just the page end): they are rejoined at exactly the joins "
        "named in PAGE_BREAK_JOINS, nowhere else."
    ),
    "e_signature": (
        "The reference's signature block is one bold span over two lines "
        "('**TM. ỦY BAN NHÂN DÂN\\nCHỦ TỊCH**'); ours bolds each line "
        "('**TM. ỦY BAN NHÂN DÂN**  \\n**CHỦ TỊCH**'). Both become the two plain lines."
    ),
}

# (end of the first half, start of the second half) of each paragraph the page break split.
PAGE_BREAK_JOINS = (
    ("hướng dẫn", "công tác này"),  # II.2, third bullet; footnote ¹ in between
    ("Đồng", "thời, UBND"),  # II.6; footnote ² in between
    ("những", "nhiệm vụ này"),  # IV, first bullet
)
SUPERSCRIPTS = {"¹": 1, "²": 2}

ROMAN_HEADING = re.compile(r"^(I|II|III|IV|V|VI)\. \S")
ARABIC_HEADING = re.compile(r"^(\d)\. \S")

KEY_FIGURES = (
    "tiếp nhận 145 hồ sơ",
    "130 hồ sơ đã được giải quyết, 15 hồ sơ đang trong thời hạn giải quyết",
    "112.108 triệu đồng, đạt 43,5%",
    "12.746/58.708 triệu đồng, đạt 21,7%",
    "đã giải ngân 2.266,020 triệu đồng, đạt 3,5%",
    "11/11 nhiệm vụ",
    "22 đơn vị",
    "01 văn bản QPPL",
    "02 kết luận thanh tra",
    "đạt 4,4% KH giao",  # in footnote 2
)
RECIPIENTS = [
    "Sở Nội vụ;",
    "TT Huyện ủy;",
    "TT HĐND huyện;",
    "CT, PCT UBND huyện;",
    "Cơ quan Tổ chức - Nội vụ;",
    "C,PCVP, TH;",
    "Lưu: VT, HSCCHC.",
]
SIGNER = ["TM. ỦY BAN NHÂN DÂN", "CHỦ TỊCH", "Nguyễn Ngọc Trân"]
PLACE_DATE = "Sơn Tây, ngày 05 tháng 4 năm 2022"
STEM = "BC-CCHC-Quy-I-2022-UBND-huyen-Son-Tay"  # the report, the period, the body
MD, HTML, DOCX = f"{STEM}.md", f"{STEM}.html", f"{STEM}.docx"
XLSX = f"{STEM}-Phu-luc.xlsx"
STATUS = "Tinh-hinh-nop-CCHC-Quy-I-2022.xlsx"


# -- the example, run once per module ----------------------------------------------------


@pytest.fixture(scope="module")
def example(example_runtime):
    """The example (conftest: 2022-Q1 opened, every wave taken in) and its consolidation."""
    return example_runtime, consolidate_period(example_runtime, PERIOD)


@pytest.fixture(scope="module")
def rendered(example, tmp_path_factory: pytest.TempPathFactory) -> Path:
    rt, result = example
    doc = build_document(rt.env, result, rt.report, rt.cfg.body, REPORT_DATE)
    folder = tmp_path_factory.mktemp("out")
    paths = write_report(rt.env, doc, result, rt.report, folder, rt.cfg.body, REPORT_DATE)
    assert [p.name for p in paths] == [MD, HTML, DOCX, XLSX, STATUS]
    return folder


def _with_values(result: Consolidated, **changes) -> Consolidated:
    """A copy of `result` with some consolidated values replaced (the fixture stays intact)."""
    return dataclasses.replace(result, values={**result.values, **changes})


# -- extracting text from the three outputs ----------------------------------------------


def html_text(path: Path) -> str:
    page = path.read_text(encoding="utf-8")
    page = re.sub(r"<(style|script)\b.*?</\1>", " ", page, flags=re.S)  # no CSS in the text
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def footnote_texts(path: Path) -> dict[int, str]:
    with zipfile.ZipFile(path) as z:
        root = etree.fromstring(z.read("word/footnotes.xml"))
    out = {}
    for fn in root.findall("w:footnote", W):
        if fn.get(f"{{{W_NS}}}type") is None:
            out[int(fn.get(f"{{{W_NS}}}id"))] = "".join(fn.itertext()).strip()
    return out


def docx_text(path: Path) -> str:
    d = docx.Document(str(path))
    parts = [p.text for p in d.paragraphs]
    for table in d.tables:
        for cell in (c for row in table.rows for c in row.cells):
            parts += [p.text for p in cell.paragraphs]
    parts += footnote_texts(path).values()
    return "\n".join(parts)


def signer_and_recipient_cells(path: Path):
    """The closing table of the .docx: (recipients cell, signer cell)."""
    d = docx.Document(str(path))
    closing = d.tables[-1]
    recipients, signer = closing.rows[0].cells
    assert recipients.paragraphs[0].text == "Nơi nhận:"
    return recipients, signer


# -- normalising both texts (each step is one of ALLOWED_DIFFERENCES) --------------------


def _paragraphs(lines: list[str]) -> list[str]:
    text = "\n".join(lines).strip("\n")
    return [p.strip("\n") for p in re.split(r"\n\s*\n", text) if p.strip()]


def normalise_reference(text: str) -> tuple[list[str], dict[int, str]]:
    """The reference's paragraphs and its footnote texts."""
    lines = text.splitlines()
    # (a) no header block: the text starts at the document type.
    first = next(i for i, line in enumerate(lines) if line.strip())
    assert lines[first] == "BÁO CÁO", "the reference should start at 'BÁO CÁO' (no header)"
    lines = lines[first:]

    # (c) footnote texts printed where the reference's pages ended.
    footnotes: dict[int, str] = {}
    body: list[str] = []
    for line in lines:
        m = re.match(r"^([¹²]) (.+)$", line)
        if m:
            footnotes[SUPERSCRIPTS[m[1]]] = m[2].strip()
        else:
            body.append(line)
    assert sorted(footnotes) == [1, 2], f"footnote texts found in the reference: {footnotes}"

    paragraphs = _paragraphs(body)

    # (d) rejoin exactly the three paragraphs split by a page break.
    for end, start in PAGE_BREAK_JOINS:
        hits = [
            i
            for i in range(len(paragraphs) - 1)
            if paragraphs[i].endswith(end) and paragraphs[i + 1].startswith(start)
        ]
        assert len(hits) == 1, f"page-break join {end!r} / {start!r} found {len(hits)} times"
        i = hits[0]
        paragraphs[i : i + 2] = [f"{paragraphs[i]} {paragraphs[i + 1]}"]

    # (c) footnote references: '¹' -> '[^1]', each exactly once.
    joined = "\n\n".join(paragraphs)
    for mark in SUPERSCRIPTS:
        assert joined.count(mark) == 1, f"footnote mark {mark} should occur once"
    paragraphs = [re.sub("[¹²]", lambda m: f"[^{SUPERSCRIPTS[m[0]]}]", p) for p in paragraphs]

    # (e) the signature block: one bold span over two lines.
    signature = "**TM. ỦY BAN NHÂN DÂN\nCHỦ TỊCH**"
    assert paragraphs.count(signature) == 1, "signature block layout of the reference changed"
    paragraphs[paragraphs.index(signature)] = signature[2:-2]
    return paragraphs, footnotes


def split_markdown(md: str) -> tuple[list[str], list[str], dict[int, str]]:
    """Our Markdown as (header lines, body paragraphs from 'BÁO CÁO' on, footnote texts)."""
    lines = md.splitlines()
    # (c) footnote definitions '[^N]: text' at the end.
    footnotes: dict[int, str] = {}
    body: list[str] = []
    for line in lines:
        m = re.match(r"^\[\^(\d+)\]: (.+)$", line)
        if m:
            footnotes[int(m[1])] = m[2].strip()
        else:
            body.append(line)
    # (a) the header block is everything before '# BÁO CÁO'.
    start = body.index("# BÁO CÁO")
    header = [line.rstrip() for line in body[:start] if line.strip()]
    return header, body[start:], footnotes


def normalise_ours(body_lines: list[str], title: str, signer: list[str]) -> list[str]:
    """Our body paragraphs with the Markdown markup of ALLOWED_DIFFERENCES (b), (e) removed."""
    # (b) a hard line break is two trailing spaces.
    paragraphs = _paragraphs([line.removesuffix("  ") for line in body_lines])
    # (b) '#' marks the document type and the headings (and nothing else in our template).
    paragraphs = [re.sub(r"^#{1,3} ", "", p) for p in paragraphs]
    # (b)/(e) bold wraps exactly these whole lines; anywhere else '**' stays and must match.
    bold_lines = {title, "Nơi nhận:", *signer}
    unwrapped = []
    for p in paragraphs:
        lines = p.split("\n")
        lines = [
            line[2:-2]
            if line.startswith("**") and line.endswith("**") and line[2:-2] in bold_lines
            else line
            for line in lines
        ]
        unwrapped.append("\n".join(lines))
    return unwrapped


def sections(paragraphs: list[str]) -> dict[str, list[str]]:
    """Paragraphs grouped by section: 'mở đầu', I, II, II.1 ... II.6, III, III.1, III.2, IV,
    'Nơi nhận', 'chữ ký'. The heading is the first paragraph of its section."""
    out: dict[str, list[str]] = {}
    key, roman = "mở đầu", ""
    for p in paragraphs:
        if m := ROMAN_HEADING.match(p):
            key = roman = m[1]
        elif m := ARABIC_HEADING.match(p):
            key = f"{roman}.{m[1]}"
        elif p == "Nơi nhận:":
            key = "Nơi nhận"
        elif p.startswith(SIGNER[0]):
            key = "chữ ký"
        else:
            out.setdefault(key, []).append(p)
            continue
        assert key not in out, f"section {key} appears twice"
        out[key] = [p]
    return out


def _diff(name: str, expected: list[str], actual: list[str]) -> str:
    lines = difflib.ndiff(expected, actual)
    shown = [line for line in lines if not line.startswith("  ")]
    return f"--- section {name} (- reference, + ours)\n" + "\n".join(shown)


# -- tests -------------------------------------------------------------------------------


def test_reference_report_section_by_section(example, rendered: Path):
    rt, _ = example
    md = (rendered / MD).read_text(encoding="utf-8")
    reference, ref_footnotes = normalise_reference(REFERENCE.read_text(encoding="utf-8"))
    header, body, our_footnotes = split_markdown(md)
    title = build_document(rt.env, example[1], rt.report, rt.cfg.body, REPORT_DATE).title
    ours = normalise_ours(body, title, SIGNER)

    # (a) the header, which the reference lacks, against the issuing body and Decree 30.
    assert header[:2] == ["ỦY BAN NHÂN DÂN", "**HUYỆN SƠN TÂY**"]
    assert re.fullmatch(r"Số: +/BC-UBND", header[2]), header[2]
    assert header[3:] == [
        "**CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM**",
        "**Độc lập - Tự do - Hạnh phúc**",
        f"*{PLACE_DATE}*",
    ]

    # (c) footnotes, compared on their own.
    assert our_footnotes == ref_footnotes

    expected, actual = sections(reference), sections(ours)
    assert list(actual) == list(expected), "sections differ in number or order"
    assert list(expected) == [
        "mở đầu", "I", "II", "II.1", "II.2", "II.3", "II.4", "II.5", "II.6",
        "III", "III.1", "III.2", "IV", "Nơi nhận", "chữ ký",
    ]  # fmt: skip
    failures = [
        _diff(name, expected[name], actual[name])
        for name in expected
        if expected[name] != actual[name]
    ]
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("figure", KEY_FIGURES)
def test_key_figures_formatted(rendered: Path, figure: str):
    md = (rendered / MD).read_text(encoding="utf-8")
    assert figure in md
    assert figure in html_text(rendered / HTML)
    assert figure in docx_text(rendered / DOCX)


def test_key_figure_of_the_footnote_is_in_the_footnote(rendered: Path):
    assert "đạt 4,4% KH giao" in footnote_texts(rendered / DOCX)[2]


def test_recipients_and_signer(rendered: Path):
    md = (rendered / MD).read_text(encoding="utf-8")
    lines = md.splitlines()
    start = lines.index("**Nơi nhận:**")
    listed = []
    for line in lines[start + 1 :]:
        if line.startswith("- "):
            listed.append(line[2:])
        elif listed:
            break
    assert listed == RECIPIENTS
    assert "**TM. ỦY BAN NHÂN DÂN**  \n**CHỦ TỊCH**\n\n**Nguyễn Ngọc Trân**" in md
    assert re.search(r"^Số: .*/BC-UBND$", md, re.M)
    assert f"*{PLACE_DATE}*" in md

    path = rendered / DOCX
    recipients, signer = signer_and_recipient_cells(path)
    assert [p.text.removeprefix("- ") for p in recipients.paragraphs[1:]] == RECIPIENTS
    assert all(p.text.startswith("- ") for p in recipients.paragraphs[1:])
    signer_lines = [p for p in signer.paragraphs if p.text.strip()]
    assert [p.text for p in signer_lines] == SIGNER
    assert all(r.bold for p in signer_lines for r in p.runs)

    d = docx.Document(str(path))
    header_cells = [c for row in d.tables[0].rows for c in row.cells]
    header_paragraphs = [p for c in header_cells for p in c.paragraphs if p.text.strip()]
    place = [p for p in header_paragraphs if p.text == PLACE_DATE]
    assert len(place) == 1, [p.text for p in header_paragraphs]
    assert place[0].runs and all(r.italic for r in place[0].runs)
    number = [p.text for p in header_paragraphs if p.text.startswith("Số:")]
    assert len(number) == 1 and number[0].endswith("/BC-UBND")


def test_docx_layout_of_real_report(example, rendered: Path):
    path = rendered / DOCX
    d = docx.Document(str(path))
    section = d.sections[0]
    assert section.page_width.mm == pytest.approx(210, abs=0.5)
    assert section.page_height.mm == pytest.approx(297, abs=0.5)
    assert 20 - 0.1 <= section.top_margin.mm <= 25 + 0.1
    assert 20 - 0.1 <= section.bottom_margin.mm <= 25 + 0.1
    assert 30 - 0.1 <= section.left_margin.mm <= 35 + 0.1
    assert 15 - 0.1 <= section.right_margin.mm <= 20 + 0.1

    normal = d.styles["Normal"]
    assert normal.font.name == "Times New Roman"
    assert 13 <= normal.font.size.pt <= 14

    with zipfile.ZipFile(path) as z:
        body = etree.fromstring(z.read("word/document.xml"))
    refs = body.findall(".//w:footnoteReference", W)
    assert [r.get(f"{{{W_NS}}}id") for r in refs] == ["1", "2"]
    assert sorted(footnote_texts(path)) == [1, 2]

    # Every block of the report is one top-level paragraph: justified, the note centred.
    rt, result = example
    doc = build_document(rt.env, result, rt.report, rt.cfg.body, REPORT_DATE)
    texts = [b.text for b in doc.blocks]
    paragraphs = [p for p in d.paragraphs if p.text in texts]
    assert [p.text for p in paragraphs] == texts
    for block, paragraph in zip(doc.blocks, paragraphs, strict=True):
        want = WD_ALIGN_PARAGRAPH.CENTER if block.kind == "note" else WD_ALIGN_PARAGRAPH.JUSTIFY
        assert paragraph.alignment == want, block.text[:60]


def test_html_is_escaped(example, tmp_path: Path):
    rt, result = example
    payload = "<script>alert(1)</script>"
    changed = _with_values(result, nv_tuyen_dung=payload)
    doc = build_document(rt.env, changed, rt.report, rt.cfg.body, REPORT_DATE)
    write_report(rt.env, doc, changed, rt.report, tmp_path, rt.cfg.body, REPORT_DATE)
    page = (tmp_path / HTML).read_text(encoding="utf-8")
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert f"Về tuyển dụng công chức, viên chức: {payload}" in html_text(tmp_path / HTML)


def test_missing_figure_fails_loudly(example):
    rt, result = example
    report = rt.report
    n = next(i for i, s in enumerate(report.sections) if s.heading == "1. Cải cách thể chế")
    section = report.sections[n]
    broken = section.model_copy(
        update={"paragraphs": (*section.paragraphs, "Có {{ f.does_not_exist }} văn bản.")}
    )
    k = len(section.paragraphs)
    bad = report.model_copy(
        update={"sections": (*report.sections[:n], broken, *report.sections[n + 1 :])}
    )
    with pytest.raises(RenderError) as exc:
        build_document(rt.env, result, bad, rt.cfg.body, REPORT_DATE)
    message = str(exc.value)
    assert f"sections[{n}].paragraphs[{k}]" in message
    assert "does_not_exist" in message


def _rows(ws) -> list[tuple]:
    return list(ws.iter_rows(values_only=True))


def test_appendix_prints_labels_and_vietnamese_figures(example, rendered: Path):
    _, result = example
    wb = openpyxl.load_workbook(rendered / XLSX)
    assert wb.sheetnames == ["Phụ lục 01", "Phụ lục 02"]
    ws = wb["Phụ lục 01"]
    rows = _rows(ws)
    # the Decree 30 appendix heading: name, title, the report it goes with (no number yet)
    assert rows[0][0] == "Phụ lục 01"
    assert "QUÝ I/2022" in rows[1][0]
    assert rows[2][0] == "(Kèm theo Báo cáo số …/BC-UBND ngày … của UBND huyện Sơn Tây)"
    header = rows[4]
    assert header[:4] == ("TT", "Chỉ tiêu", "Đơn vị tính", "Kết quả Quý I/2022")
    assert "Kế hoạch năm 2022" in header
    codes = {i.code for i in example[0].report.indicators} | {"tc_thu_nsnn_pct"}
    cells = {str(c) for row in rows for c in row if c is not None}
    assert not cells & codes, "an internal code is printed"
    by_label = {r[1]: r for r in rows[5:]}
    assert by_label["Tổng thu ngân sách Nhà nước"][2:5] == ("triệu đồng", "112.108", "257.700")
    assert by_label["Tổng vốn đầu tư đã giải ngân"][3] == "2.266,020"
    assert by_label["Tổng thu NSNN so với KH giao"][3] == "43,5%"
    assert by_label["Số liệu tài chính tính đến ngày"][3] == "21/02/2022"
    figure = next(c for c in ws["D"] if c.value == "2.266,020")
    assert figure.number_format == "@" and figure.alignment.horizontal == "right"
    assert figure.border.left.style == "thin" and figure.border.bottom.style == "thin"

    units = wb["Phụ lục 02"]
    rows = _rows(units)
    assert rows[0][0] == "Phụ lục 02" and rows[2][0].startswith("(Kèm theo Báo cáo số")
    assert rows[4][:2] == ("TT", "Đơn vị")
    # the figures the district adds up, by the units that report them, and their total
    assert rows[4][2:] == (
        "Số hồ sơ TTHC đã tiếp nhận (hồ sơ)",
        "Số hồ sơ đã giải quyết (hồ sơ)",
        "Số hồ sơ đang trong thời hạn giải quyết (hồ sơ)",
        "Số phản ánh kiến nghị về kết quả giải quyết TTHC (phản ánh)",
    )
    body, total = rows[5:-1], rows[-1]
    assert len(body) == 10  # the one-stop office and the nine communes
    assert total[1] == "Tổng cộng" and total[2] == "145"
    assert sum(int(r[2].replace(".", "")) for r in body if r[2]) == 145
    # the office's follow-up stays home: no state, version, lateness or unit code
    text = " ".join(str(c) for row in rows for c in row if c is not None)
    for word in ("Trạng thái", "Phiên bản", "Đúng hạn", "trễ", "valid", "SON-MUA", "MOTCUA"):
        assert word not in text, word


def test_a_unit_still_owing_keeps_its_row_with_blank_figures(example, tmp_path):
    rt, result = example
    owing = dataclasses.replace(
        result,
        by_unit=result.by_unit.drop("SON-MUA"),
        missing=[("tthc_tiep_nhan", "SON-MUA"), ("tthc_pakn", "SON-MUA")],
    )
    doc = build_document(rt.env, result, rt.report, rt.cfg.body, REPORT_DATE)
    path = write_appendices(owing, rt.report, tmp_path / XLSX, doc, rt.cfg.body, REPORT_DATE)
    rows = _rows(openpyxl.load_workbook(path)["Phụ lục 02"])
    [mua] = [r for r in rows if r[1] == "UBND xã Sơn Mùa"]
    assert mua[2:] == (None, None, None, None)


def test_appendix_page_setup(rendered: Path):
    wb = openpyxl.load_workbook(rendered / XLSX)
    for ws in wb.worksheets:
        setup = ws.page_setup
        assert setup.orientation == "landscape"
        assert int(setup.paperSize) == 9  # A4
        assert ws.sheet_properties.pageSetUpPr.fitToPage is True
        assert setup.fitToWidth == 1 and setup.fitToHeight == 0
        assert ws.print_title_rows == "$5:$5"  # the header row on every page
        assert ws.column_dimensions["B"].width >= 30
    assert wb.properties.creator == "UBND huyện Sơn Tây"
    assert wb.properties.created.date() == REPORT_DATE
    assert "Quý I/2022" in wb.properties.title


def _bordered(cell) -> bool:
    b = cell.border
    return all(side.style == "thin" for side in (b.left, b.right, b.top, b.bottom))


@pytest.mark.parametrize("name", [XLSX, STATUS])
def test_appendix_cells_are_styled_for_print(rendered: Path, name: str):
    """Every sheet of both workbooks, read back: Times New Roman throughout, the heading
    centred and unbordered, a bold bordered header row, bordered text cells with figures
    right-aligned, the header repeated and the panes frozen below it."""
    wb = openpyxl.load_workbook(rendered / name)
    for ws in wb.worksheets:
        heading = [ws.cell(row=r, column=1) for r in (1, 2, 3)]
        assert [(c.font.name, c.font.b, c.font.i, c.font.sz) for c in heading] == [
            ("Times New Roman", True, False, 13),
            ("Times New Roman", True, False, 13),
            ("Times New Roman", False, True, 12),
        ]
        assert all(c.alignment.horizontal == "center" and c.alignment.wrap_text for c in heading)
        assert not any(_bordered(c) for c in heading)
        assert {str(r) for r in ws.merged_cells.ranges} == {
            f"A{r}:{get_column_letter(ws.max_column)}{r}" for r in (1, 2, 3)
        }
        assert ws.row_dimensions[2].height == 36

        header, *body = list(ws.iter_rows(min_row=5))
        assert all(c.font.name == "Times New Roman" and c.font.b for c in header)
        assert all(_bordered(c) and c.alignment.horizontal == "center" for c in header)
        cells = [c for row in body for c in row]
        assert all(c.font.name == "Times New Roman" and c.font.sz == 11 for c in cells)
        assert all(_bordered(c) and c.number_format == "@" for c in cells)
        assert all(c.alignment.vertical == "center" and c.alignment.wrap_text for c in cells)
        assert {row[0].alignment.horizontal for row in body} == {"center"}  # TT
        words = [c for row in body for c in row[1:] if isinstance(c.value, str) and c.value]
        figures = [c for c in words if re.fullmatch(r"[+-]?[\d.,]+%?|\d\d/\d\d/\d{4}", c.value)]
        texts = [c for c in words if c not in figures]
        assert texts and (figures or name == STATUS)  # the status has no figures as text
        assert all(c.alignment.horizontal == "right" for c in figures)
        assert {c.alignment.horizontal for c in texts} == {"left"}
        # the total row of Phụ lục 02 is bold, the units' rows are not
        total = body[-1] if ws.title == "Phụ lục 02" else []
        assert all(c.font.b for c in total)
        assert not any(c.font.b for row in body if row is not total for c in row)

        assert ws.print_title_rows == "$5:$5" and ws.freeze_panes == "C6"
        setup = ws.page_setup
        assert (setup.orientation, int(setup.paperSize)) == ("landscape", 9)
        assert (setup.fitToWidth, setup.fitToHeight) == (1, 0)
        assert ws.sheet_properties.pageSetUpPr.fitToPage is True
        assert ws.print_options.horizontalCentered is True
        m = ws.page_margins
        assert (m.left, m.right, m.top, m.bottom) == (0.5, 0.5, 0.6, 0.6)
    assert wb.properties.language == "vi-VN"
    assert wb.properties.lastModifiedBy == "UBND huyện Sơn Tây"


def test_writing_a_workbook_leaves_the_cycle_collector_as_it_was(example, tmp_path):
    """The collector is held off while a workbook is built, then left as it was found."""
    rt, result = example
    doc = build_document(rt.env, result, rt.report, rt.cfg.body, REPORT_DATE)
    assert gc.isenabled()
    write_appendices(result, rt.report, tmp_path / XLSX, doc, rt.cfg.body, REPORT_DATE)
    write_status(result, tmp_path / STATUS, rt.cfg.body, REPORT_DATE)
    assert gc.isenabled()
    gc.disable()
    try:
        write_status(result, tmp_path / STATUS, rt.cfg.body, REPORT_DATE)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_appendix_reference_carries_the_documents_number(example):
    rt, result = example
    doc = build_document(rt.env, result, rt.report, rt.cfg.body, REPORT_DATE, number="45")
    assert appendix_reference(doc, rt.cfg.body) == (
        "(Kèm theo Báo cáo số 45/BC-UBND ngày 05/4/2022 của UBND huyện Sơn Tây)"
    )


def test_status_workbook_is_the_offices_own(example, rendered: Path):
    _, result = example
    wb = openpyxl.load_workbook(rendered / STATUS)
    rows = _rows(wb.active)
    assert "không gửi kèm" in rows[0][0] and "14/14" in rows[1][0] and "13/14" in rows[1][0]
    assert rows[4] == (
        "TT",
        "Đơn vị",
        "Mã đơn vị",
        "Trạng thái",
        "Phiên bản",
        "Nhận lúc",
        "Đúng hạn",
    )
    units = {r[2]: r for r in rows[5:]}
    assert list(units) == result.expected
    assert units["SON-MUA"][6] == "trễ hạn" and units["TCKH"][4] == 2
    assert {r[3] for r in units.values()} == {"hợp lệ"}
    assert re.fullmatch(r"\d\d:\d\d ngày \d\d/\d\d/2022", units["TCKH"][5])


def test_docx_properties_name_the_body_and_the_report_date(rendered: Path):
    props = docx.Document(rendered / DOCX).core_properties
    assert props.author == "UBND huyện Sơn Tây" and props.last_modified_by == "UBND huyện Sơn Tây"
    assert props.title.startswith("Kết quả") and "Quý I/2022" in props.title
    assert props.created.date() == REPORT_DATE and props.modified.date() == REPORT_DATE
    with zipfile.ZipFile(rendered / DOCX) as z:
        core = z.read("docProps/core.xml").decode()
    assert "python-docx" not in core and "2013" not in core


def test_output_names_are_ascii_and_say_what_they_are(example):
    rt, result = example
    names = output_names(rt.report, result.period, rt.cfg.body)
    assert names.docx == "BC-CCHC-Quy-I-2022-UBND-huyen-Son-Tay.docx"
    assert names.sent == (DOCX, XLSX)
    assert STATUS not in names.sent
    assert all(n.isascii() and " " not in n for n in names.all)
    half = output_names(rt.report, Period(2022, "H", 1), rt.cfg.body)
    assert half.docx == "BC-CCHC-6-thang-dau-nam-2022-UBND-huyen-Son-Tay.docx"
    june = output_names(rt.report, Period(2022, "M", 6), rt.cfg.body)
    assert june.docx == "BC-CCHC-thang-6-2022-UBND-huyen-Son-Tay.docx"
    nine = output_names(rt.report, Period(2022, "9M"), rt.cfg.body)
    assert nine.docx == "BC-CCHC-9-thang-nam-2022-UBND-huyen-Son-Tay.docx"


def test_content_digest_ignores_date(example):
    rt, result = example

    def digest(res: Consolidated, day: dt.date) -> str:
        return content_digest(build_document(rt.env, res, rt.report, rt.cfg.body, day), res)

    first = build_document(rt.env, result, rt.report, rt.cfg.body, dt.date(2022, 4, 5))
    second = build_document(rt.env, result, rt.report, rt.cfg.body, dt.date(2022, 4, 6))
    assert first.place_date != second.place_date
    assert digest(result, dt.date(2022, 4, 5)) == digest(result, dt.date(2022, 4, 6))
    changed = _with_values(result, tthc_tiep_nhan=146.0, tthc_dang_giai_quyet=16.0)
    assert digest(changed, dt.date(2022, 4, 5)) != digest(result, dt.date(2022, 4, 5))


def test_a_units_text_is_printed_as_typed_never_as_markup(example, tmp_path):
    """A unit typing markup ([^99], **, a link, an HTML tag) adds no footnote, link or tag."""
    rt, result = example
    typed = "Báo cáo [^99] **số 19** <https://evil.example> <b>x</b>"
    changed = _with_values(result, tp_nguon=typed)
    doc = build_document(rt.env, changed, rt.report, rt.cfg.body, REPORT_DATE)
    runs = [r for b in doc.blocks for r in b.runs]
    assert not any(r.footnote == 99 or "evil" in (r.link or "") for r in runs)
    [run] = [r for r in runs if typed in r.text]
    assert run.italic  # the definition's own markup around it still applies
    write_report(rt.env, doc, changed, rt.report, tmp_path, rt.cfg.body, REPORT_DATE)
    md = (tmp_path / MD).read_text(encoding="utf-8")
    assert r"Báo cáo \[^99\] \*\*số 19\*\* \<https://evil.example\> \<b\>x\</b\>" in md
    page = (tmp_path / HTML).read_text(encoding="utf-8")
    assert "&lt;b&gt;x&lt;/b&gt;" in page and 'href="https://evil' not in page
    assert typed in html_text(tmp_path / HTML)
    text = "\n".join(p.text for p in docx.Document(tmp_path / DOCX).paragraphs)
    assert typed in text
    assert 99 not in footnote_texts(tmp_path / DOCX)
