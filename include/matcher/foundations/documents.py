"""Turn document bytes into text: PDF (pdfium, pdfplumber as reference and fallback), DOCX
(python-docx), TXT (encoding detection).

The type is read from the bytes, not trusted from the extension. Anything that cannot give usable
text raises :class:`Rejected` with a reason from :data:`REJECT_REASONS` and a detail saying what the
parser reported, so a bad file becomes a reject record instead of a failed task.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass

from include.matcher.foundations.errors import BadInput
from include.matcher.foundations.settings import ParseLimits

SUPPORTED_EXTENSIONS = (".pdf", ".docx", ".txt")

REJECT_REASONS = {
    "encrypted": "password-protected or encrypted document",
    "wrong_type": "content does not match the file extension",
    "corrupt": "corrupt or truncated document the parser could not read",
    "no_text": "no extractable text (a scan needs OCR) or too little text to use",
    "empty": "zero-byte file",
    "too_large": "file or its decompressed content exceeds the configured limit",
    "unsupported_type": "file type the pipeline does not parse",
    "undecodable": "text whose encoding could not be determined or that is binary",
    "timeout": "parsing took longer than the configured wall-clock limit",
    "memory": "parsing needed more memory than the configured limit",
    "too_long": "more text than any CV holds (over the configured character limit)",
    "not_language": "characters that are not language: unmapped glyphs (cid:NN), or one letter per line",
    "vanished": "the file was deleted or replaced between ingest and parse",
}


class Rejected(BadInput):
    """A document that cannot become training text."""

    def __init__(self, reason: str, detail: str = ""):
        if reason not in REJECT_REASONS:
            raise ValueError(f"unknown reject reason {reason!r}")
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ParsedText:
    text: str
    kind: str  # pdf | docx | txt
    extractor: str = ""  # what made the text: pdfium, pdfplumber, python-docx or text
    version: str = ""  # the extractor's libraries' versions (recorded with the text)
    fallback: str = ""  # why pdfplumber read a PDF that the pdfium extractor was asked for


# pdfplumber's one way of reading; before extractors were recorded every PDF text came from it.
PDFPLUMBER_PARSER = "pdfplumber:1"


def parser_of(filename: str, limits: ParseLimits) -> str:
    """What a file's text is made by under ``limits``, as the cache and the ledger record it: a text
    (or reject) recorded under another is parsed again. Only PDFs have a choice of extractor."""
    if _extension(filename) != ".pdf":
        return ""
    from include.matcher.foundations.pdf_text import WORDS_VERSION

    return f"pdfium:{WORDS_VERSION}" if limits.pdf_extractor == "pdfium" else PDFPLUMBER_PARSER


def recorded_parser(entry: dict, filename: str) -> str:
    """The parser an earlier outcome or cache entry was made by (:func:`parser_of`'s form)."""
    if _extension(filename) != ".pdf":
        return ""
    return entry.get("parser") or PDFPLUMBER_PARSER


def sniff_kind(data: bytes) -> str:
    """What the bytes are: pdf, zip (DOCX is a zip), ole2 (encrypted Office), text or binary."""
    head = data[:1024]
    if b"%PDF-" in head:
        return "pdf"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "ole2"
    if head.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf")):
        return "text"
    if b"\x00" in head:
        return "binary"
    return "text"


def extract_text(data: bytes, filename: str, limits: ParseLimits | None = None) -> ParsedText:
    """Parse one document. Raises :class:`Rejected` for anything unusable."""
    limits = limits or ParseLimits()
    extension = _extension(filename)
    if extension not in SUPPORTED_EXTENSIONS:
        raise Rejected("unsupported_type", f"extension {extension or '(none)'!r} is not one of {SUPPORTED_EXTENSIONS}")
    if not data:
        raise Rejected("empty", "0 bytes")
    if len(data) > limits.max_bytes:
        raise Rejected("too_large", f"{len(data)} bytes > limit {limits.max_bytes}")

    kind = sniff_kind(data)
    if extension == ".pdf":
        if kind != "pdf":
            raise Rejected("wrong_type", f"a .pdf file whose bytes are {kind}")
        return _pdf(data, limits)
    elif extension == ".docx":
        if kind == "ole2":
            raise Rejected("encrypted", "OLE2 container: a password-encrypted Office document")
        if kind != "zip":
            raise Rejected("wrong_type", f"a .docx file whose bytes are {kind}")
        text = _docx_text(data, limits)
    else:
        if kind in {"pdf", "zip", "ole2"}:
            raise Rejected("wrong_type", f"a .txt file whose bytes are {kind}")
        text = _txt_text(data)

    extractor = "python-docx" if extension == ".docx" else "text"
    return ParsedText(text=accept_text(text, limits), kind=extension.lstrip("."), extractor=extractor)


def accept_text(text: str, limits: ParseLimits | None = None) -> str:
    """The text a CV is stored as (invisible and control characters dropped, whitespace normalised),
    or :class:`Rejected`: too long to be a CV, or too few letters and digits to be one."""
    limits = limits or ParseLimits()
    if len(text) > 20 * limits.max_chars:  # refused before normalising: that alone would cost seconds
        raise Rejected("too_long", f"{len(text)} characters extracted (> {limits.max_chars})")
    text = normalise_whitespace(strip_invisible(text))
    if len(text) > limits.max_chars:
        raise Rejected("too_long", f"{len(text)} characters extracted (> {limits.max_chars})")
    if len(text) < limits.min_chars:
        raise Rejected("no_text", f"{len(text)} characters extracted (< {limits.min_chars})")
    word_characters = len(_ALPHANUMERIC.findall(text))
    if word_characters < limits.min_chars / 2:
        raise Rejected(
            "no_text", f"{word_characters} letters or digits in {len(text)} characters (< {limits.min_chars / 2:g})"
        )
    if why := not_language(text):
        raise Rejected("not_language", why)
    return text


# A font without a text mapping leaves pdfminer's "(cid:86)" per glyph; a CV has none, or a stray few.
UNMAPPED_GLYPH = re.compile(r"\(cid:\d+\)")
MOST_UNMAPPED_SHARE = 0.05
# Vertical text (or glyphs placed one by one) comes out a letter per line: a CV has a few such lines
# (bullets, initials), never most of them. Measured on the 1,723 shared resumes: see docs/operations.md, "PDF text".
SCATTERED_MIN_LINES = 30
MOST_SCATTERED_SHARE = 0.5


def not_language(text: str) -> str | None:
    """Why ``text`` is not language a model can read, or None: unmapped glyphs, or a letter per line."""
    unmapped = sum(len(found) for found in UNMAPPED_GLYPH.findall(text))
    if unmapped > MOST_UNMAPPED_SHARE * len(text):
        return f"{unmapped} of {len(text)} characters are unmapped glyphs (cid:NN): the font has no text mapping"
    lines = [line for line in text.split("\n") if line.strip()]
    scattered = sum(len(line.replace(" ", "")) <= 2 for line in lines)
    if len(lines) >= SCATTERED_MIN_LINES and scattered > MOST_SCATTERED_SHARE * len(lines):
        return f"{scattered} of {len(lines)} lines hold one or two characters (vertical or scattered glyphs)"
    return None


# Format characters (zero-width spaces and joiners, BOMs, bidi marks), control characters but the
# line breaks and tabs, private-use and unassigned code points: none is text a reader sees.
_INVISIBLE = {"Cf", "Cc", "Co", "Cs", "Cn"}
_KEPT_CONTROLS = {"\n", "\r", "\t"}


_ALPHANUMERIC = re.compile(r"[^\W_]")  # what str.isalnum() accepts, counted at C speed


def strip_invisible(text: str) -> str:
    # Printable characters are none of those categories: most texts are all printable but their breaks.
    if all(line.isprintable() for line in text.replace("\t", " ").replace("\r", "\n").split("\n")):
        return text
    return "".join(c for c in text if c in _KEPT_CONTROLS or unicodedata.category(c) not in _INVISIBLE)


def normalise_whitespace(text: str) -> str:
    lines = (re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.replace("\r", "\n").split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _extension(filename: str) -> str:
    name = filename.rsplit("/", 1)[-1]
    return f".{name.rsplit('.', 1)[-1].lower()}" if "." in name else ""


def _pdf(data: bytes, limits: ParseLimits) -> ParsedText:
    """pdfium's text where it looks right; pdfplumber's otherwise, and for every file pdfium cannot
    read or finds too little text in: rejects are pdfplumber's, so a bad file ends as it always has."""
    from include.matcher.foundations import pdf_text

    fallback = ""
    if limits.pdf_extractor == "pdfium":
        try:
            pages = pdf_text.pdfium_pages(data, most_chars=2 * limits.max_chars)
        except pdf_text.TooMuchContent as stopped:  # counted by pdfium: no fallback reads it all again
            raise Rejected(stopped.reason, stopped.detail) from None
        except Exception as error:  # noqa: BLE001 - pdfium's errors are pdfplumber's to classify
            fallback = f"pdfium could not read it ({type(error).__name__}: {error})"[:300]
        else:
            verdicts = ((number, pdf_text.looks_wrong(page)) for number, page in enumerate(pages, 1))
            wrong = next(((number, why) for number, why in verdicts if why), None)
            text = "\n".join(page.text for page in pages)
            if wrong:
                fallback = f"page {wrong[0]}: {wrong[1]}"
            else:
                try:
                    accepted = accept_text(text, limits)
                except Rejected as rejected:
                    fallback = f"pdfium's text was refused ({rejected.reason})"
                else:
                    return ParsedText(accepted, "pdf", extractor="pdfium", version=pdf_text.versions())
    text = accept_text(_pdf_text(data, limits), limits)
    return ParsedText(
        text, "pdf", extractor="pdfplumber", version=f"pdfplumber {_pdfplumber_version()}", fallback=fallback
    )


def _pdfplumber_version() -> str:
    import pdfplumber

    return pdfplumber.__version__


def _pdf_text(data: bytes, limits: ParseLimits) -> str:
    import pdfplumber

    try:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            if not pdf.pages:
                raise Rejected("corrupt", "no readable pages (broken cross-reference table or page tree)")
            text = "\n".join(page.extract_text() or "" for page in pdf.pages)
            if len(normalise_whitespace(text)) >= limits.min_chars:
                return text
            if getattr(pdf.doc, "encryption", None) is not None:
                raise Rejected("encrypted", "encrypted PDF: its text cannot be read without the password")
            images = sum(len(page.images) for page in pdf.pages)
            raise Rejected(
                "no_text",
                f"{len(normalise_whitespace(text))} characters on {len(pdf.pages)} page(s) with {images} image(s)"
                + (": a scan needs OCR" if images else ""),
            )
    except Rejected:
        raise
    except Exception as error:  # pdfplumber wraps pdfminer's errors: classify by the real cause
        raise _classify_pdf_error(error) from error


def _classify_pdf_error(error: BaseException) -> Rejected:
    chain = []
    current: BaseException | None = error
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    names = " <- ".join(type(e).__name__ for e in chain)
    messages = " | ".join(f"{type(e).__name__}: {e}" for e in chain if str(e))[:500]
    if re.search(r"Password|Encrypt", names + messages, re.IGNORECASE):
        return Rejected("encrypted", f"password-protected PDF ({messages or names})")
    return Rejected("corrupt", messages or names)


def _docx_text(data: bytes, limits: ParseLimits) -> str:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except zipfile.BadZipFile as error:
        raise Rejected("corrupt", f"not a readable zip archive: {error}") from error
    if len(entries) > limits.max_docx_entries:
        raise Rejected("too_large", f"{len(entries)} zip entries > limit {limits.max_docx_entries}")
    uncompressed = sum(entry.file_size for entry in entries)
    if uncompressed > limits.max_docx_uncompressed_bytes:
        raise Rejected("too_large", f"{uncompressed} bytes uncompressed > limit {limits.max_docx_uncompressed_bytes}")
    names = {entry.filename for entry in entries}
    main_part = _main_document_part(archive, names)
    if main_part is None:
        what = (
            "an XLSX workbook"
            if "xl/workbook.xml" in names
            else f"a zip without a Word main document ({len(names)} entries)"
        )
        raise Rejected("wrong_type", f"not a DOCX: {what}")

    import docx  # python-docx parses with resolve_entities=False: no external entities are fetched

    if b"purl.oclc.org/ooxml/wordprocessingml" in archive.read(main_part)[:4096]:
        return _strict_docx_text(archive, main_part)  # python-docx reads only Transitional OOXML
    try:
        document = docx.Document(io.BytesIO(data))
        parts: list[str] = []
        for section in document.sections:
            for story in (section.header, section.footer):
                parts.extend(p.text for p in story.paragraphs)
        parts.extend(p.text for p in document.paragraphs)
        for table in document.tables:
            for row in table.rows:
                parts.append(" | ".join(cell.text for cell in row.cells))
    except Rejected:
        raise
    except Exception as error:
        raise Rejected("corrupt", f"{type(error).__name__}: {error}"[:500]) from error
    return "\n".join(parts)


MAIN_DOCUMENT_RELATIONSHIPS = (
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument",
    "http://purl.oclc.org/ooxml/officeDocument/relationships/officeDocument",  # Strict
)
WORD_CONTENT_TYPES = (
    "wordprocessingml.document.main+xml",
    "wordprocessingml.template.main+xml",
    "ms-word.document.macroEnabled.main+xml",
)


def _hardened_xml_parser():
    from lxml import etree

    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)


def _main_document_part(archive: zipfile.ZipFile, names: set[str]) -> str | None:
    """The package's main Word part, found as python-docx finds it: the officeDocument relationship of
    ``_rels/.rels`` (its name need not be ``word/document.xml``), checked against ``[Content_Types].xml``.
    None when the package has no Word main part (another OOXML type, or no package at all)."""
    from lxml import etree

    if "_rels/.rels" not in names:
        return "word/document.xml" if "word/document.xml" in names else None
    try:
        rels = etree.fromstring(archive.read("_rels/.rels"), _hardened_xml_parser())
    except etree.XMLSyntaxError as error:
        raise Rejected("corrupt", f"_rels/.rels is not well-formed XML: {error}") from error
    targets = [
        r.get("Target", "")
        for r in rels
        if r.get("Type") in MAIN_DOCUMENT_RELATIONSHIPS and r.get("TargetMode") != "External"
    ]
    part = targets[0].lstrip("/") if targets else None
    if part is None or part not in names:
        return None
    if "[Content_Types].xml" not in names:
        return None
    try:
        types = etree.fromstring(archive.read("[Content_Types].xml"), _hardened_xml_parser())
    except etree.XMLSyntaxError as error:
        raise Rejected("corrupt", f"[Content_Types].xml is not well-formed XML: {error}") from error
    declared = {
        o.get("PartName", "").lstrip("/"): o.get("ContentType", "")
        for o in types
        if etree.QName(o).localname == "Override"
    }
    return part if declared.get(part, "").endswith(WORD_CONTENT_TYPES) else None


def _strict_docx_text(archive: zipfile.ZipFile, main_part: str = "word/document.xml") -> str:
    """Text of an ISO 29500 Strict DOCX: paragraphs of ``w:t`` runs, read with a hardened XML parser."""
    from lxml import etree

    try:
        root = etree.fromstring(archive.read(main_part), _hardened_xml_parser())
    except etree.XMLSyntaxError as error:
        raise Rejected("corrupt", f"{main_part} is not well-formed XML: {error}") from error
    paragraphs = (
        "".join(node.text or "" for node in p.iter() if etree.QName(node).localname == "t")
        for p in root.iter()
        if etree.QName(p).localname == "p"
    )
    return "\n".join(paragraphs)


def _txt_text(data: bytes) -> str:
    from charset_normalizer import from_bytes

    # Bytes that decode as UTF-8 are UTF-8 (detection can take a few zero-width spaces for Mac Roman);
    # UTF-16 (a BOM, or NUL bytes) is left to detection, since it decodes as UTF-8 as well.
    if not data.startswith((b"\xff\xfe", b"\xfe\xff")) and b"\x00" not in data:
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            pass

    best = from_bytes(data).best()
    if best is None:
        raise Rejected("undecodable", "no text encoding fits these bytes")
    text = str(best)
    if text.count("\x00") > len(text) // 100:
        raise Rejected("undecodable", f"decoded as {best.encoding} but full of NUL characters")
    return text
