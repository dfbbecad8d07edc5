"""A candidate can be forgotten: erasure that reaches every copy the pipeline made (GDPR Art. 17).

:func:`forget` takes raw keys (or content hashes) and removes the CV everywhere:

1. the ledger entry, replaced by a **tombstone**: a keyed hash (HMAC-SHA256) of the key and the raw
   object's ETag, never the key itself (which often holds the person's name). While the raw object is
   unchanged, ingest skips it (the source system may own it and delete it later); a new upload under
   the key (a new ETag: the candidate applied again) is new data. A night that had already listed it
   drops it when it commits (:func:`is_erased`), compare-and-swap on the ledger keeps either write whole.
2. the **current embeddings snapshot**: rewritten without the CV into a new folder (its ANN index
   rebuilt when it has one) and ``current.json`` flipped to it, so search stops returning it at once;
   an older snapshot that holds the CV is deleted.
3. **every other object** under the work area, the registry and the embeddings: rows of JSON Lines
   files (pairs, training metadata, corpus snapshots, parse outcomes, rejects), entries of JSON files
   (manifests, shard lists) and rows of Parquet files (held-out vectors) that name the CV's key, text
   or raw URI are removed; the text cache entry is deleted when no other live key shares it; the raw
   object too, unless ``keep_raw`` (the source system owns it).
4. models trained on it are **marked** (``state/erased_training.json``): ``production`` and the Matcher
   page say so until a clean model is promoted; the ledger changed, so the next night retrains.
5. a **receipt** under ``<work>/audit/erasures/``: when, by whom, how many objects where, hashes and
   counts only.

``dry_run`` lists the same objects and changes nothing. A second run finds nothing left and says so.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import io
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from include.matcher.foundations import layout
from include.matcher.foundations.pointers import read_current, read_production, swap_pointer
from include.matcher.foundations.settings import Locations
from include.matcher.foundations.storage import ObjectStore, PreconditionFailed
from include.matcher.foundations.text import strip_title
from include.matcher.foundations.uris import S3Uri, join_uri
from include.matcher.stages.corpus import erasure_secret, key_hash, read_ledger, tombstone

log = logging.getLogger(__name__)

# Files that hold records (rows, entries) and can name a CV; model weights, tokenizers and HTML cannot.
RECORD_SUFFIXES = (".json", ".jsonl", ".parquet")
# JSON files of a SentenceTransformer folder: its configuration and vocabulary, never a CV.
MODEL_FILES = {
    "config.json",
    "config_sentence_transformers.json",
    "modules.json",
    "sentence_bert_config.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "trainer_state.json",
    "training_config.json",
}
SNIPPET_CHARS = 80


@dataclass
class Targets:
    """What identifies the CVs being erased, wherever a copy of them is."""

    keys: set[str] = field(default_factory=set)
    raw_uris: set[str] = field(default_factory=set)
    text_uris: set[str] = field(default_factory=set)
    text_hashes: set[str] = field(default_factory=set)
    content_hashes: set[str] = field(default_factory=set)
    etags: dict[str, str] = field(default_factory=dict)
    snippets: set[str] = field(default_factory=set)

    log_hashes: set[str] = field(default_factory=set)

    @property
    def needles(self) -> set[str]:
        """Values that, found in a record, make it this CV's."""
        return self.keys | self.raw_uris | self.text_uris | self.text_hashes | self.content_hashes | self.log_hashes

    @property
    def escaped_snippets(self) -> set[str]:
        """The snippets as they read inside a JSON string (newlines and quotes escaped)."""
        return {json.dumps(snippet)[1:-1] for snippet in self.snippets}

    def names(self, value) -> bool:
        if isinstance(value, str):
            return value in self.needles or any(snippet in value for snippet in self.snippets)
        if isinstance(value, dict):
            return any(self.names(v) for v in value.values() if isinstance(v, str))
        return False


# -- what to erase ---------------------------------------------------------------------------------


def resolve(
    keys: list[str], content_hashes: list[str], ledger: dict, locations: Locations, storage: ObjectStore
) -> Targets:
    """The erased CVs' identities: their ledger entries (a key may be given relative to the raw
    prefix), the text they parsed to (for a text snippet that finds copies without a key), their ETags."""
    raw = S3Uri.parse(locations.raw_cvs)
    base = f"{raw.key}/" if raw.key else ""
    objects = ledger["objects"]
    targets = Targets(content_hashes=set(content_hashes))
    wanted = set()
    for key in keys:
        wanted.add(key if key in objects or not base or key.startswith(base) else base + key)
    wanted |= {k for k, e in objects.items() if content_hashes and e.get("content_hash") in content_hashes}
    for key in sorted(wanted):
        targets.keys.add(key)
        targets.raw_uris.add(f"s3://{raw.bucket}/{key}")
        entry = objects.get(key)
        if entry is None:
            continue
        targets.etags[key] = entry["etag"]
        for name, found in (("text_uri", targets.text_uris), ("text_hash", targets.text_hashes)):
            if entry.get(name):
                found.add(entry[name])
        if entry.get("content_hash"):
            targets.content_hashes.add(entry["content_hash"])
        if entry.get("text_uri") and storage.exists(entry["text_uri"]):
            text = strip_title(json.loads(storage.get_bytes(entry["text_uri"]))["text"])
            if len(text) >= 40:
                targets.snippets.add(text[:SNIPPET_CHARS])
    return targets


# -- scrubbing one object --------------------------------------------------------------------------


def scrub_json(value, targets: Targets):
    """``value`` without the list items and mapping entries that name the targets; how many went."""
    removed = 0
    if isinstance(value, dict):
        kept = {}
        for k, v in value.items():
            if k in targets.needles:
                removed += 1
                continue
            kept[k], count = scrub_json(v, targets)
            removed += count
        return kept, removed
    if isinstance(value, list):
        kept = []
        for item in value:
            if targets.names(item):
                removed += 1
                continue
            item, count = scrub_json(item, targets)
            removed += count
            kept.append(item)
        return kept, removed
    return value, 0


def scrub_jsonl(blob: bytes, targets: Targets, drop_rows: set[int] | None = None) -> tuple[bytes, int]:
    rows = [line for line in blob.decode().splitlines() if line.strip()]
    kept, removed = [], 0
    for index, line in enumerate(rows):
        row = json.loads(line)
        if (drop_rows and index in drop_rows) or targets.names(row) or any(s in line for s in targets.escaped_snippets):
            removed += 1
            continue
        row, count = scrub_json(row, targets)
        removed += count
        kept.append(json.dumps(row))
    return ("".join(line + "\n" for line in kept)).encode(), removed


def scrub_parquet(blob: bytes, targets: Targets) -> tuple[bytes, int]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(blob))
    columns = [name for name in ("key", "id", "source_key") if name in table.column_names]
    if not columns:
        return blob, 0
    hit = None
    for name in columns:
        mask = pc.is_in(table.column(name), value_set=pa.array(sorted(targets.needles), pa.string()))
        hit = mask if hit is None else pc.or_(hit, mask)
    removed = pc.sum(hit).as_py() or 0
    if not removed:
        return blob, 0
    buffer = io.BytesIO()
    pq.write_table(table.filter(pc.invert(hit)), buffer)
    return buffer.getvalue(), int(removed)


def training_rows_to_drop(storage: ObjectStore, metadata_uri: str, targets: Targets) -> set[int]:
    """Rows of a pairs folder's ``train.jsonl`` that are the targets' (aligned with its training metadata)."""
    if not storage.exists(metadata_uri):
        return set()
    rows = storage.get_jsonl(metadata_uri)
    return {i for i, row in enumerate(rows) if row.get("source_key") in targets.keys}


# -- the erasure -----------------------------------------------------------------------------------


@dataclass
class Change:
    uri: str
    action: str  # rewrite | delete
    records: int = 0


def forget(
    keys: list[str],
    content_hashes: list[str],
    locations: Locations,
    storage: ObjectStore,
    *,
    dry_run: bool = False,
    keep_raw: bool = False,
    by: str | None = None,
) -> dict:
    """Erase the CVs everywhere (module docstring); the receipt (written unless ``dry_run``)."""
    by = by or getpass.getuser()
    ledger, _ = read_ledger(storage, locations)
    targets = resolve(keys, content_hashes, ledger, locations, storage)
    secret = erasure_secret(storage, locations) if not dry_run else b""
    if secret:  # the search log names candidates by keyed hash: the erased ones' hashes go too
        targets.log_hashes = {key_hash(secret, key) for key in targets.keys}
    changes: list[Change] = []
    trained_on: set[str] = set()

    if not dry_run:
        commit_tombstones(targets, locations, storage, secret)
    current = read_current(storage, locations.embeddings)
    changes += rewrite_current_snapshot(current, targets, locations, storage, dry_run)
    skip = {change.uri for change in changes}
    for root in (locations.work, locations.registry, locations.embeddings):
        changes += scrub_tree(root, targets, locations, storage, dry_run, skip, trained_on)
    changes += delete_sources(targets, ledger, locations, storage, dry_run, keep_raw)
    if not dry_run and trained_on:
        mark_trained_on_erased(trained_on, locations, storage)

    receipt = {
        "id": uuid.uuid4().hex[:12],
        "at": datetime.now(UTC).isoformat(),
        "by": by,
        "dry_run": dry_run,
        "keep_raw": keep_raw,
        # keyed hashes of what was asked: the receipt names no one
        "targets": sorted(hmac.new(secret or b"dry-run", k.encode(), hashlib.sha256).hexdigest() for k in targets.keys),
        "found_in_ledger": len(targets.etags),
        "objects": {action: sum(1 for c in changes if c.action == action) for action in ("rewrite", "delete")},
        "records_removed": sum(c.records for c in changes),
        "by_area": by_area(changes, locations),
        "models_trained_on_it": sorted(trained_on),
        "nothing_left": not changes and not targets.etags,
    }
    if not dry_run:
        storage.put_json(
            join_uri(locations.work, "audit", "erasures", f"{receipt['at'][:19]}-{receipt['id']}.json"), receipt
        )
    log.info("forget: %s", json.dumps({k: receipt[k] for k in ("objects", "records_removed", "nothing_left")}))
    receipt["changes"] = [c.__dict__ for c in changes]  # for the caller (dry run's list); not stored
    return receipt


def by_area(changes: list[Change], locations: Locations) -> dict[str, int]:
    areas = {"work": locations.work, "registry": locations.registry, "embeddings": locations.embeddings}
    counts = dict.fromkeys((*areas, "raw"), 0)
    for change in changes:
        name = next((n for n, root in areas.items() if change.uri.startswith(root.rstrip("/") + "/")), "raw")
        counts[name] += 1
    return counts


def commit_tombstones(targets: Targets, locations: Locations, storage: ObjectStore, secret: bytes) -> None:
    """Remove the entries and add their tombstones, by compare-and-swap (a racing night's write is
    retried against this one, and this one against it)."""
    for _ in range(20):
        ledger, etag = read_ledger(storage, locations)
        erased = ledger.setdefault("erased", {})
        for key in targets.keys:
            entry = ledger["objects"].pop(key, None)
            # The version the ledger knew and the one in the raw prefix now (a night may be parsing it)
            head = storage.head(f"s3://{S3Uri.parse(locations.raw_cvs).bucket}/{key}")
            for etag_of in {(entry or {}).get("etag") or targets.etags.get(key), head.etag if head else None}:
                if etag_of:
                    erased[tombstone(secret, key, etag_of)] = {"at": datetime.now(UTC).isoformat()}
        try:
            if etag is None:
                storage.put_json(layout.ledger(locations.work), ledger, if_none_match=True)
            else:
                storage.put_json(layout.ledger(locations.work), ledger, if_match=etag)
            return
        except PreconditionFailed:
            continue
    raise RuntimeError("the ledger kept changing while the erasure tried to write it: run forget again")


def rewrite_current_snapshot(
    current: dict | None, targets: Targets, locations: Locations, storage: ObjectStore, dry_run: bool
) -> list[Change]:
    """A copy of the snapshot search serves, without the targets, and the pointer flipped to it."""
    if current is None:
        return []
    manifest = storage.get_json(current["manifest"])
    parts = manifest["parts"]["cvs"]
    scrubbed = [(part, *scrub_parquet(storage.get_bytes(part["uri"]), targets)) for part in parts]
    if not any(removed for _, _, removed in scrubbed):
        return []
    old = layout.Snapshot(current["uri"])
    new = layout.Snapshot(current["uri"].rstrip("/") + f"-erased-{uuid.uuid4().hex[:8]}")
    changes = [Change(old.uri, "delete", sum(r for _, _, r in scrubbed))]
    if dry_run:
        return changes
    new_parts = []
    for part, blob, _ in scrubbed:
        uri = join_uri(new.uri, part["uri"][len(old.uri.rstrip("/")) + 1 :])
        storage.put_bytes(uri, blob)
        rows = _parquet_rows(blob)
        new_parts.append({**part, "uri": uri, "rows": rows})
    jobs = []
    for part in manifest["parts"]["jobs"]:
        uri = join_uri(new.uri, part["uri"][len(old.uri.rstrip("/")) + 1 :])
        storage.put_bytes(uri, storage.get_bytes(part["uri"]))
        jobs.append({**part, "uri": uri})
    new_manifest = {**manifest, "parts": {**manifest["parts"], "cvs": new_parts, "jobs": jobs}}
    new_manifest["counts"] = {**manifest.get("counts", {}), "cvs": sum(p["rows"] for p in new_parts)}
    new_manifest["erasure_rewrite_of"] = old.uri
    if manifest.get("cv_index"):
        from include.matcher.stages.embeddings import build_cv_index

        new_manifest["cv_index"] = build_cv_index(new, new_parts, storage)
    storage.put_json(new.manifest, new_manifest)
    swap_pointer(
        storage,
        layout.current_embeddings(locations.embeddings),
        {**current, "uri": new.uri, "manifest": new.manifest, "updated_at": datetime.now(UTC).isoformat()},
        current,
    )
    storage.delete_prefix(old.uri.rstrip("/") + "/")
    return changes


def _parquet_rows(blob: bytes) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(io.BytesIO(blob)).metadata.num_rows


def scrub_tree(
    root: str,
    targets: Targets,
    locations: Locations,
    storage: ObjectStore,
    dry_run: bool,
    skip: set[str],
    trained_on: set[str],
) -> list[Change]:
    """Every record file under ``root`` rewritten without the targets; a non-current embeddings
    snapshot that holds them deleted whole (no pointer names it)."""
    current = read_current(storage, locations.embeddings)
    live_snapshot = current["uri"].rstrip("/") + "/" if current else None
    changes: list[Change] = []
    doomed_snapshots: set[str] = set()
    infos = [info for info in storage.list(root) if info.uri.endswith(RECORD_SUFFIXES)]
    for info in infos:
        uri = info.uri
        if any(uri.startswith(s.rstrip("/") + "/") for s in skip) or uri == layout.ledger(locations.work):
            continue
        if uri.startswith(join_uri(locations.work, "audit", "erasures") + "/") or uri.rsplit("/", 1)[-1] in MODEL_FILES:
            continue  # receipts hold hashes of no use to anyone; a model's configuration holds no CV
        if uri.startswith(join_uri(locations.work, "texts") + "/"):
            continue  # other CVs' texts; the targets' own entries are delete_sources' to decide
        if uri.endswith("/train.jsonl") or uri.endswith(".jsonl"):
            drop = (
                training_rows_to_drop(storage, uri.replace("/train.jsonl", "/training_metadata.jsonl"), targets)
                if uri.endswith("/train.jsonl")
                else None
            )
            blob, removed = scrub_jsonl(storage.get_bytes(uri), targets, drop)
        elif uri.endswith(".parquet"):
            blob, removed = scrub_parquet(storage.get_bytes(uri), targets)
        else:
            data = json.loads(storage.get_bytes(uri))
            data, removed = scrub_json(data, targets)
            blob = json.dumps(data).encode()
        if not removed:
            continue
        if uri.endswith("training_metadata.jsonl"):
            trained_on.add(uri.rsplit("/", 1)[0])
        if root == locations.embeddings and (live_snapshot is None or not uri.startswith(live_snapshot)):
            doomed_snapshots.add(layout.Snapshot.of_part(uri).uri if "/cvs/" in uri else uri.rsplit("/", 1)[0])
            continue
        changes.append(Change(uri, "rewrite", removed))
        if not dry_run:
            storage.put_bytes(uri, blob)
    for snapshot in sorted(doomed_snapshots):
        changes.append(Change(snapshot, "delete"))
        if not dry_run:
            storage.delete_prefix(snapshot.rstrip("/") + "/")
    return changes


def delete_sources(
    targets: Targets, ledger: dict, locations: Locations, storage: ObjectStore, dry_run: bool, keep_raw: bool
) -> list[Change]:
    """The text cache entries no other live key shares, and the raw objects (unless ``keep_raw``)."""
    changes = []
    shared = {e.get("text_uri") for k, e in ledger["objects"].items() if k not in targets.keys}
    for uri in sorted(targets.text_uris - shared):
        if storage.exists(uri):
            changes.append(Change(uri, "delete"))
            if not dry_run:
                storage.delete(uri)
    if not keep_raw:
        for uri in sorted(targets.raw_uris):
            if storage.exists(uri):
                changes.append(Change(uri, "delete"))
                if not dry_run:
                    storage.delete(uri)
    return changes


ERASED_TRAINING = "erased_training.json"


def mark_trained_on_erased(model_folders: set[str], locations: Locations, storage: ObjectStore) -> None:
    """Remember which models (run candidates, registry versions) were trained on data since erased."""
    uri = join_uri(locations.work, "state", ERASED_TRAINING)
    found = storage.get_with_etag(uri)
    marked = json.loads(found[0]) if found else {"models": []}
    marked["models"] = sorted(set(marked["models"]) | model_folders)
    marked["updated_at"] = datetime.now(UTC).isoformat()
    storage.put_json(uri, marked)


def production_trained_on_erased(locations: Locations, storage: ObjectStore) -> bool:
    """Whether the model in production was trained on a CV erased since (until a clean one is promoted)."""
    production = read_production(storage, locations.registry)
    found = storage.get_with_etag(join_uri(locations.work, "state", ERASED_TRAINING))
    if production is None or found is None:
        return False
    return production["uri"].rstrip("/") in {m.rstrip("/") for m in json.loads(found[0])["models"]}
