"""A log of who searched for candidates (EU AI Act Art. 12 and 26(6): logs kept at least six months).

Every search for candidates (the Matcher page, ``python -m include.matcher match``,
``VectorMatcher.top_candidates``) becomes one record: when, who (the Airflow user on the page, the
OS user or a given name elsewhere), the model version and the snapshot that answered, a SHA-256 of
the query (not the query: a job text can be confidential, and a CV pasted as a query is personal
data), k, the filters, and the candidates returned with their scores.

Candidates are logged as **keyed hashes** of their keys (HMAC with the erasure key, see
:func:`include.matcher.stages.corpus.erasure_secret`), not the keys, which often hold names: an
auditor who knows a key can find its searches by hashing it, anyone else learns nothing. An erasure
removes the erased key's hash from every record (``erase``), so the log does not keep a trace of
a forgotten person either.

Records are written off the request path: :meth:`SearchLog.record` queues them and a background
thread writes each batch as one object, ``<work>/audit/matches/<yyyy-mm-dd>/<time>-<id>.jsonl``
(S3 has no append), every ``flush_seconds`` or ``batch`` records, and at exit. Housekeeping merges a
finished day's batches into one object (``compacted-<id>.jsonl``), so the log holds about one object
a day whatever the traffic, and an erasure reads that many. Records are kept for
``MATCHER_AUDIT_RETENTION_DAYS`` (183); housekeeping never deletes them earlier.
"""

from __future__ import annotations

import atexit
import getpass
import hashlib
import logging
import threading
import uuid
from datetime import UTC, datetime

from include.matcher.foundations import layout
from include.matcher.foundations.settings import Locations
from include.matcher.foundations.storage import ObjectStore
from include.matcher.stages.corpus import key_hash

log = logging.getLogger(__name__)


# Records a process keeps while S3 refuses them (a day of a busy page at most); beyond, the oldest go.
MOST_QUEUED = 100_000


class SearchLog:
    """Queues search records and writes them in batches from a background thread."""

    def __init__(self, storage: ObjectStore, locations: Locations, batch: int = 200, flush_seconds: float = 5.0):
        self.storage, self.locations = storage, locations
        self.batch, self.flush_seconds = batch, flush_seconds
        self._queue: list[dict] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._secret: bytes | None = None
        self._thread = threading.Thread(target=self._run, name="matcher-search-log", daemon=True)
        self._thread.start()
        atexit.register(self.flush)

    def secret(self) -> bytes:
        if self._secret is None:
            from include.matcher.stages.corpus import erasure_secret

            self._secret = erasure_secret(self.storage, self.locations)
        return self._secret

    def record(self, *, user: str | None, query: str, k: int, filters: dict, version, snapshot, hits) -> None:
        """Queue one search's record (the hashing and the write happen off the caller's path)."""
        entry = {
            "at": datetime.now(UTC).isoformat(),
            "user": user or getpass.getuser(),
            "model_version": version,
            "snapshot": snapshot,
            "query_sha256": hashlib.sha256(query.encode()).hexdigest(),
            "k": k,
            "filters": {name: value for name, value in filters.items() if value is not None},
            "returned": [(hit.id, round(float(hit.score), 4)) for hit in hits],
        }
        with self._lock:
            self._queue.append(entry)
            full = len(self._queue) >= self.batch
        if full:
            self._wake.set()

    def flush(self) -> int:
        """Write what is queued now; how many records were written.

        A candidate erased since its search was queued is left out of the record (the erasure's
        hashes stay in ``state/recent_erasures.json`` for a day). A batch that cannot be written
        goes back to the queue and is tried again with the next flush: the log loses no record unless
        the queue passes :data:`MOST_QUEUED` (an outage of hours), and then says how many."""
        with self._lock:
            entries, self._queue = self._queue, []
        if not entries:
            return 0
        try:
            from include.matcher.stages.erasure import recently_erased

            secret, erased = self.secret(), recently_erased(self.locations, self.storage)
            written = []
            for entry in entries:
                hashed = [{"candidate": key_hash(secret, key), "score": score} for key, score in entry["returned"]]
                written.append({**entry, "returned": [hit for hit in hashed if hit["candidate"] not in erased]})
            day = written[0]["at"][:10]
            name = f"{written[0]['at'][11:19].replace(':', '')}-{uuid.uuid4().hex[:12]}.jsonl"
            self.storage.put_jsonl(layout.search_log_batch(self.locations.work, day, name), written)
        except Exception as error:  # the log must never take a search (or its own thread) down
            with self._lock:
                self._queue[:0] = entries  # oldest first, ahead of what came since
                dropped = max(0, len(self._queue) - MOST_QUEUED)
                if dropped:
                    del self._queue[:dropped]
            log.error(
                "search log: %d records could not be written (%s); kept to retry%s",
                len(entries),
                type(error).__name__,
                f", {dropped} oldest dropped past {MOST_QUEUED} queued" if dropped else "",
                exc_info=True,
            )
            return 0
        return len(entries)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.flush()


_logs: dict[str, SearchLog] = {}
_logs_lock = threading.Lock()


def search_log(storage: ObjectStore, locations: Locations) -> SearchLog:
    """The process's search log for this work area (one background writer each)."""
    with _logs_lock:
        if locations.work not in _logs:
            _logs[locations.work] = SearchLog(storage, locations)
        return _logs[locations.work]


def read_search_log(storage: ObjectStore, locations: Locations) -> list[dict]:
    """Every record, oldest first (for an auditor, and the tests)."""
    records = []
    for info in storage.list(layout.search_log(locations.work)):
        records += storage.get_jsonl(info.uri)
    return sorted(records, key=lambda r: r["at"])
