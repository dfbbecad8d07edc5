"""What the encoder reads of a CV: its text without who the person is.

The model ranks a CV's fit to a job, so it has no use for the person's name, e-mail, phone, street
address, profile links, date of birth, photo caption or pronouns, and reading them is how a name
moves a candidate (the bias audit measures it). :func:`redact` takes them out of the text every
encoding reads (:func:`include.matcher.foundations.encoding.encode_cvs`: validation, the audit, the
embedding refresh, ``VectorMatcher``) and of the training examples; the stored text in ``texts/``
stays whole for the recruiter who opens it.

Detection knows no names: it reads a CV's structure, so it works on names the project has never
seen. Contact details have shapes (e-mail, URL, phone, street address, postal code, pronoun pairs)
and labels (``Date of birth:``, ``Name:``...). A name is a short line (or a part of a contact line)
of two to five capitalised words, at least half of which are not ordinary CV words, in the places a
name stands: the first lines, a line that also held contact details, the last line, or after a
sign-off (``Sincerely,``). Ordinary CV words are the shipped list (``cv_words.txt``: headings, job
titles, industries, common software) and every word the same CV also writes in lower case, so a
title such as ``SENIOR ACCOUNTANT`` or a heading such as ``Work History`` stays. What it cannot
promise: a name written inside a sentence ("I, Jane Doe, ...") or a person named with ordinary words
only ("Rose White") is kept; the audit measures what gets through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# Bumped whenever a rule or cv_words.txt changes what is taken out: the refresh re-encodes stored
# CVs rather than reuse vectors read under the old rules.
RULES_VERSION = 1
WORDS_FILE = Path(__file__).with_name("cv_words.txt")
HEADER_LINES = 3  # a name stands in a CV's first lines (the title and a heading usually follow)
SIGNATURE_LINES = 2  # lines after a sign-off that may hold the signature

EMAIL = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)+")
URL = re.compile(
    r"(?:\bhttps?://|\bwww\.)\S+"
    r"|\b(?:[\w-]+\.)*(?:linkedin|github|gitlab|twitter|x|facebook|instagram|behance|dribbble|medium|xing)"
    r"\.com/\S*",
    re.IGNORECASE,
)
PHONE = re.compile(r"(?<![\w/.,])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,5}\)[\s.-]?)?\d{2,5}(?:[\s.-]\d{2,8}){1,4}(?![\w/])")
STREET = re.compile(
    r"\b(?!(?:19|20)\d\d\b)\d{1,6}[A-Za-z]?\s+(?:[A-Z][\w'.-]*\s+){1,4}"
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Parkway|Pkwy"
    r"|Highway|Hwy|Circle|Square|Crescent|Close|Row)\b\.?(?:,?\s*(?:Apt|Suite|Unit|Flat|#)\.?\s*\w+)?"
)
US_STATES = (
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH OK "
    "OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR"
)
# A US state and ZIP ("IL 62704", not the standard "TS 16949"), or a UK postcode ("LS1 4AP").
POSTAL_CODE = re.compile(
    rf"\b(?:{US_STATES.replace(' ', '|')})\s+\d{{5}}(?:-\d{{4}})?\b|\b[A-Z]{{1,2}}\d[A-Z\d]?\s+\d[A-Z]{{2}}\b"
)
PRONOUNS = re.compile(
    r"\(?\b(?:she|he|they|ze|xe|ey)\s*/\s*(?:her|him|them|hir|zir|xem|em|hers|his|theirs)(?:\s*/\s*\w+)?\b\)?",
    re.IGNORECASE,
)
LABELLED = re.compile(
    r"^\W*(?:full\s+name|first\s+name|last\s+name|candidate(?:'s)?\s+name|name|date\s+of\s+birth|birth\s*date|"
    r"birthday|d\.?o\.?b\.?|born|age|gender|sex|nationality|citizenship|marital\s+status|religion|pronouns?|"
    r"photo|picture|e-?mail|phone|mobile|cell|tel(?:ephone)?|address|home\s+address|linkedin|github|"
    r"website|skype)\s*[:：]",
    re.IGNORECASE,
)
PHOTO = re.compile(r"^\W*(?:photo|photograph|picture|headshot|portrait)\b", re.IGNORECASE)
SIGN_OFF = re.compile(
    r"^\W*(?:sincerely|regards|best\s+regards|kind\s+regards|warm\s+regards|best\s+wishes|respectfully|"
    r"yours\s+(?:truly|sincerely|faithfully)|thank\s+you|thanks|signed|signature)\b[\s,.!:;-]*",
    re.IGNORECASE,
)
SEPARATORS = re.compile(r"\s*(?:[|•·◦▪●\t]|\s[-–—]\s|\s{3,})\s*")
PARTICLES = frozenset(
    """
    van von der den de da das do dos del della di du la le lo y e bin binti bint ibn al el ben ter ten zu st
    """.split()  # noqa: SIM905 (a list of words reads best as words)
)
HONORIFICS = frozenset(
    """
    mr mrs ms miss mx dr prof sir dame
    """.split()  # noqa: SIM905 (a list of words reads best as words)
)
SUFFIXES = frozenset(
    """
    jr sr ii iii iv phd md
    """.split()  # noqa: SIM905 (a list of words reads best as words)
)
# A title holds a role noun ("CHARGE NURSE", "KEY HOLDER"); role nouns that are also common
# surnames (Baker, Cook, Hunter, Mason...) are left out on purpose, so "Jay Baker" is still a name.
TITLE_ENDINGS = frozenset(
    """
    accountant accountants administrator advisor adviser advocate agent aide analyst apprentice architect
    assistant associate attendant attorney auditor banker barista bartender buyer cashier chef clerk consultant
    controller coordinator counselor counsellor dentist designer developer director dispatcher distributor
    editor educator electrician engineer executive fellow handler hostess holder hygienist inspector installer
    instructor intern investigator janitor lead leader lecturer librarian lifeguard machinist manager maintainer manger
    mechanic mentor merchandiser merchant nurse officer operator owner paralegal paramedic pharmacist
    photographer physician planner plumber president principal producer professor programmer psychologist
    publicist receptionist recruiter representative researcher salesman saleswoman scientist scribe secretary
    sergeant server specialist strategist supervisor surgeon teacher technician technologist tech teller
    therapist trainer trainee treasurer tutor underwriter veterinarian volunteer waiter waitress welder worker
    writer
    """.split()  # noqa: SIM905 (a list of words reads best as words)
)
_NAME_TOKEN = re.compile(r"^(?:[^\W\d_]\.|[^\W\d_]+(?:['’-][^\W\d_]+)*)$")
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


@dataclass(frozen=True)
class Removed:
    """One identifier taken out: what kind, and its text."""

    kind: str
    text: str


@dataclass(frozen=True)
class Redaction:
    """A CV's text as the encoder reads it, and what was taken out of it."""

    text: str
    removed: tuple[Removed, ...]


def redact(text: str) -> str:
    """``text`` without the identifiers :func:`redaction` finds."""
    return redaction(text).text


def redacting() -> bool:
    """Whether the encoder reads CVs redacted (``MATCHER_REDACT_IDENTIFIERS``, on unless turned off)."""
    from include.matcher.foundations.settings import deployment_flag

    return deployment_flag("MATCHER_REDACT_IDENTIFIERS")


def encoder_view(texts: list[str], redact_identifiers: bool | None = None) -> list[str]:
    """The CV texts as the encoder reads them: redacted unless ``redact_identifiers`` (default: the
    setting) is false."""
    if redact_identifiers is None:
        redact_identifiers = redacting()
    return [redact(text) for text in texts] if redact_identifiers else list(texts)


@lru_cache(maxsize=1)
def ordinary_words() -> frozenset[str]:
    """The shipped list of words a CV's headings and titles use (lower case)."""
    words = WORDS_FILE.read_text(encoding="utf-8").split()
    return frozenset(word.casefold() for word in words if not word.startswith("#"))


def redaction(text: str) -> Redaction:
    """Every identifier in ``text`` found and taken out; lines left empty by it are dropped."""
    removed: list[Removed] = []
    # words the CV writes in lower case are ordinary words, contact details apart (jane.doe@ is not prose)
    lowercase = {word for word in _WORD.findall(URL.sub(" ", EMAIL.sub(" ", text))) if word.islower()}
    lines = text.split("\n")
    filled = [i for i, line in enumerate(lines) if line.strip()]
    header = set(filled[:HEADER_LINES])
    last = filled[-1] if filled else -1
    signature: set[int] = set()
    kept: list[str] = []
    for index, line in enumerate(lines):
        if not line.strip():
            kept.append(line)
            continue
        if LABELLED.match(line) or (PHOTO.match(line) and len(line.split()) <= 8):
            removed.append(Removed("labelled", line.strip()))
            continue
        line, found = _take_contact_details(line, removed)
        contact = bool(found)
        if "address" in found and len(_WORD.findall(line)) <= 3:  # the town left of an address line goes with it
            if _WORD.search(line):
                removed.append(Removed("address", line.strip(" ,")))
            continue
        sign_off = SIGN_OFF.match(line)
        if sign_off:
            following = [i for i in filled if i > index][:SIGNATURE_LINES]
            signature.update(following)
            rest = _take_names(line[sign_off.end() :], lowercase, removed, whole=True)
            if not rest.strip():  # "Sincerely," and its signature go together: alone it only marks one
                removed.append(Removed("sign-off", line[: sign_off.end()].strip()))
                continue
            line = line[: sign_off.end()] + rest
        elif index in header or index in signature or contact:
            line = _take_names(line, lowercase, removed, whole=False)
        elif index == last:  # a bare last line with commas is a list of skills, not "Doe, Jane"
            line = _take_names(line, lowercase, removed, whole=True, listed=False)
        if (contact or line != lines[index]) and not _WORD.search(line):
            continue  # only separators are left of a line that held identifiers
        kept.append(line)
    if not removed:
        return Redaction(text, ())
    return Redaction(re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip("\n"), tuple(removed))


def _take_contact_details(line: str, removed: list[Removed]) -> tuple[str, set[str]]:
    """The line without e-mails, URLs, phones, street addresses, postal codes and pronoun pairs, and
    the kinds it held."""
    found: set[str] = set()
    for kind, pattern in (
        ("email", EMAIL),
        ("url", URL),
        ("address", STREET),
        ("address", POSTAL_CODE),
        ("phone", PHONE),
        ("pronouns", PRONOUNS),
    ):
        for match in pattern.finditer(line):
            if kind == "phone" and not _looks_like_phone(match.group()):
                continue
            removed.append(Removed(kind, match.group().strip()))
            line = line.replace(match.group(), " ", 1)
            found.add(kind)
    return line, found


def _looks_like_phone(candidate: str) -> bool:
    """A run of digit groups is a phone number by its length, not a list of years or a figure."""
    digits = re.sub(r"\D", "", candidate)
    groups = re.findall(r"\d+", candidate)
    if all(len(group) == 4 and group[:2] in ("19", "20") for group in groups):
        return False  # 2015 2016, 1998-2004
    return 9 <= len(digits) <= 15 or (len(digits) == 7 and re.fullmatch(r"\d{3}[\s.-]\d{4}", candidate) is not None)


def _take_names(line: str, lowercase: set[str], removed: list[Removed], whole: bool, listed: bool = True) -> str:
    """The line without the parts that are a person's name (``whole``: only the whole line may be one;
    ``listed``: a line with commas may be one, "WASHINGTON, Jamal")."""
    if whole:
        if (listed or "," not in line) and is_name(line, lowercase):
            removed.append(Removed("name", line.strip()))
            return ""
        return line
    parts = SEPARATORS.split(line)
    if len(parts) == 1:
        return _take_names(line, lowercase, removed, whole=True)
    names = [part for part in parts if part.strip() and is_name(part, lowercase)]
    for name in names:
        removed.append(Removed("name", name.strip()))
        line = line.replace(name, " ", 1)
    return line


def is_name(text: str, lowercase: set[str] = frozenset()) -> bool:
    """Whether ``text`` is a person's name: two to five capitalised words (particles, initials,
    honorifics and suffixes allowed), some of them not ordinary CV words nor written in lower case
    elsewhere in the CV (``lowercase``), and either all of them unusual or read as a person's name
    by probablepeople (``Jay Baker`` yes, ``Contract Accountant`` no)."""
    if text.rstrip().endswith(":"):
        return False  # a label ("Company Website:"), not what it labels
    tokens = [token.strip(",.;:()[]\"'") for token in text.split()]
    tokens = [token for token in tokens if token]
    core = [
        token
        for token in tokens
        if token.casefold().rstrip(".") not in PARTICLES | HONORIFICS | SUFFIXES or len(tokens) == 1
    ]
    if sum(len(token) > 1 for token in core) < 2 and not (len(core) == 1 and _uncased(core[0]) and len(tokens) == 1):
        return False  # two words at least besides initials ("Objective Â" is a heading and a stray byte)
    if not 2 <= len(core) <= 5 and not (len(core) == 1 and _uncased(core[0]) and len(tokens) == 1):
        return False
    if any(not _NAME_TOKEN.match(token) for token in tokens):
        return False
    if any(token.casefold() in PARTICLES for token in core) or not all(_capitalised(token) for token in core):
        return False
    if any(_is_role(token.casefold()) for token in core):
        return False  # a role noun: a title ("CHARGE NURSE", "MERCHANDISER, SALES ASSOCIATE")
    ordinary = ordinary_words()
    shouted = all(token.isupper() for token in core)  # in capitals throughout, THI is a name, not an acronym
    unusual = [
        token
        for token in core
        if not (
            token.casefold() in ordinary
            or token.lower() in lowercase
            or (token.isupper() and 2 <= len(token) <= 3 and not shouted)  # an acronym among words: SAP, HR
        )
    ]
    if not unusual:
        return False
    return len(unusual) == len(core) or _tagged_as_person(" ".join(tokens))


# Role nouns by their ending (statistician, cardiologist, choreographer, dentist, coordinator,
# consultant): few names end so (the Swedish -quist is the exception it knows).
ROLE_SUFFIXES = ("ician", "ologist", "ographer", "iatrist", "ist", "ator", "tant")


def _is_role(word: str) -> bool:
    singular = word.removesuffix("s")
    if singular.endswith(("quist", "qvist")):  # Lindquist, Bergqvist: surnames
        return False
    return word in TITLE_ENDINGS or singular in TITLE_ENDINGS or singular.endswith(ROLE_SUFFIXES)


def _tagged_as_person(text: str) -> bool:
    """probablepeople's reading (a CRF trained on names and company names): a person, not a firm."""
    import probablepeople

    try:
        _, kind = probablepeople.tag(text)
    except probablepeople.RepeatedLabelError:  # a label twice ("KAHANANUI, Dr. Leilani"): read token by token
        return not any(label.startswith("Corporation") for _, label in probablepeople.parse(text))
    return kind == "Person"


def _capitalised(token: str) -> bool:
    first = token[0]
    return first.isupper() or _uncased(token)


def _uncased(token: str) -> bool:
    """Letters of a script without case (CJK, Arabic, Hebrew...): a name there has no capital."""
    return all(character.isalpha() and character.lower() == character.upper() for character in token)
