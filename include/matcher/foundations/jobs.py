"""Job descriptions: a JSON object mapping each category to a text or a list of texts."""

from __future__ import annotations

import json
from pathlib import Path

from include.matcher.foundations.text import category_name


def parse_job_descriptions(raw: bytes | str) -> dict[str, list[str]]:
    """Validate and normalise ``job_descriptions.json`` to ``{category: [text, ...]}``."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"job descriptions are not valid JSON: {error}") from error
    except RecursionError:
        raise ValueError("job descriptions are nested too deeply to be {category: text | [texts]}") from None
    if not isinstance(data, dict) or not data:
        raise ValueError("job descriptions must be a non-empty JSON object: {category: text | [texts]}")
    jobs: dict[str, list[str]] = {}
    for category, value in data.items():
        texts = [value] if isinstance(value, str) else value
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise ValueError(f"category {category!r}: expected a non-empty text or list of non-empty texts")
        if category_name(category) in jobs:
            raise ValueError(f"category {category!r} appears twice (once in another Unicode normal form)")
        jobs[category_name(category)] = [t.strip() for t in texts]
    return jobs


def load_job_descriptions(source: str | Path, storage=None) -> dict[str, list[str]]:
    """Read job descriptions from a local path or an ``s3://`` URI."""
    if str(source).startswith("s3://"):
        from include.matcher.foundations.storage import Storage

        return parse_job_descriptions((storage or Storage()).get_bytes(str(source)))
    return parse_job_descriptions(Path(source).read_bytes())
