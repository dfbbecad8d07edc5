"""Small text helpers shared by splitting, evaluation and serving."""

from __future__ import annotations

import hashlib
import re
import unicodedata


def text_fingerprint(text: str) -> str:
    """Hash of the text modulo case and whitespace: exact duplicates share it."""
    canonical = re.sub(r"\s+", " ", text).strip().lower()
    return hashlib.sha256(canonical.encode()).hexdigest()


def strip_title(text: str) -> str:
    """Drop the first non-empty line, which in many resumes is the job title (and names the label)."""
    lines = text.strip().split("\n", 1)
    return lines[1].strip() if len(lines) > 1 else ""


def training_text(text: str, strip_titles: bool) -> str:
    """The CV side of a training example as the encoder will read it at serving: without identifiers
    (:func:`~include.matcher.foundations.redaction.encoder_view`), then without its title line when
    asked, unless that leaves nothing."""
    from include.matcher.foundations.redaction import encoder_view

    (text,) = encoder_view([text])
    return (strip_title(text) or text) if strip_titles else text


def category_name(name: str) -> str:
    """A category as compared everywhere (folders, the jobs file): NFC-normalised, so ``é`` typed two
    ways is one category."""
    return unicodedata.normalize("NFC", name)
