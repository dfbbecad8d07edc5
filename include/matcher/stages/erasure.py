"""A candidate can be forgotten: erasure that reaches every copy the pipeline made (GDPR Art. 17).

:func:`erase` takes raw keys (or content hashes) and removes the CV everywhere:

1. the ledger entry, replaced by a **tombstone**: a keyed hash (HMAC-SHA256) of the key, the raw
   object's ETag and the second it was written, never the key itself (which often holds the person's
   name). While that object stays, ingest skips it (the source system may own it and delete it
   later); a new upload under the key (the candidate applied again, even with the same bytes) is new
   data. A night that had already listed it drops it when it commits (:func:`is_erased`);
   compare-and-swap on the ledger keeps either write whole. A candidate trained on it while the
   night ran is refused at promote (:func:`include.matcher.stages.registry.refuse_if_trained_on_erased`).
2. the **current embeddings snapshot**: rewritten without the CV into a new folder (its ANN index
   rebuilt when it has one) and ``current.json`` flipped to it, so search stops returning it at once;
   an older snapshot that holds the CV is deleted, one a night is still building is rewritten in place.
3. **every other object** under the work area, the registry and the embeddings: rows of JSON Lines
   files (pairs, training metadata, corpus snapshots, parse outcomes, rejects), entries of JSON files
   (manifests, shard lists) and rows of Parquet files (held-out vectors) that name the CV's key or raw
   URI (or, in the search log, its keyed hash) are removed. A record is matched by the identity of one
   CV, never by its text: two CVs with the same text (the same file under two keys) are two people.
   Files that pair row by row (``train.jsonl`` and ``training_metadata.jsonl``) lose the same rows.
   The text cache entry is deleted when no other live key shares it; the raw object too, unless
   ``keep_raw`` (the source system owns it).
4. models trained on it are **marked** (``state/erased_training.json``): ``production`` and the Matcher
   page say so until a clean model is promoted; the ledger changed, so the next night retrains.
5. a **receipt** under ``<work>/audit/erasures/``: when, by whom, how many CVs were asked for and
   found, how many objects where; counts only (a keyed hash of a key made with the bucket's own key
   would let anyone who reads the bucket confirm that a named person was erased).

What is asked is checked before anything is read (:func:`check_request`): a content hash is 64
hexadecimal characters, a key is a key under a known raw prefix (``CATEGORY/file``, the bucket key or
its ``s3://`` URI; compared in Unicode NFC, so a name typed on one system finds the file another
wrote). An erasure is all or nothing: the CVs' locations are kept in the ledger (``erasing``) from the
tombstone until the last object is done, so a run that fails half-way finishes when run again.
``dry_run`` lists the same objects and changes nothing. A key that nothing names (misspelt, never
ingested, or already erased) is reported as not found: the receipt says so and the CLI exits 3.
"""

from __future__ import annotations

import getpass
import io
import json
import logging
import re
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from include.matcher.foundations import layout
from include.matcher.foundations.errors import BadInput
from include.matcher.foundations.pointers import read_current, read_production, swap_pointer
from include.matcher.foundations.records import Count, Record, UnreadableRecord
from include.matcher.foundations.settings import Locations
from include.matcher.foundations.storage import ObjectStore, PreconditionFailed
from include.matcher.foundations.uris import S3Uri, join_uri
from include.matcher.stages.corpus import (
    Ledger,
    erasure_secret,
    existing_erasure_secret,
    key_hash,
    read_ledger,
    tombstone,
)

log = logging.getLogger(__name__)

# Files that hold records (rows, entries) and can name a CV; model weights, tokenizers and HTML cannot.
RECORD_SUFFIXES = (".json", ".jsonl", ".parquet")
CONTENT_HASH = re.compile(r"[0-9a-f]{64}")
MOST_KEY_BYTES = 1024  # S3's own limit on a key
ERASED_SUFFIX = re.compile(r"(-erased-[0-9a-f]{8})+$")


class ErasureRequestError(BadInput, ValueError):
    """What was asked to be erased is not a CV's key or a content hash (nothing was read or changed)."""


@dataclass
class Targets:
    """What identifies the CVs being erased, wherever a copy of them is: each CV's key (as the ledger
    spells it and in NFC), its raw URI and, in the search log, its keyed hash. Never its text."""

    keys: set[str] = field(default_factory=set)
    raw_uris: set[str] = field(default_factory=set)
    text_uris: set[str] = field(default_factory=set)
    etags: dict[str, str] = field(default_factory=dict)
    pending: dict[str, dict] = field(default_factory=dict)  # key -> what an interrupted erasure kept
    owner: dict[str, str] = field(default_factory=dict)  # each identifying value -> the key it names
    found: set[str] = field(default_factory=set)  # keys something was found of
    asked: dict[str, set[str]] = field(default_factory=dict)  # each value asked -> the keys it chose

    def not_found(self) -> list[str]:
        """The values asked for that named nothing: no entry, raw file, record or unfinished erasure."""
        return [value for value, keys in self.asked.items() if not keys & self.found]

    def add(self, key: str, raw_uri: str) -> None:
        self.keys.add(key)
        self.raw_uris.add(raw_uri)
        for value in {key, unicodedata.normalize("NFC", key), raw_uri, unicodedata.normalize("NFC", raw_uri)}:
            self.owner[value] = key

    def add_log_hashes(self, secret: bytes) -> None:
        for key in list(self.keys):
            self.owner[key_hash(secret, key)] = key
            self.owner[key_hash(secret, unicodedata.normalize("NFC", key))] = key

    @property
    def needles(self) -> set[str]:
        """Values that, found in a record, make it this CV's."""
        return set(self.owner)

    def names(self, value) -> bool:
        """Whether ``value`` (a string, or a record's top-level strings) names one of the CVs; the
        key it names counts as found."""
        if isinstance(value, str):
            key = self.owner.get(value)
        elif isinstance(value, dict):
            key = next((self.owner[v] for v in value.values() if isinstance(v, str) and v in self.owner), None)
        else:
            key = None
        if key is not None:
            self.found.add(key)
            if isinstance(value, dict) and isinstance(value.get("text_uri"), str):
                # a parse outcome not yet in the ledger (a night parsing it now): its text goes too
                self.text_uris.add(value["text_uri"])
        return key is not None


# -- what to erase ---------------------------------------------------------------------------------


def check_request(keys: list[str], content_hashes: list[str], known_prefixes: list[str]) -> tuple[list, list]:
    """The request as ``([(bucket, key)], [content hash])``, every key in NFC, or
    :class:`ErasureRequestError` naming the first value that is not a CV's key or a content hash.

    ``known_prefixes``: the raw prefixes CVs are ingested from (the deployment's first: a relative
    ``CATEGORY/file`` is under it). A key must lie strictly under one of them, with no empty, ``.`` or
    ``..`` segment: a category name, a field name or ``../..`` is refused, never taken as a key."""
    hashes = []
    for value in content_hashes:
        digest = value.strip().lower() if isinstance(value, str) else ""
        if not CONTENT_HASH.fullmatch(digest):
            raise ErasureRequestError(f"{value!r} is not a content hash: a sha256 is 64 hexadecimal characters")
        hashes.append(digest)
    prefixes = [S3Uri.parse(prefix) for prefix in known_prefixes]
    deployment = prefixes[0]
    base = f"{deployment.key.rstrip('/')}/" if deployment.key else ""
    wanted = []
    for value in keys:
        key = unicodedata.normalize("NFC", value) if isinstance(value, str) else ""
        if key.startswith("s3://"):
            uri = S3Uri.parse(key)
            bucket, key = uri.bucket, uri.key
        else:
            bucket = deployment.bucket
            key = key if base and key.startswith(base) else base + key
        segments = key.split("/")
        if (
            not key.strip()
            or len(key.encode()) > MOST_KEY_BYTES
            or any(unicodedata.category(c) in ("Cc", "Cf") for c in key)
            or any(segment in ("", ".", "..") for segment in segments)
        ):
            raise ErasureRequestError(f"{value!r} is not a CV's key (CATEGORY/file under the raw prefix)")
        # ingest takes <prefix>/<CATEGORY>/<file> and nothing else: a category or a deeper path is no CV
        under = [
            p
            for p in prefixes
            if p.bucket == bucket
            and key.startswith(f"{p.key.rstrip('/')}/" if p.key else "")
            and len(key[len(p.key.rstrip("/")) + 1 if p.key else 0 :].split("/")) == 2
        ]
        if not under:
            raise ErasureRequestError(
                f"{value!r} is not a CATEGORY/file key under a raw prefix CVs are ingested from "
                f"({', '.join(known_prefixes)})"
            )
        wanted.append((bucket, key))
    return wanted, hashes


def known_raw_prefixes(ledger: dict, locations: Locations) -> list[str]:
    """The deployment's raw prefix, then every other prefix the ledger's entries were listed under."""
    others = {e["raw_prefix"].rstrip("/") for e in ledger["objects"].values() if e.get("raw_prefix")}
    return [locations.raw_cvs.rstrip("/"), *sorted(others - {locations.raw_cvs.rstrip("/")})]


def entry_raw_uri(key: str, entry: dict, locations: Locations) -> str:
    """Where a ledger entry's raw file lives: the bucket of the prefix it was listed under."""
    return f"s3://{S3Uri.parse(entry.get('raw_prefix') or locations.raw_cvs).bucket}/{key}"


def resolve(
    keys: list[str],
    content_hashes: list[str],
    ledger: dict,
    locations: Locations,
    storage: ObjectStore,
    secret: bytes | None = None,
) -> Targets:
    """The erased CVs' identities: their ledger entries (matched in NFC), their raw objects (in the
    form the bucket spells them), what an interrupted erasure of them kept, their ETags."""
    wanted, hashes = check_request(keys, content_hashes, known_raw_prefixes(ledger, locations))
    objects = ledger["objects"]
    by_nfc = {unicodedata.normalize("NFC", k): k for k in objects}
    targets = Targets()
    pending = ledger.get("erasing", {})
    chosen: dict[str, str] = {}
    for value, (bucket, key) in zip(keys, wanted, strict=True):
        spelt = by_nfc.get(key)
        if spelt is not None and S3Uri.parse(entry_raw_uri(spelt, objects[spelt], locations)).bucket == bucket:
            chosen[spelt] = entry_raw_uri(spelt, objects[spelt], locations)
        else:  # not in the ledger: the raw file in whichever normal form the bucket holds it
            forms = dict.fromkeys([key, unicodedata.normalize("NFD", key)])
            spelt = next((form for form in forms if storage.head(f"s3://{bucket}/{form}")), key)
            chosen[spelt] = f"s3://{bucket}/{spelt}"
        targets.asked.setdefault(value, set()).add(spelt)
    for value, digest in zip(content_hashes, hashes, strict=True):
        targets.asked[value] = {key for key, entry in objects.items() if entry.get("content_hash") == digest}
        for key in targets.asked[value]:
            chosen[key] = entry_raw_uri(key, objects[key], locations)
    for key, raw_uri in sorted(chosen.items()):
        targets.add(key, raw_uri)
        entry = objects.get(key)
        kept = pending.get(key_hash(secret, unicodedata.normalize("NFC", key))) if secret else None
        if entry is not None:
            targets.found.add(key)
            targets.etags[key] = entry["etag"]
            if entry.get("text_uri"):
                targets.text_uris.add(entry["text_uri"])
        if kept:
            targets.found.add(key)
            targets.pending[key] = kept
            targets.text_uris.update(kept.get("text_uris", []))
    return targets


# -- scrubbing one object --------------------------------------------------------------------------


def scrub_json(value, targets: Targets):
    """``value`` without the list items and mapping entries that name the targets; how many went."""
    removed = 0
    if isinstance(value, dict):
        kept = {}
        for k, v in value.items():
            if k in targets.owner:  # an entry keyed by the CV (a shard list, a map of keys)
                targets.names(k)
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
    """The JSON Lines file without the rows that name the targets; with ``drop_rows`` (a file whose
    rows pair with another's, ``train.jsonl``) exactly those rows go, so both stay aligned."""
    rows = [line for line in blob.decode().splitlines() if line.strip()]
    kept, removed = [], 0
    for index, line in enumerate(rows):
        row = json.loads(line)
        if index in drop_rows if drop_rows is not None else targets.names(row):
            removed += 1
            continue
        if drop_rows is None:
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
    for name in columns:
        for value in table.filter(hit).column(name).to_pylist():
            targets.names(value)
    buffer = io.BytesIO()
    pq.write_table(table.filter(pc.invert(hit)), buffer)
    return buffer.getvalue(), int(removed)


def training_rows_to_drop(blob: bytes, targets: Targets) -> set[int]:
    """Rows of a pairs folder's training metadata that are the targets' (``train.jsonl`` pairs with it
    row by row, so the same rows go from both)."""
    rows = [json.loads(line) for line in blob.decode().splitlines() if line.strip()]
    return {i for i, row in enumerate(rows) if targets.names(row)}


# -- the erasure -----------------------------------------------------------------------------------


@dataclass
class Change:
    uri: str
    action: str  # rewrite | delete
    records: int = 0


class ErasureReceipt(Record):
    """What an erasure did, kept under ``<work>/audit/erasures/``. It names no one: a keyed hash of
    each key made with the bucket's own key would let anyone who reads the bucket confirm that a named
    person was erased, so it holds counts only."""

    record_name = "erasure receipt"

    id: str
    at: str
    by: str
    dry_run: bool
    keep_raw: bool
    request: str | None = None
    asked: Count
    cvs_found: Count
    not_found: Count
    found_in_ledger: Count
    objects: dict[str, Count]  # rewrite, delete
    records_removed: Count
    by_area: dict[str, Count]
    models_trained_on_it: list[str]
    nothing_left: bool


def erase(
    keys: list[str],
    content_hashes: list[str],
    locations: Locations,
    storage: ObjectStore,
    *,
    dry_run: bool = False,
    keep_raw: bool = False,
    by: str | None = None,
    request: str | None = None,
) -> dict:
    """Erase the CVs everywhere (module docstring); the receipt (written unless ``dry_run``).
    ``request``: the id of the submitted request (:func:`submit_request`) this erasure carries out.

    The receipt names no one: counts by area, how many CVs were asked for and how many of them were
    found. The caller also gets ``changes`` (the objects, for a dry run's list) and ``not_found``
    (which of the values it gave named nothing), neither of them stored.
    """
    by = by or getpass.getuser()
    ledger, _ = read_ledger(storage, locations)
    check_request(keys, content_hashes, known_raw_prefixes(ledger, locations))  # before anything else is read
    # A dry run must not make the key (the first erasure does), but lists what the real run would.
    secret = existing_erasure_secret(storage, locations) if dry_run else erasure_secret(storage, locations)
    targets = resolve(keys, content_hashes, ledger, locations, storage, secret)
    if secret:  # the search log names candidates by keyed hash: the erased ones' hashes go too
        targets.add_log_hashes(secret)
    changes: list[Change] = []
    trained_on: set[str] = set()

    if not dry_run and targets.keys:
        commit_tombstones(targets, locations, storage, secret)
        # searches queued before this moment and written after it must not name them either
        erased = {key_hash(secret, form) for key in targets.keys for form in (key, unicodedata.normalize("NFC", key))}
        note_recent_erasures(erased, locations, storage)
    current = read_current(storage, locations.embeddings)
    changes += rewrite_current_snapshot(current, targets, locations, storage, dry_run)
    skip = {change.uri for change in changes}
    for root in (locations.work, locations.registry, locations.embeddings):
        changes += scrub_tree(root, targets, locations, storage, dry_run, skip, trained_on)
    changes += delete_sources(targets, ledger, locations, storage, dry_run, keep_raw)
    if not dry_run and trained_on:
        mark_trained_on_erased(trained_on, locations, storage)
    if not dry_run and targets.keys:
        finish_erasure(targets, locations, storage, secret)

    not_found = targets.not_found()
    receipt = ErasureReceipt.written(
        {
            "id": uuid.uuid4().hex[:12],
            "at": datetime.now(UTC).isoformat(),
            "by": by,
            "dry_run": dry_run,
            "keep_raw": keep_raw,
            "request": request,
            "asked": len(keys) + len(content_hashes),
            "cvs_found": len(targets.found),
            "not_found": len(not_found),
            "found_in_ledger": len(targets.etags),
            "objects": {action: sum(1 for c in changes if c.action == action) for action in ("rewrite", "delete")},
            "records_removed": sum(c.records for c in changes),
            "by_area": by_area(changes, locations),
            "models_trained_on_it": sorted(trained_on),
            "nothing_left": not targets.found,
        }
    )
    if not dry_run:
        storage.put_json(layout.erasure_receipt(locations.work, receipt.at, receipt.id), receipt.to_json())
    told = {name: getattr(receipt, name) for name in ("objects", "records_removed", "cvs_found", "not_found")}
    log.info("erase: %s", json.dumps(told))
    return {
        **receipt.to_json(),
        "changes": [c.__dict__ for c in changes],  # for the caller (dry run's list); not stored
        "not_found_values": not_found,  # for the caller who gave them; not stored
    }


RECENT_ERASURE_HOURS = 24  # far longer than a search record waits in a queue, retries included


def note_recent_erasures(hashes: set[str], locations: Locations, storage: ObjectStore) -> None:
    """Add the erased keys' log hashes to ``state/recent_erasures.json`` (kept a day, then dropped):
    a search log writer drops them from records it writes later (:mod:`serving.usage_log`)."""

    def change(recent: dict) -> bool:
        now = datetime.now(UTC)
        day = 3600 * RECENT_ERASURE_HOURS
        for old in [h for h, at in recent.items() if (now - datetime.fromisoformat(at)).total_seconds() >= day]:
            del recent[old]
        recent.update(dict.fromkeys(hashes, now.isoformat()))
        return True

    swap_json(storage, layout.recent_erasures(locations.work), change, {}, "the recent erasures")


def recently_erased(locations: Locations, storage: ObjectStore) -> set[str]:
    """The log hashes of keys erased in the last day."""
    found = storage.get_with_etag(layout.recent_erasures(locations.work))
    return set(json.loads(found[0])) if found else set()


def erased_recently(keys, locations: Locations, storage: ObjectStore) -> set[str]:
    """Those of ``keys`` erased in the last day: a night that read them before the erasure drops them
    from what it writes after it (validation's vectors)."""
    secret = existing_erasure_secret(storage, locations)
    erased = recently_erased(locations, storage) if secret else set()
    if not erased:
        return set()
    return {
        key for key in keys if {key_hash(secret, key), key_hash(secret, unicodedata.normalize("NFC", key))} & erased
    }


# -- requests: how the erasure DAG is told whom to erase without keeping it ----------------------------


def submit_request(keys: list[str], content_hashes: list[str], locations: Locations, storage: ObjectStore) -> str:
    """Write an erasure request (checked now) under ``<work>/state/erasure-requests/``; its URI.

    The ``matcher_erasure`` DAG takes this URI, never the keys: a DAG run's conf stays in Airflow's
    database and UI for ever, and keys often hold names. The request is deleted once carried out."""
    ledger, _ = read_ledger(storage, locations)
    check_request(keys, content_hashes, known_raw_prefixes(ledger, locations))
    if not keys and not content_hashes:
        raise ErasureRequestError("an erasure request needs keys or content hashes")
    uri = layout.erasure_request(locations.work, uuid.uuid4().hex)
    storage.put_json(uri, {"keys": keys, "content_hashes": content_hashes, "at": datetime.now(UTC).isoformat()})
    return uri


def erase_by_request(
    request_uri: str,
    locations: Locations,
    storage: ObjectStore,
    *,
    dry_run: bool = False,
    keep_raw: bool = False,
    by: str | None = None,
) -> dict:
    """Carry out a submitted request (:func:`erase`), then delete it. Run again after it finished
    (a cleared task), it returns the receipt it wrote rather than failing or erasing twice."""
    folder = layout.erasure_requests(locations.work) + "/"
    request_id = request_uri.removeprefix(folder).removesuffix(".json")
    if not request_uri.startswith(folder) or not re.fullmatch(r"[0-9a-f]{32}", request_id):
        raise ErasureRequestError(f"{request_uri!r} is not an erasure request (they live under {folder})")
    found = storage.get_with_etag(request_uri)
    if found is None:
        for info in storage.list(layout.erasure_receipts(locations.work)):
            try:
                done = ErasureReceipt.load(storage.get_bytes(info.uri))
            except UnreadableRecord as error:  # another request's, written before a field was added
                log.warning("erase: receipt %s is not one this version reads (%s); not this request's", info.uri, error)
                continue
            if done.request == request_id and not done.dry_run:
                return {**done.to_json(), "repeated": True, "changes": [], "not_found_values": []}
        raise LookupError(f"no erasure request at {request_uri} and no receipt of one")
    asked = json.loads(found[0])
    receipt = erase(
        asked.get("keys", []),
        asked.get("content_hashes", []),
        locations,
        storage,
        dry_run=dry_run,
        keep_raw=keep_raw,
        by=by,
        request=request_id,
    )
    if not dry_run:
        storage.delete(request_uri)
    return receipt


def by_area(changes: list[Change], locations: Locations) -> dict[str, int]:
    areas = {"work": locations.work, "registry": locations.registry, "embeddings": locations.embeddings}
    counts = dict.fromkeys((*areas, "raw"), 0)
    for change in changes:
        name = next((n for n, root in areas.items() if change.uri.startswith(root.rstrip("/") + "/")), "raw")
        counts[name] += 1
    return counts


def swap_json(
    storage: ObjectStore, uri: str, change, empty: dict, what: str, record: type[Record] | None = None
) -> None:
    """Apply ``change`` (which edits the value in place and returns whether it changed anything) to
    the JSON object at ``uri`` (``empty`` while there is none) by compare-and-swap, again while
    another writer (a night, an erasure) wins the race. With ``record``, the object is read and
    written through that class."""
    for _ in range(20):
        found = storage.get_with_etag(uri)
        if found is None:
            value = json.loads(json.dumps(empty))
        else:
            value = record.load(found[0]).to_json() if record is not None else json.loads(found[0])
        if not change(value):
            return
        if record is not None:
            value = record.written(value).to_json()
        try:
            if found is None:
                storage.put_json(uri, value, if_none_match=True)
            else:
                storage.put_json(uri, value, if_match=found[1])
            return
        except PreconditionFailed:
            continue
    raise RuntimeError(f"{what} kept changing while the erasure tried to write it: run erase again")


EMPTY_LEDGER = {"objects": {}, "jobs_file_etag": None}


def commit_tombstones(targets: Targets, locations: Locations, storage: ObjectStore, secret: bytes) -> None:
    """Remove the entries and add their tombstones, by compare-and-swap (a racing night's write is
    retried against this one, and this one against it). Until :func:`finish_erasure`, the ledger keeps
    what a re-run needs to finish (``erasing``: the text cache entries, by the key's keyed hash)."""

    def change(ledger: dict) -> bool:
        erased = ledger.setdefault("erased", {})
        erasing = ledger.setdefault("erasing", {})
        for key in sorted(targets.keys):
            entry = ledger["objects"].pop(key, None)
            # The version the ledger knew and the one in the raw prefix now (a night may be parsing it)
            raw_uri = next(uri for uri, owner in targets.owner.items() if owner == key and uri.startswith("s3://"))
            head = storage.head(raw_uri)
            versions = {(head.etag, head.modified)} if head else set()
            if entry is not None and (head is None or entry["etag"] != head.etag):
                versions.add((entry["etag"], entry.get("modified", "")))  # the version the ledger knew
            for etag_of, modified in versions:
                erased[tombstone(secret, key, etag_of, modified)] = {"at": datetime.now(UTC).isoformat()}
            if entry is not None or key in targets.pending:
                kept = targets.pending.get(key, {})
                text_uris = {
                    *kept.get("text_uris", []),
                    *([entry["text_uri"]] if entry and entry.get("text_uri") else []),
                }
                erasing[key_hash(secret, unicodedata.normalize("NFC", key))] = {
                    "text_uris": sorted(text_uris),
                    "content_hash": (entry or {}).get("content_hash") or kept.get("content_hash"),
                    "at": datetime.now(UTC).isoformat(),
                }
        return True

    swap_json(storage, layout.ledger(locations.work), change, EMPTY_LEDGER, "the ledger", Ledger)


def finish_erasure(targets: Targets, locations: Locations, storage: ObjectStore, secret: bytes) -> None:
    """Every object is done: drop what the ledger kept for a re-run (it names the CV by keyed hash)."""
    hashes = {key_hash(secret, unicodedata.normalize("NFC", key)) for key in targets.keys}

    def change(ledger: dict) -> bool:
        erasing = ledger.get("erasing", {})
        if not hashes & set(erasing):
            return False
        ledger["erasing"] = {h: kept for h, kept in erasing.items() if h not in hashes}
        return True

    swap_json(storage, layout.ledger(locations.work), change, EMPTY_LEDGER, "the ledger", Ledger)


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
    # One suffix however many erasures a snapshot has been through: its name never grows.
    new = layout.Snapshot(ERASED_SUFFIX.sub("", current["uri"].rstrip("/")) + f"-erased-{uuid.uuid4().hex[:8]}")
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


READ_BATCH = 64  # record files fetched at once (in parallel) while a tree is scrubbed


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
    snapshot that holds them deleted whole (no pointer names it). Files are read in parallel batches;
    training metadata before the ``train.jsonl`` it pairs with, so both lose the same rows."""
    current = read_current(storage, locations.embeddings)
    live_snapshot = current["uri"].rstrip("/") + "/" if current else None
    changes: list[Change] = []
    doomed_snapshots: set[str] = set()
    uris = sorted(
        (info.uri for info in storage.list(root) if scrubbable(info.uri, locations, skip)),
        key=lambda uri: (not layout.is_training_metadata(uri), uri),
    )
    paired_drops: dict[str, set[int]] = {}  # pairs folder -> rows of its training metadata that go
    published: dict[str, bool] = {}  # snapshot -> whether it has a manifest (was published once)
    for start in range(0, len(uris), READ_BATCH):
        batch = uris[start : start + READ_BATCH]
        for uri, original in zip(batch, storage.get_many(batch), strict=True):
            folder = uri.rsplit("/", 1)[0]
            if layout.is_training_metadata(uri):
                paired_drops[folder] = training_rows_to_drop(original, targets)
            if layout.is_training_examples(uri):
                blob, removed = scrub_jsonl(original, targets, paired_drops.get(folder, set()))
            elif uri.endswith(".jsonl"):
                blob, removed = scrub_jsonl(original, targets)
            elif uri.endswith(".parquet"):
                blob, removed = scrub_parquet(original, targets)
            else:
                data, removed = scrub_json(json.loads(original), targets)
                blob = json.dumps(data).encode()
            if not removed:
                continue
            if layout.is_training_metadata(uri):
                trained_on.add(folder)
            if root == locations.embeddings and (live_snapshot is None or not uri.startswith(live_snapshot)):
                snapshot = layout.Snapshot.of_part(uri).uri if layout.Snapshot.is_cv_part(uri) else folder
                if snapshot not in published:
                    published[snapshot] = storage.exists(layout.Snapshot(snapshot).manifest)
                if published[snapshot]:  # an older snapshot no pointer names: deleted whole
                    doomed_snapshots.add(snapshot)
                    continue
                # else one a night is building now: rewritten in place, so what it publishes lacks the CV
            changes.append(Change(uri, "rewrite", removed))
            if not dry_run:
                storage.put_bytes(uri, blob)
    for snapshot in sorted(doomed_snapshots):
        changes.append(Change(snapshot, "delete"))
        if not dry_run:
            storage.delete_prefix(snapshot.rstrip("/") + "/")
    return changes


def scrubbable(uri: str, locations: Locations, skip: set[str]) -> bool:
    """Whether ``uri`` is a record file an erasure reads (not the ledger, a receipt, a model's
    configuration, another CV's text, or a snapshot already rewritten)."""
    if not uri.endswith(RECORD_SUFFIXES) or uri == layout.ledger(locations.work):
        return False
    if any(uri.startswith(s.rstrip("/") + "/") for s in skip):
        return False
    if (
        uri.startswith(layout.erasure_receipts(locations.work) + "/")
        or uri.rsplit("/", 1)[-1] in layout.MODEL_CONFIGURATION_FILES
    ):
        return False  # receipts hold counts; a model's configuration holds no CV
    if uri == layout.recent_erasures(locations.work):
        return False  # the erasures' own log hashes, dropped after a day
    if uri.startswith(layout.erasure_requests(locations.work) + "/"):
        return False  # a request names whom to erase: deleted whole once carried out
    # other CVs' texts: the targets' own entries are delete_sources' to decide
    return not uri.startswith(layout.texts(locations.work) + "/")


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
    for uri in sorted(targets.raw_uris):
        if storage.exists(uri):
            targets.names(uri)  # the file itself: found, kept or not
            if not keep_raw:
                changes.append(Change(uri, "delete"))
                if not dry_run:
                    storage.delete(uri)
    return changes


def mark_trained_on_erased(model_folders: set[str], locations: Locations, storage: ObjectStore) -> None:
    """Remember which models (run candidates, registry versions) were trained on data since erased."""
    uri = layout.erased_training(locations.work)
    found = storage.get_with_etag(uri)
    marked = json.loads(found[0]) if found else {"models": []}
    marked["models"] = sorted(set(marked["models"]) | model_folders)
    marked["updated_at"] = datetime.now(UTC).isoformat()
    storage.put_json(uri, marked)


def production_trained_on_erased(locations: Locations, storage: ObjectStore) -> bool:
    """Whether the model in production was trained on a CV erased since (until a clean one is promoted)."""
    production = read_production(storage, locations.registry)
    found = storage.get_with_etag(layout.erased_training(locations.work))
    if production is None or found is None:
        return False
    return production.uri.rstrip("/") in {m.rstrip("/") for m in json.loads(found[0])["models"]}
