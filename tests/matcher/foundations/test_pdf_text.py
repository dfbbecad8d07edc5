"""The pdfium extractor on generated PDFs whose text is known: words come out whole and as
pdfplumber reads them, whatever the spacing, layout, ligatures or script; the fallback takes over
where the fast text looks wrong; bad files end as pdfplumber's path ends them."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import pytest

from include.matcher.foundations import pdf_text
from include.matcher.foundations.documents import Rejected, extract_text, parser_of, recorded_parser
from include.matcher.foundations.settings import ParseLimits

PDFIUM, PDFPLUMBER = ParseLimits(pdf_extractor="pdfium"), ParseLimits(pdf_extractor="pdfplumber")
LINES = [
    "Senior data engineer with ten years of Python, Spark and Airflow",
    "Built pipelines that moved 40 TB a night for a retail bank in 2019",
    "Led a team of six and mentored graduates through code review",
]


def page_pdf(draw) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    draw(pdf)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def lines_with_char_space(char_space: float):
    def draw(pdf):
        text = pdf.beginText(50, 780)
        text.setFont("Helvetica", 10)
        text.setCharSpace(char_space)
        for line in LINES:
            text.textLine(line)
        pdf.drawText(text)

    return draw


def glyph_by_glyph(space_glyphs: bool):
    """Every glyph its own text object, as in many exported resumes. With ``space_glyphs`` each word
    ends with a space glyph drawn 1 pt back over its last letter and the next word starts 1.4 pt on
    (the resumes' own spacing, measured): pdfium drops such a space and sees no gap, so its own text
    glues the words. Without, words are apart by their position alone (4 pt)."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    def draw(pdf):
        pdf.setFont("Helvetica", 11.4)
        for row, line in enumerate(LINES):
            x, y = 50.0, 780.0 - 14 * row
            for character in line:
                if character == " ":
                    if space_glyphs:
                        pdf.drawString(x - 1.0, y, " ")
                    x += 1.4 if space_glyphs else 4.0
                    continue
                pdf.drawString(x, y, character)
                x += stringWidth(character, "Helvetica", 11.4)

    return draw


ACCENTED = ["García Martínez led the kitchen team of twelve cooks", *LINES[1:]]


def glyphs_without_code_points(pdf):
    """Glyph by glyph in an embedded TrueType font, with zero-width spaces the font lacks: each is
    drawn as a .notdef glyph that has no code point but takes room inside its word (mojibake in
    the resumes does the same), and pdfium's own text breaks the line between every glyph."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.pdfbase.ttfonts import TTFont

    pdfmetrics.registerFont(TTFont("Vera", font_file("Vera.ttf")))
    pdf.setFont("Vera", 11)
    for row, line in enumerate(ACCENTED):
        x, y = 50.0, 780.0 - 14 * row
        for word in line.replace("García", "Garc\u00ed\u200ba").replace("Martínez", "Mart\u200b\u00ednez").split():
            for character in word:
                pdf.drawString(x, y, character)
                x += stringWidth(character, "Vera", 11)
            pdf.drawString(x - 1.0, y, " ")
            x += 1.4


def two_columns(pdf):
    left, right = LINES, ["Skills: SQL, dbt, Kafka", "Languages: English, German", "Location: Berlin"]
    for row, (first, second) in enumerate(zip(left, right, strict=True)):
        pdf.setFont("Helvetica", 9)
        pdf.drawString(40, 780 - 13 * row, first)
        pdf.drawString(350, 780 - 13 * row, second)


def font_file(name: str) -> str:
    import reportlab

    return str(Path(reportlab.__file__).parent / "fonts" / name)


def ligatures(pdf):
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    pdfmetrics.registerFont(TTFont("Vera", font_file("Vera.ttf")))
    pdf.setFont("Vera", 11)
    for row, line in enumerate(
        ["\ufb01nance of\ufb02ine work\ufb02ow", "certi\ufb01ed pro\ufb01le \ufb02uent", *LINES]
    ):
        pdf.drawString(50, 780 - 15 * row, line)


NON_LATIN = ["数据工程师 北京 十年经验", "機械学習エンジニア 東京"]


def non_latin(pdf):
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    pdfmetrics.registerFont(UnicodeCIDFont("HeiseiMin-W3"))
    pdf.setFont("STSong-Light", 12)
    pdf.drawString(50, 780, NON_LATIN[0])
    pdf.setFont("HeiseiMin-W3", 12)
    pdf.drawString(50, 760, NON_LATIN[1])
    pdf.setFont("Helvetica", 10)
    for row, line in enumerate(LINES):
        pdf.drawString(50, 740 - 14 * row, line)


def words(text: str) -> Counter:
    return Counter(text.split())


@pytest.mark.parametrize(
    ("name", "draw", "expected"),
    [
        ("tight kerning", lines_with_char_space(-0.6), LINES),
        ("wide tracking", lines_with_char_space(2.0), LINES),
        ("one object per glyph, space glyphs dropped", glyph_by_glyph(space_glyphs=True), LINES),
        ("one object per glyph, words apart by position", glyph_by_glyph(space_glyphs=False), LINES),
        ("glyphs without code points, pdfium's line breaks", glyphs_without_code_points, ACCENTED),
        (
            "two columns",
            two_columns,
            LINES + ["Skills: SQL, dbt, Kafka", "Languages: English, German", "Location: Berlin"],
        ),
        ("ligatures", ligatures, ["finance offline workflow", "certified profile fluent", *LINES]),
        ("non-Latin text", non_latin, NON_LATIN + LINES),
    ],
)
def test_words_come_out_whole_and_as_pdfplumber_reads_them(name, draw, expected):
    data = page_pdf(draw)
    fast = extract_text(data, "cv.pdf", PDFIUM)
    reference = extract_text(data, "cv.pdf", PDFPLUMBER)
    assert fast.extractor == "pdfium" and not fast.fallback, (name, fast.fallback)
    assert reference.extractor == "pdfplumber" and reference.version.startswith("pdfplumber 0.")
    assert words(fast.text) == words("\n".join(expected)), (name, fast.text)
    assert words(fast.text) == words(reference.text), name


def test_lines_are_read_top_to_bottom_and_left_to_right():
    text = extract_text(page_pdf(two_columns), "cv.pdf", PDFIUM).text
    assert text.splitlines()[0] == f"{LINES[0]} Skills: SQL, dbt, Kafka"


def with_first_line(first: str):
    def draw(pdf):
        pdf.setFont("Helvetica", 7)
        pdf.drawString(40, 800, first)
        for row, line in enumerate(LINES):
            pdf.drawString(40, 780 - 14 * row, line)

    return draw


def test_a_page_whose_fast_text_looks_wrong_is_read_by_pdfplumber():
    """A word far longer than any (what glued words look like) sends the file to pdfplumber, and
    the text says why it was read that way; a long URL does not."""
    glued = "".join(LINES[0].split()) + "AndMoreWordsRunTogether"  # 77 characters, no space
    data = page_pdf(with_first_line(glued))
    result = extract_text(data, "cv.pdf", PDFIUM)
    assert result.extractor == "pdfplumber" and result.text == extract_text(data, "cv.pdf", PDFPLUMBER).text
    assert result.fallback == f"page 1: a {len(glued)}-character word: words glued together"
    url = page_pdf(with_first_line("https://example.com/" + glued))
    assert extract_text(url, "cv.pdf", PDFIUM).extractor == "pdfium"

    assert pdf_text.looks_wrong(pdf_text.PageText("", 12)) == "no text from 12 text objects"
    assert pdf_text.looks_wrong(pdf_text.PageText("\n".join(LINES), -1)) is None
    assert "character word" in pdf_text.looks_wrong(pdf_text.PageText("a" * 80 + " b", -1))
    assert pdf_text.looks_wrong(pdf_text.PageText("see https://example.com/" + "a" * 80, -1)) is None


def test_a_file_pdfium_cannot_read_or_finds_no_text_in_ends_as_pdfplumber_ends_it():
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    locked = canvas.Canvas(buffer, pagesize=A4, encrypt="secret")
    locked.drawString(50, 780, LINES[0] * 3)
    locked.showPage()
    locked.save()
    scan = page_pdf(lambda pdf: pdf.rect(50, 50, 400, 600, fill=1))  # drawn, no text: what a scan gives
    truncated = page_pdf(lines_with_char_space(0))[:400]
    for data, reason in ((buffer.getvalue(), "encrypted"), (scan, "no_text"), (truncated, None)):
        outcomes = []
        for limits in (PDFIUM, PDFPLUMBER):
            with pytest.raises(Rejected) as rejected:
                extract_text(data, "cv.pdf", limits)
            outcomes.append(rejected.value.reason)
        assert outcomes[0] == outcomes[1] and (reason is None or outcomes[0] == reason), outcomes


def test_the_parser_a_text_was_made_by_is_what_the_cache_and_ledger_compare():
    assert parser_of("a/cv.pdf", PDFIUM) == f"pdfium:{pdf_text.WORDS_VERSION}"
    assert parser_of("a/cv.PDF", PDFPLUMBER) == "pdfplumber:1"
    assert parser_of("a/cv.docx", PDFIUM) == parser_of("a/cv.txt", PDFPLUMBER) == ""
    assert recorded_parser({}, "a/cv.pdf") == "pdfplumber:1"  # texts from before extractors were recorded
    assert recorded_parser({"parser": "pdfium:1"}, "a/cv.pdf") == "pdfium:1"
    with pytest.raises(ValueError, match="MATCHER_PDF_EXTRACTOR"):
        ParseLimits(pdf_extractor="pdftotext")


# -- garbage never becomes a CV (issue 27 case 21) ---------------------------------------------------

STUFFING = "kubernetes blockchain harvard stanford"


def cv_with_hidden_keywords(pdf):
    text = pdf.beginText(50, 780)
    text.setFont("Helvetica", 10)
    for line in LINES * 2:
        text.textLine(line)
    pdf.drawText(text)
    hidden = pdf.beginText(50, 600)
    hidden.setFont("Helvetica", 10)
    hidden.setTextRenderMode(3)  # invisible: there for a keyword search, not for a reader
    hidden.textLine(STUFFING)
    pdf.drawText(hidden)


def ocr_layer_only(pdf):
    """A scan's OCR text: invisible (mode 3) over an image, and the only text the page has."""
    text = pdf.beginText(50, 780)
    text.setFont("Helvetica", 10)
    text.setTextRenderMode(3)
    for line in LINES * 2:
        text.textLine(line)
    pdf.drawText(text)


def test_invisible_text_beside_visible_text_is_no_part_of_the_cv_but_an_ocr_layer_is():
    stuffed = extract_text(page_pdf(cv_with_hidden_keywords), "cv.pdf", PDFIUM)
    assert stuffed.extractor == "pdfium" and LINES[0] in stuffed.text and "kubernetes" not in stuffed.text
    scanned = extract_text(page_pdf(ocr_layer_only), "scan.pdf", PDFIUM)
    assert LINES[0] in scanned.text  # the OCR layer is the scan's text: kept


def test_a_letter_per_line_is_not_language():
    """Vertical text (each glyph on its own line) came out as a soup that was accepted as a CV."""

    def vertical(pdf):
        pdf.setFont("Helvetica", 8)
        for column, line in enumerate(LINES[:2]):
            for row, character in enumerate(line.replace(" ", "")[:60]):
                pdf.drawString(60 + 30 * column * 3, 800 - 9 * row, character)

    for limits in (PDFIUM, PDFPLUMBER):
        with pytest.raises(Rejected) as refused:
            extract_text(page_pdf(vertical), "vertical.pdf", limits)
        assert refused.value.reason == "not_language" and "one or two characters" in refused.value.detail


def test_unmapped_glyphs_are_not_language():
    """pdfplumber's text of a CID font without ToUnicode: (cid:86)(cid:104)... was accepted as a CV."""
    glyphs = "".join(f"(cid:{80 + i % 40})" for i in range(400))
    with pytest.raises(Rejected) as refused:
        extract_text(f"Curriculum vitae\n{glyphs}\n{glyphs}".encode(), "cv.txt")
    assert refused.value.reason == "not_language" and "unmapped glyphs" in refused.value.detail
    assert extract_text(f"{LINES[0]}\n{LINES[1]} (cid:3)\n{LINES[2]}".encode(), "cv.txt")  # a stray one is fine


def test_a_pdf_of_more_glyphs_or_objects_than_any_cv_is_stopped_before_it_is_read():
    """1.6 KB can draw a million glyphs (57 s, then MemoryError) or 200,000 objects (41 s)."""

    def glyph_bomb(pdf):
        pdf.setFont("Helvetica", 1)
        for row in range(50):
            pdf.drawString(10, 10 + row, "A " * 5_000)

    def one_endless_string(pdf):
        pdf.setFont("Helvetica", 1)
        pdf.drawString(10, 10, "A" * 1_000_000)

    def object_bomb(pdf):
        pdf.setFont("Helvetica", 1)
        for index in range(pdf_text.MOST_OBJECTS_PER_PAGE + 10):
            pdf.drawString(10 + index % 500, 10 + index // 500, "x")

    bomb = page_pdf(glyph_bomb)
    assert len(bomb) < 10_000  # compressed: small to upload, huge to read
    with pytest.raises(Rejected) as refused:
        extract_text(bomb, "bomb.pdf", PDFIUM)
    assert refused.value.reason == "too_long" and "characters on one page" in refused.value.detail
    endless = page_pdf(one_endless_string)
    assert len(endless) < 10_000
    with pytest.raises(Rejected) as refused:
        extract_text(endless, "endless.pdf", PDFIUM)
    assert refused.value.reason == "not_language" and "without a space" in refused.value.detail
    with pytest.raises(Rejected) as refused:
        extract_text(page_pdf(object_bomb), "objects.pdf", PDFIUM)
    assert refused.value.reason == "too_large" and "objects on page 1" in refused.value.detail
