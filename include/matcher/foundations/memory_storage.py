"""An object store held in this process's memory, with S3's ETags and conditional writes.

:class:`MemoryStorage` answers the :class:`~include.matcher.foundations.storage.ObjectStore` protocol
the way SeaweedFS and S3 do (the same ETags, the same compare-and-swap refusals, the same missing
objects, listings in key order below a folder) without a server: what ``make test-fast`` gives the
tests that need an object store but not S3 itself. Only the few primitives touch the dictionary; JSON,
JSONL, folder sync and copies are :class:`~include.matcher.foundations.storage.Storage`'s own, so both
stores write the same bytes. ``tests/matcher/foundations/test_memory_storage.py`` runs one contract
against both.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from include.matcher.foundations.errors import BadInput
from include.matcher.foundations.storage import MissingObject, ObjectInfo, PreconditionFailed, Storage
from include.matcher.foundations.uris import S3Uri


class NoSuchBucket(MissingObject):
    """A write or listing in a bucket that was never created (S3's ``NoSuchBucket``)."""


@dataclass(frozen=True)
class StoredObject:
    data: bytes
    etag: str
    modified: str


class MemoryStorage(Storage):
    """Buckets of objects in a dictionary, safe to share between threads."""

    def __init__(self):
        super().__init__(client=_NO_CLIENT)
        self._buckets: dict[str, dict[str, StoredObject]] = {}
        self._lock = threading.Lock()

    # -- buckets -------------------------------------------------------------------------------
    def ensure_bucket(self, bucket: str) -> None:
        with self._lock:
            self._buckets.setdefault(bucket, {})

    def buckets(self) -> set[str]:
        with self._lock:
            return set(self._buckets)

    def delete_bucket(self, bucket: str) -> None:
        with self._lock:
            self._buckets.pop(bucket, None)

    # -- single objects ------------------------------------------------------------------------
    def get_bytes(self, uri: str) -> bytes:
        found = self.get_with_etag(uri)
        if found is None:
            raise MissingObject(f"no object at {uri}")
        return found[0]

    def get_with_etag(self, uri: str) -> tuple[bytes, str] | None:
        loc = S3Uri.parse(uri)
        with self._lock:
            stored = self._buckets.get(loc.bucket, {}).get(loc.key)
        return None if stored is None else (stored.data, stored.etag)

    def put_bytes(
        self,
        uri: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        loc = S3Uri.parse(uri)
        if not loc.key:
            raise BadInput(f"an object needs a key: {uri}")
        stored = StoredObject(bytes(data), f'"{hashlib.md5(data).hexdigest()}"', datetime.now(UTC).isoformat())
        with self._lock:
            objects = self._objects(loc.bucket)
            current = objects.get(loc.key)
            if if_match is not None and (current is None or current.etag != if_match):
                raise PreconditionFailed(f"{uri} changed concurrently (PreconditionFailed)")
            if if_none_match and current is not None:
                raise PreconditionFailed(f"{uri} changed concurrently (PreconditionFailed)")
            objects[loc.key] = stored
        return stored.etag

    def head(self, uri: str) -> ObjectInfo | None:
        loc = S3Uri.parse(uri)
        with self._lock:
            stored = self._buckets.get(loc.bucket, {}).get(loc.key)
        if stored is None:
            return None
        return ObjectInfo(loc.key, stored.etag, len(stored.data), uri, stored.modified)

    def delete(self, uri: str) -> None:
        loc = S3Uri.parse(uri)
        with self._lock:
            self._buckets.get(loc.bucket, {}).pop(loc.key, None)

    def _delete_batch(self, bucket: str, keys: list[str]) -> None:
        with self._lock:
            objects = self._buckets.get(bucket, {})
            for key in keys:
                objects.pop(key, None)

    # -- prefixes --------------------------------------------------------------------------------
    def list(self, prefix_uri: str, limit: int | None = None) -> list[ObjectInfo]:
        loc = S3Uri.parse(prefix_uri)
        prefix = f"{loc.key}/" if loc.key else ""
        with self._lock:
            items = sorted((key, stored) for key, stored in self._objects(loc.bucket).items() if key.startswith(prefix))
        found = [
            ObjectInfo(key, stored.etag, len(stored.data), f"s3://{loc.bucket}/{key}", stored.modified)
            for key, stored in items
        ]
        return found if limit is None else found[:limit]

    def _download_one(self, bucket: str, key: str, target: Path) -> None:
        target.write_bytes(self.get_bytes(f"s3://{bucket}/{key}"))

    def _copy_one(self, source_bucket: str, source_key: str, target_bucket: str, target_key: str) -> None:
        self.put_bytes(f"s3://{target_bucket}/{target_key}", self.get_bytes(f"s3://{source_bucket}/{source_key}"))

    def _objects(self, bucket: str) -> dict[str, StoredObject]:
        """The bucket's objects; the caller holds the lock."""
        if bucket not in self._buckets:
            raise NoSuchBucket(f"no bucket {bucket!r}")
        return self._buckets[bucket]


class _NoClient:
    """Where :class:`Storage` keeps its boto3 client: anything that reaches past the protocol fails loudly."""

    def __getattr__(self, name):
        raise AttributeError(f"MemoryStorage has no S3 client ({name}): this code needs a real S3 server")


_NO_CLIENT = _NoClient()
