"""What the encoder reads of a CV: names the project never saw, in every placement, leave a CV's vector
and ranks unchanged; contact details of every shape go; titles, headings and ordinary words stay."""

from __future__ import annotations

import numpy as np
import pytest

from include.matcher.foundations.audit_names import PLACEMENTS, AuditNames
from include.matcher.foundations.encoding import encode_cvs
from include.matcher.foundations.redaction import is_name, redact, redaction

# Names of no group the project ships or benchmarks (audit_names.json, benchmarks/unseen_names.json),
# of scripts and shapes a name detector trips on: particles, hyphens, apostrophes, accents, initials.
NEVER_SEEN = [
    "Oluwaseun Adeyemi",
    "Chidinma Okafor",
    "Zbigniew Brzęczyszczykiewicz",
    "Agnieszka Wójcik",
    "Siobhan O'Connell",
    "Aroha Ngata",
    "Nguyen Thi Huong",
    "Youssef El-Amrani",
    "Hamid bin Rashid",
    "Maarten van der Berg",
    "Jay Baker",  # two ordinary English words that are also a name
    "Anna Lindquist",  # ends like a role noun (-ist)
    "Dr. Leilani K. Kahananui",
    "Björn Ólafsson Jr.",
    "Tupac Quispe",
]

CV = """Summary
Registered nurse with eight years in intensive care, ventilator management and patient education.
Experience
Charge Nurse, Company Name City , State
Led a team of twelve nurses; cut medication errors by a third through a double-check protocol.
Education
Bachelor of Science in Nursing, State University
Skills
Critical care, triage, electronic health records, Spanish"""

JOBS = [
    "Registered nurses assess patient health problems and needs, develop and implement nursing care plans.",
    "Accountants examine, analyze, and interpret accounting records to prepare financial statements.",
    "Chefs direct and may participate in the preparation, seasoning, and cooking of food.",
    "Pilots fly and navigate airplanes and helicopters for airlines and charter companies.",
]


def placed(name: str, placement: str) -> str:
    return AuditNames({"x": (name,), "y": ("Ann Lee",)}).put_on(name, CV, placement)


# Other ways a CV carries a name, beside the audit's three placements.
OTHER_FORMS = {
    "last-comma-first at the top": lambda name: f"{name.split()[-1].upper()}, {' '.join(name.split()[:-1])}\n{CV}",
    "name, e-mail and phone in one line": lambda name: (
        f"{name} | {name.split()[0].lower()}@mail.org | +44 20 7946 0958\n{CV}"
    ),
    "name in capitals above the contact lines": lambda name: (
        f"{name.upper()}\n12 Harbour Road, Leeds LS1 4AP\n07700 900123 · linkedin.com/in/someone-1234\n{CV}"
    ),
    "a bare last line": lambda name: f"{CV}\n{name}",
    "a sign-off on its own line": lambda name: f"{CV}\nKind regards,\n{name}",
    "a labelled header": lambda name: f"Name: {name}\nDate of birth: 4 March 1990\nPronouns: she/her\n{CV}",
}


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_a_name_never_seen_leaves_the_vector_and_the_ranks_unchanged_in_every_audit_placement(base_model, placement):
    bare = encode_cvs(base_model, [CV], pooling="truncate")[0]
    jobs = base_model.encode(JOBS, normalize_embeddings=True)
    variants = encode_cvs(base_model, [placed(name, placement) for name in NEVER_SEEN], pooling="truncate")
    for name, vector in zip(NEVER_SEEN, variants, strict=True):
        assert np.abs(vector - bare).max() < 1e-6, (placement, name, redact(placed(name, placement))[:120])
        assert list(np.argsort(-(jobs @ vector))) == list(np.argsort(-(jobs @ bare)))
    # and the model alone does read them: the test would fail if redaction did nothing
    if placement != "closing":
        whole = encode_cvs(base_model, [placed(NEVER_SEEN[0], placement)], pooling="truncate", redact=False)[0]
        assert np.abs(whole - bare).max() > 1e-3


@pytest.mark.parametrize("form", sorted(OTHER_FORMS))
def test_other_forms_of_a_name_and_its_contact_details_read_as_the_cv_alone(form):
    expected = redact(CV)
    for name in NEVER_SEEN:
        text = OTHER_FORMS[form](name)
        assert redact(text).split() == expected.split(), (form, name, redact(text)[:200])


def test_the_mean_pooled_reading_is_unchanged_too(base_model):
    long_cv = CV + "\n" + "\n".join(f"Managed ward rota and audits, week {i}." for i in range(120))
    bare = encode_cvs(base_model, [long_cv], pooling="mean")[0]
    for placement in PLACEMENTS:
        vector = encode_cvs(base_model, [placed(NEVER_SEEN[2], placement).replace(CV, long_cv)], pooling="mean")[0]
        assert np.abs(vector - bare).max() < 1e-6, placement


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("jane.doe+cv@mail.example.co.uk", "email"),
        ("https://www.linkedin.com/in/jane-doe-123", "url"),
        ("github.com/janedoe", "url"),
        ("(555) 123-4567", "phone"),
        ("+49 30 901820", "phone"),
        ("555.123.4567", "phone"),
        ("221B Baker Street", "address"),
        ("Springfield, IL 62704", "address"),
        ("Leeds LS1 4AP", "address"),
        ("(they/them)", "pronouns"),
        ("D.O.B: 12/05/1988", "labelled"),
        ("Nationality: Canadian", "labelled"),
        ("Photo of the candidate", "labelled"),
    ],
)
def test_contact_details_of_every_shape_are_taken_out(text, kind):
    line = f"{text}" if kind == "labelled" else f"Accountant for ten years. {text}"  # a label starts its line
    found = redaction(f"Summary\n{line}\nSkills\nLedgers")
    assert [item.kind for item in found.removed] == [kind], found.removed
    assert text.split()[-1] not in found.text


@pytest.mark.parametrize(
    "line",
    [
        "SENIOR ACCOUNTANT",
        "Charge Nurse",
        "KEY HOLDER",
        "Work History",
        "Professional Summary",
        "Company Name City , State",
        "HR ADMINISTRATOR/MARKETING ASSOCIATE",
        "Microsoft Office Suite",
        "Contract Accountant",
        "MERCHANDISER, SALES ASSOCIATE",
        "Applied Statistician",
        "Paediatric Cardiologist",
    ],
)
def test_titles_headings_and_template_lines_at_the_top_are_kept(line):
    assert not is_name(line)
    assert redact(f"{line}\n{CV}") == f"{line}\n{CV}"


def test_dates_of_work_figures_and_years_are_not_phones():
    text = "Summary\nPayroll clerk 2015-2019, 2019 2020 2021; ISO 9001 and TS 16949 audits; a 1,250,000 budget\nSkills"
    assert redact(text) == text


def test_what_it_cannot_promise_a_name_inside_a_sentence_is_kept():
    text = "Summary\nAs Jane Doe's deputy I ran the ledger.\nSkills\nExcel"
    assert redact(text) == text


def test_the_stored_text_is_untouched_and_training_reads_what_serving_reads():
    from include.matcher.foundations.text import training_text

    named = placed("Oluwaseun Adeyemi", "contact")
    assert "oluwaseun.adeyemi@example.com" in named  # the caller's text is never changed
    assert training_text(named, strip_titles=False) == redact(named)
    assert "adeyemi" not in training_text(named, strip_titles=True).lower()


def test_turned_off_the_encoder_reads_the_whole_text(base_model, monkeypatch):
    named = placed("Chidinma Okafor", "top")
    monkeypatch.setenv("MATCHER_REDACT_IDENTIFIERS", "false")
    whole = encode_cvs(base_model, [named], pooling="truncate")[0]
    assert np.abs(whole - encode_cvs(base_model, [named], pooling="truncate", redact=False)[0]).max() < 1e-6
    monkeypatch.setenv("MATCHER_REDACT_IDENTIFIERS", "true")
    assert np.abs(whole - encode_cvs(base_model, [named], pooling="truncate")[0]).max() > 1e-3


def test_the_refresh_does_not_reuse_vectors_read_under_other_rules(monkeypatch):
    from include.matcher.stages.embeddings import encoder_id

    monkeypatch.setenv("MATCHER_REDACT_IDENTIFIERS", "true")
    redacted = encoder_id()
    monkeypatch.setenv("MATCHER_REDACT_IDENTIFIERS", "false")
    assert encoder_id() != redacted and redacted.endswith("/redacted-1")


@pytest.mark.shared_data
def test_on_real_resumes_redaction_keeps_every_title_and_nearly_every_word(shared_data, capsys):
    """Five resumes of every category: what is taken out, per CV, with examples (printed)."""
    from include.matcher.foundations.documents import extract_text

    rows = []
    for folder in sorted((shared_data / "resumes").iterdir()):
        for pdf in sorted(folder.glob("*.pdf"))[:5]:
            text = extract_text(pdf.read_bytes(), pdf.name).text
            found = redaction(text)
            title = next(line for line in text.split("\n") if line.strip()).strip()
            removed = sum(len(item.text.split()) for item in found.removed)
            rows.append((f"{folder.name}/{pdf.name}", len(text.split()), removed, title in found.text, found.removed))
    words, removed = sum(r[1] for r in rows), sum(r[2] for r in rows)
    with capsys.disabled():
        print(f"\nredaction on {len(rows)} resumes: {removed} of {words} words taken out")
        for key, total, taken, _, items in rows:
            if items:
                print(f"  {key}: {taken} of {total} words: " + "; ".join(f"{i.kind} {i.text[:40]!r}" for i in items))
    assert len(rows) >= 100
    assert sum(1 for r in rows if not r[3]) <= 1, [r[0] for r in rows if not r[3]]  # titles stay
    assert removed / words < 0.003
    assert sum(1 for r in rows if r[2] == 0) / len(rows) > 0.8
