import io
import zipfile

import pytest

from include.devtools.demo_data import cv_text, render_docx, render_pdf
from include.matcher.foundations.documents import Rejected, extract_text, sniff_kind
from include.matcher.foundations.settings import ParseLimits

CV = "Staff Accountant\n" + "Reconciled the general ledger and closed the books every month. " * 5


def test_pdf_docx_and_txt_give_the_same_words():
    for name, data in (("a.pdf", render_pdf(CV)), ("a.docx", render_docx(CV)), ("a.txt", CV.encode())):
        parsed = extract_text(data, name)
        assert "general ledger" in parsed.text
        assert parsed.kind == name.rsplit(".", 1)[1]


def test_docx_tables_and_headers_are_read():
    import docx

    document = docx.Document()
    document.sections[0].header.paragraphs[0].text = "Header: Jane Doe, Accountant"
    document.add_paragraph("Experience at a large firm. " * 5)
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "Skills"
    table.rows[0].cells[1].text = "month-end close, GAAP"
    buffer = io.BytesIO()
    document.save(buffer)
    text = extract_text(buffer.getvalue(), "cv.docx").text
    assert "Jane Doe" in text and "month-end close, GAAP" in text


@pytest.mark.parametrize(
    "encoding",
    ["utf-8", "utf-8-sig", "utf-16", "utf-32", "cp1252"],
)
def test_txt_encodings_are_detected(encoding):
    text = "Résumé — Café manager. Führte Teams, gérait les stocks et la caisse. " * 4
    assert "Café manager" in extract_text(text.encode(encoding), "cv.txt").text


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("cv.pdf", b"", "empty"),
        ("cv.pdf", b"just some text " * 20, "wrong_type"),
        ("cv.docx", render_pdf(CV), "wrong_type"),
        ("cv.txt", render_pdf(CV), "wrong_type"),
        ("cv.pdf", render_pdf(CV)[:300], "corrupt"),
        ("cv.docx", render_docx(CV)[:400], "corrupt"),
        ("cv.png", b"\x89PNG....", "unsupported_type"),
        ("cv.txt", b"\x00\x01\x02\x03" * 200, "undecodable"),
        ("cv.txt", b"too short", "no_text"),
        ("cv.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "encrypted"),
    ],
)
def test_bad_documents_are_rejected_with_a_specific_reason(name, data, reason):
    with pytest.raises(Rejected) as caught:
        extract_text(data, name)
    assert caught.value.reason == reason


def test_xlsx_renamed_to_docx_is_named_as_such():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(Rejected, match="XLSX"):
        extract_text(buffer.getvalue(), "cv.docx")


def test_zip_bomb_limits_refuse_oversized_docx():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", "<w/>" + " " * 2_000_000)
    with pytest.raises(Rejected) as caught:
        extract_text(buffer.getvalue(), "cv.docx", ParseLimits(max_docx_uncompressed_bytes=1_000_000))
    assert caught.value.reason == "too_large"


def test_file_size_limit():
    with pytest.raises(Rejected) as caught:
        extract_text(CV.encode() * 10, "cv.txt", ParseLimits(max_bytes=100))
    assert caught.value.reason == "too_large"


def test_sniff_kind_reads_bytes_not_names():
    assert sniff_kind(render_pdf(CV)) == "pdf"
    assert sniff_kind(render_docx(CV)) == "zip"
    assert sniff_kind(CV.encode()) == "text"


def test_generated_demo_cv_parses(tmp_path):
    import random

    text = cv_text("FINANCE", random.Random(1))
    assert "Synthetic CV" in extract_text(render_pdf(text), "x.pdf").text


def test_a_docx_whose_main_part_has_another_name_is_read_through_its_relationships():
    import zipfile

    from docx import Document

    buffer = io.BytesIO()
    document = Document()
    document.add_paragraph(
        "Head chef with ten years in French brasseries, sauces and pastry; menu costing, purchasing and staff rotas "
        "for two sites."
    )
    document.save(buffer)
    renamed = io.BytesIO()
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(renamed, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            name = item.filename
            if name == "word/document.xml":
                name = "word/main.xml"
            elif name == "word/_rels/document.xml.rels":
                name = "word/_rels/main.xml.rels"
            elif name in ("_rels/.rels", "[Content_Types].xml"):
                data = data.replace(b"word/document.xml", b"word/main.xml")
            target.writestr(name, data)
    assert "Head chef" in extract_text(renamed.getvalue(), "cv.docx").text


def test_a_docx_whose_text_inflates_past_the_character_limit_is_refused_as_too_long():
    """A small DOCX whose text inflates to millions of characters once reached training and aborted
    it every night: a text longer than any CV is a reject."""
    text = "word " * 60_000  # 300,000 characters from a few kilobytes of zip
    data = render_docx(text)
    assert len(data) < 60_000
    with pytest.raises(Rejected) as refused:
        extract_text(data, "HR/inflated.docx")
    assert refused.value.reason == "too_long" and "200000" in refused.value.detail
    small = ParseLimits(max_chars=1_000)
    with pytest.raises(Rejected, match="too_long"):
        extract_text(("A real looking CV line. " * 60).encode(), "HR/long.txt", small)


@pytest.mark.parametrize(
    "body",
    [
        "\u200b" * 400,  # zero-width spaces
        "." * 300,
        "".join(chr(c) for c in range(1, 32) if chr(c) not in "\n\r\t") * 12,  # control characters
        "- . , ; : ! ? " * 40,
        "\ufeff" + "\u200b\u200c\u2060" * 100 + "CV",
    ],
    ids=["zero-width", "dots", "controls", "punctuation", "invisible-and-two-letters"],
)
def test_text_without_enough_letters_or_digits_is_no_text(body):
    with pytest.raises(Rejected) as refused:
        extract_text(body.encode(), "HR/not-a-cv.txt")
    assert refused.value.reason == "no_text"


def test_invisible_characters_are_dropped_from_a_real_text():
    body = "\ufeff" + "Nurse\u200b caring for patients\u2060 in intensive care. " * 5
    text = extract_text(body.encode(), "NURSE/a.txt").text
    assert "\u200b" not in text and "\u2060" not in text and text.startswith("Nurse caring for patients in intensive")
