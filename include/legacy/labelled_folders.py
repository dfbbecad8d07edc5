"""Labelled CV folders outside the pipeline: a local ``<CATEGORY>/<file>`` tree or an ``s3://`` prefix.

What the old management command read (its ``--data-root``), and what ``evaluate`` and the benchmarks
read. Files are parsed in the same isolated worker pool, with the same limits, as the pipeline's
parse stage, so a hostile file costs one reject here too.
"""

from __future__ import annotations

from pathlib import Path

from include.matcher.foundations.documents import Rejected
from include.matcher.foundations.isolation import Document, IsolatedParser
from include.matcher.foundations.settings import ParseLimits, parse_limits_from_env
from include.matcher.foundations.storage import ObjectStore, Storage
from include.matcher.foundations.text import text_fingerprint
from include.matcher.foundations.uris import S3Uri
from include.matcher.stages.ingest import classify_key


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


def load_labelled_cvs(
    data_root: str, storage: ObjectStore | None = None, limits: ParseLimits | None = None
) -> tuple[list[dict], list[dict]]:
    """(CVs, rejects): CVs are dicts with key, category, text, text_hash; rejects say why."""
    limits = limits or parse_limits_from_env()
    rejects, jobs = [], []
    for key, load in iter_files(data_root, storage):
        category, why = classify_key(key)
        if why:
            rejects.append({"key": key, "reason": why})
        else:
            jobs.append((key, category, load()))
    categories = {key: category for key, category, _ in jobs}
    cvs = []
    with IsolatedParser(limits=limits) as pool:
        for key, result in pool.map(Document(key, data, key) for key, _, data in jobs):
            if isinstance(result, Rejected):
                rejects.append({"key": key, "reason": result.reason, "detail": result.detail})
            else:
                cvs.append(
                    {
                        "key": key,
                        "category": categories[key],
                        "text": result.text,
                        "text_hash": text_fingerprint(result.text),
                    }
                )
    return sorted(cvs, key=lambda cv: cv["key"]), rejects
