"""Labelled CV folders outside the pipeline: a local ``<CATEGORY>/<file>`` tree or an ``s3://`` prefix.

Used by the CLI's ``fine-tune`` and ``evaluate`` (the old management command's ``--data-root``) and
by benchmarks; the DAG reads the raw bucket through ingest and parse instead.
"""

from __future__ import annotations

from pathlib import Path

from include.matcher.documents import Rejected, extract_text
from include.matcher.ingest import classify_key
from include.matcher.settings import ParseLimits
from include.matcher.storage import S3Uri, ObjectStore, Storage
from include.matcher.text import text_fingerprint


def iter_files(data_root: str, storage: ObjectStore | None = None):
    """(relative key, bytes loader) for every file below ``data_root``."""
    if data_root.startswith("s3://"):
        storage = storage or Storage()
        root = S3Uri.parse(data_root)
        base = f"{root.key}/" if root.key else ""
        for info in storage.list(data_root):
            yield info.key[len(base) :], (lambda uri=info.uri: storage.get_bytes(uri))
    else:
        root_path = Path(data_root)
        if not root_path.is_dir():
            raise FileNotFoundError(f"data root {data_root!r} is not a folder")
        for path in sorted(p for p in root_path.rglob("*") if p.is_file()):
            yield path.relative_to(root_path).as_posix(), path.read_bytes


def load_labelled_cvs(data_root: str, storage: ObjectStore | None = None, limits: ParseLimits | None = None) -> tuple[list[dict], list[dict]]:
    """(CVs, rejects): CVs are dicts with key, category, text, text_hash; rejects say why."""
    cvs, rejects = [], []
    for key, load in iter_files(data_root, storage):
        category, why = classify_key(key)
        if why:
            rejects.append({"key": key, "reason": why})
            continue
        try:
            parsed = extract_text(load(), key, limits)
        except Rejected as rejected:
            rejects.append({"key": key, "reason": rejected.reason, "detail": rejected.detail})
            continue
        cvs.append({"key": key, "category": category, "text": parsed.text, "text_hash": text_fingerprint(parsed.text)})
    return cvs, rejects
