"""Every file of ../shared/data/bad-inputs through the real parse stage: parsed or rejected for the right reason."""

import csv

import pytest

from include.matcher.foundations.uris import join_uri
from include.matcher.stages.ingest import ingest
from include.matcher.stages.parse import parse

pytestmark = pytest.mark.shared_data

DAMAGED = {"corrupt", "no_text"}  # a fuzzed file either fails to parse or yields (almost) nothing
SHORT = {"parsed", "no_text"}  # well-formed but little text (a test fixture, not a CV)
EXPECTED = {
    "docx2python__libreoffice_conversion.docx": {"parsed"},
    "docx2python__strict.docx": SHORT,
    "mammoth__empty.docx": {"no_text"},
    "mammoth__strict-format.docx": SHORT,
    "pdfminer__aes-256-r6.pdf": {"encrypted"},
    "pdfminer__encrypted_doc_no_id.pdf": {"encrypted"},
    "pypdf__encrypted-file.pdf": {"encrypted"},
    "pysamples__libreoffice-writer-password.pdf": {"encrypted"},
    "poi__bug53475-password-is-pass.docx": {"encrypted"},
    "pdfminer__pdf-with-jbig2.pdf": {"no_text"},
    "pdfminer__zen_of_python_corrupted.pdf": {"parsed", "corrupt"},
    "pdfplumber__issue-463-example.pdf": {"parsed"},
    "pdfplumber__issue-948.zip.pdf": {"wrong_type"},
    "poi__invalid.xlsx.docx": {"wrong_type"},
    "poi__poc-xmlbomb.xlsx.docx": {"wrong_type"},
    "poi__ExternalEntityInText.docx": SHORT,
    "pdfminer__issue_566_test_2.pdf": SHORT,
    "pdfminer__issue-449-vertical.pdf": SHORT,
    "pysamples__habibi.pdf": SHORT,
}


def expected_for(name: str) -> set[str]:
    if name in EXPECTED:
        return EXPECTED[name]
    if name.startswith("poi__c"):  # OSS-Fuzz and crash reproducers
        return {"corrupt"}
    return DAMAGED


def test_every_bad_input_ends_in_exactly_one_place_with_the_right_reason(shared_data, storage, locations):
    folder = shared_data / "bad-inputs"
    with open(folder / "MANIFEST.tsv") as manifest:
        manifest_rows = list(csv.DictReader(manifest, delimiter="\t"))
    assert len(manifest_rows) == 42
    storage.put_json(locations.jobs_file, {"MIXED": "any job"})
    for row in manifest_rows:
        storage.put_bytes(
            join_uri(locations.raw_cvs, "MIXED", row["filename"]), (folder / row["filename"]).read_bytes()
        )

    run = join_uri(locations.work, "runs", "bad")
    parse(ingest(run, locations, storage), run, locations, storage)

    parsed = {r["key"].rsplit("/", 1)[1]: r for r in storage.get_jsonl(join_uri(run, "parse", "parsed.jsonl"))}
    rejects = {r["key"].rsplit("/", 1)[1]: r for r in storage.get_jsonl(join_uri(run, "parse", "rejects.jsonl"))}
    assert not set(parsed) & set(rejects)
    assert set(parsed) | set(rejects) == {row["filename"] for row in manifest_rows}
    wrong = {
        name: (rejects[name]["reason"] if name in rejects else "parsed", rejects.get(name, {}).get("detail"))
        for name in set(parsed) | set(rejects)
        if (rejects[name]["reason"] if name in rejects else "parsed") not in expected_for(name)
    }
    assert not wrong, wrong
    assert all(r["detail"] for r in rejects.values()), "every reject says what the parser reported"
    summary = storage.get_json(join_uri(run, "parse", "summary.json"))
    assert sum(summary["rejects_by_reason"].values()) == len(rejects)


def test_external_entities_are_never_resolved(shared_data):
    from include.matcher.foundations.documents import Rejected, extract_text
    from include.matcher.foundations.settings import ParseLimits

    data = (shared_data / "bad-inputs" / "poi__ExternalEntityInText.docx").read_bytes()
    try:
        text = extract_text(data, "x.docx", ParseLimits(min_chars=1)).text
    except Rejected as rejected:
        pytest.fail(f"rejected: {rejected}")
    assert "Here should not be the POI web site" in text and "Apache" not in text


def test_every_bad_input_ends_under_the_pdfium_extractor_exactly_as_under_pdfplumber(shared_data):
    """The fast extractor changes how text is read, never where a file ends: parsed stays parsed,
    and every reject keeps its reason (the isolated workers, limits and fallback as in a night)."""
    from include.matcher.foundations.documents import Rejected
    from include.matcher.foundations.isolation import Document, IsolatedParser
    from include.matcher.foundations.settings import ParseLimits

    folder = shared_data / "bad-inputs"
    documents = [Document(p.name, p.read_bytes(), p.name) for p in sorted(folder.iterdir()) if p.name != "MANIFEST.tsv"]
    assert len(documents) == 42
    ends = {}
    for extractor in ("pdfplumber", "pdfium"):
        with IsolatedParser(limits=ParseLimits(pdf_extractor=extractor)) as pool:
            ends[extractor] = {
                name: result.reason if isinstance(result, Rejected) else "parsed"
                for name, result in pool.map(documents)
            }
    assert ends["pdfium"] == ends["pdfplumber"]
    assert set(ends["pdfium"].values()) >= {"parsed", "encrypted", "corrupt", "no_text", "wrong_type"}
