"""S3 access: URIs, JSON/JSONL objects, listings, directory sync and conditional writes.

Everything the pipeline persists goes through :class:`Storage`, which wraps one boto3 S3 client.
Outside Airflow the client comes from the standard AWS environment variables
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL_S3``...); inside Airflow the
DAG builds it from the ``aws_default`` connection.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from include.matcher.foundations.errors import Conflict, NotFound, StorageUnavailable
from include.matcher.foundations.settings import deployment_setting
from include.matcher.foundations.uris import S3Uri, join_uri

log = logging.getLogger(__name__)

# botocore retries throttling, 5xx and connection resets a few times per request; longer outages
# are ridden out by ``with_retries`` around each operation.
CLIENT_CONFIG = Config(
    retries={"max_attempts": 10, "mode": "standard"},
    s3={"addressing_style": "path"},
    connect_timeout=10,
    read_timeout=120,
    max_pool_connections=32,  # get_many fetches 16 objects at a time; the default pool holds 10
)


class PreconditionFailed(Conflict, RuntimeError):
    """A conditional write lost its race: the object changed since it was read."""


class MissingObject(NotFound, FileNotFoundError):
    """An object that was asked for by URI does not exist."""


TRANSIENT_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
    "503",
    "500",
}


def is_transient(error: Exception) -> bool:
    """Worth retrying: the server was unreachable, restarting, overloaded or failing (5xx)."""
    if isinstance(error, (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError, ConnectTimeoutError)):
        return True
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return status >= 500 or error.response.get("Error", {}).get("Code") in TRANSIENT_CODES
    return False


def with_retries(method):
    """Retry a whole operation with capped exponential backoff until ``MATCHER_S3_RETRY_SECONDS`` pass.

    botocore already retries each request a few times within seconds; this outer loop rides out
    longer outages such as the S3 server restarting. An outage that outlasts it is raised as
    :class:`~include.matcher.foundations.errors.StorageUnavailable` (the transient error its cause).
    """

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        deadline = time.monotonic() + float(deployment_setting("MATCHER_S3_RETRY_SECONDS"))
        delay = 0.5
        while True:
            try:
                return method(*args, **kwargs)
            except Exception as error:
                if not is_transient(error):
                    raise
                if time.monotonic() + delay > deadline:
                    raise StorageUnavailable(
                        f"S3 {method.__name__} kept failing for {deployment_setting('MATCHER_S3_RETRY_SECONDS')} s: "
                        f"{type(error).__name__}: {error}"
                    ) from error
                log.warning(
                    "S3 %s failed transiently (%s); retrying in %.1fs", method.__name__, type(error).__name__, delay
                )
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    return wrapper


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    etag: str
    size: int
    uri: str  # s3://bucket/key: what the other methods take
    modified: str = ""  # ISO 8601, UTC (listings carry it; retention reads it)


class ObjectStore(Protocol):
    """What the pipeline's stages need of an object store, by ``s3://`` URI. :class:`Storage` (boto3)
    implements it; the stages are typed against this, so another implementation can stand in."""

    def get_bytes(self, uri: str) -> bytes: ...
    def get_with_etag(self, uri: str) -> tuple[bytes, str] | None: ...
    def put_bytes(
        self,
        uri: str,
        data: bytes,
        *,
        content_type: str = ...,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str: ...
    def head(self, uri: str) -> ObjectInfo | None: ...
    def exists(self, uri: str) -> bool: ...
    def delete_prefix(self, prefix_uri: str) -> int: ...
    def get_json(self, uri: str) -> Any: ...
    def put_json(self, uri: str, value: Any, **conditions) -> str: ...
    def get_jsonl(self, uri: str) -> list[dict]: ...
    def put_jsonl(self, uri: str, rows: Iterable[dict]) -> str: ...
    def list(self, prefix_uri: str, limit: int | None = None) -> list[ObjectInfo]: ...
    def get_many(self, uris: list[str], workers: int = 16) -> list[bytes]: ...
    def upload_dir(self, local_dir: str | Path, prefix_uri: str) -> list[str]: ...
    def download_dir(self, prefix_uri: str, local_dir: str | Path) -> Path: ...
    def copy_prefix(self, source_uri: str, target_uri: str) -> int: ...


def client_from_env():
    """A boto3 S3 client configured by the standard AWS environment variables."""
    return boto3.client("s3", config=CLIENT_CONFIG, region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))


class Storage:
    """Thin, typed helpers over one boto3 S3 client."""

    def __init__(self, client=None):
        self.client = client if client is not None else client_from_env()

    # -- buckets -------------------------------------------------------------------------------
    @with_retries
    def ensure_bucket(self, bucket: str) -> None:
        try:
            self.client.head_bucket(Bucket=bucket)
        except ClientError:
            self.client.create_bucket(Bucket=bucket)

    @with_retries
    def buckets(self) -> set[str]:
        return {bucket["Name"] for bucket in self.client.list_buckets().get("Buckets", [])}

    @with_retries
    def delete_bucket(self, bucket: str) -> None:
        """Remove an empty bucket (SeaweedFS frees a bucket's volumes only then)."""
        self.client.delete_bucket(Bucket=bucket)

    # -- single objects ------------------------------------------------------------------------
    @with_retries
    def get_bytes(self, uri: str) -> bytes:
        loc = S3Uri.parse(uri)
        try:
            return self.client.get_object(Bucket=loc.bucket, Key=loc.key)["Body"].read()
        except ClientError as error:
            if _is_not_found(error) or error.response.get("Error", {}).get("Code") == "NoSuchBucket":
                raise MissingObject(f"no object at {uri}") from error
            raise

    @with_retries
    def get_with_etag(self, uri: str) -> tuple[bytes, str] | None:
        """The object's bytes and ETag, or None when it does not exist."""
        loc = S3Uri.parse(uri)
        response = _unless_missing(self.client.get_object, Bucket=loc.bucket, Key=loc.key)
        return None if response is None else (response["Body"].read(), response["ETag"])

    @with_retries
    def put_bytes(
        self,
        uri: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        """Write an object; with ``if_match``/``if_none_match`` it is a compare-and-swap.

        Raises :class:`PreconditionFailed` when the condition does not hold.
        """
        loc = S3Uri.parse(uri)
        kwargs: dict[str, Any] = {"Bucket": loc.bucket, "Key": loc.key, "Body": data, "ContentType": content_type}
        if if_match is not None:
            kwargs["IfMatch"] = if_match
        if if_none_match:
            kwargs["IfNoneMatch"] = "*"
        try:
            return self.client.put_object(**kwargs)["ETag"]
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in {"PreconditionFailed", "ConditionalRequestConflict", "412"}:
                raise PreconditionFailed(f"{uri} changed concurrently ({code})") from error
            raise

    @with_retries
    def head(self, uri: str) -> ObjectInfo | None:
        loc = S3Uri.parse(uri)
        response = _unless_missing(self.client.head_object, Bucket=loc.bucket, Key=loc.key)
        if response is None:
            return None
        modified = response["LastModified"].isoformat() if "LastModified" in response else ""
        return ObjectInfo(loc.key, response["ETag"], response["ContentLength"], uri, modified)

    def exists(self, uri: str) -> bool:
        return self.head(uri) is not None

    @with_retries
    def delete(self, uri: str) -> None:
        loc = S3Uri.parse(uri)
        self.client.delete_object(Bucket=loc.bucket, Key=loc.key)

    def delete_prefix(self, prefix_uri: str) -> int:
        """Delete every object below ``prefix_uri`` (treated as a folder); how many there were."""
        loc = S3Uri.parse(prefix_uri)
        keys = [info.key for info in self.list(prefix_uri)]
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
            self._delete_batch(loc.bucket, keys[start : start + 1000])
        return len(keys)

    @with_retries
    def _delete_batch(self, bucket: str, keys: list[str]) -> None:
        self.client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True})

    # -- structured objects ----------------------------------------------------------------------
    def get_json(self, uri: str) -> Any:
        return json.loads(self.get_bytes(uri))

    def put_json(self, uri: str, value: Any, **conditions) -> str:
        body = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).encode()
        return self.put_bytes(uri, body, content_type="application/json", **conditions)

    def get_jsonl(self, uri: str) -> list[dict]:
        return [json.loads(line) for line in self.get_bytes(uri).decode().splitlines() if line.strip()]

    def put_jsonl(self, uri: str, rows: Iterable[dict]) -> str:
        body = "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows).encode()
        return self.put_bytes(uri, body, content_type="application/x-ndjson")

    # -- prefixes --------------------------------------------------------------------------------
    @with_retries
    def list(self, prefix_uri: str, limit: int | None = None) -> list[ObjectInfo]:
        """Every object below ``prefix_uri`` (treated as a folder), in key order; the first ``limit`` only."""
        loc = S3Uri.parse(prefix_uri)
        prefix = f"{loc.key}/" if loc.key else ""
        paginator = self.client.get_paginator("list_objects_v2")
        found: list[ObjectInfo] = []
        for page in paginator.paginate(Bucket=loc.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                found.append(
                    ObjectInfo(
                        item["Key"],
                        item["ETag"],
                        item["Size"],
                        f"s3://{loc.bucket}/{item['Key']}",
                        item["LastModified"].isoformat() if "LastModified" in item else "",
                    )
                )
                if limit is not None and len(found) >= limit:
                    return found
        return found

    def get_many(self, uris: list[str], workers: int = 16) -> list[bytes]:
        """Fetch many small objects concurrently, in the order given."""
        if not uris:
            return []
        with ThreadPoolExecutor(max_workers=min(workers, len(uris))) as pool:
            return list(pool.map(self.get_bytes, uris))

    def upload_dir(self, local_dir: str | Path, prefix_uri: str) -> list[str]:
        local_dir = Path(local_dir)
        files = sorted(p for p in local_dir.rglob("*") if p.is_file())
        uris = [join_uri(prefix_uri, p.relative_to(local_dir).as_posix()) for p in files]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda pair: self.put_bytes(pair[1], pair[0].read_bytes()), zip(files, uris, strict=True)))
        return uris

    def download_dir(self, prefix_uri: str, local_dir: str | Path) -> Path:
        local_dir = Path(local_dir)
        base = S3Uri.parse(prefix_uri)
        objects = list(self.list(prefix_uri))
        if not objects:
            raise FileNotFoundError(f"nothing under {prefix_uri}")

        def fetch(info: ObjectInfo) -> None:
            target = local_dir / info.key[len(base.key) :].lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            self._download_one(base.bucket, info.key, target)

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(fetch, objects))
        return local_dir

    @with_retries
    def _download_one(self, bucket: str, key: str, target: Path) -> None:
        self.client.download_file(bucket, key, str(target))

    def copy_prefix(self, source_uri: str, target_uri: str) -> int:
        source, target = S3Uri.parse(source_uri), S3Uri.parse(target_uri)
        objects = list(self.list(source_uri))

        def copy(info: ObjectInfo) -> None:
            relative = info.key[len(source.key) :].lstrip("/")
            self._copy_one(source.bucket, info.key, target.bucket, target.join(relative).key)

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(copy, objects))
        return len(objects)

    @with_retries
    def _copy_one(self, source_bucket: str, source_key: str, target_bucket: str, target_key: str) -> None:
        self.client.copy_object(
            Bucket=target_bucket, Key=target_key, CopySource={"Bucket": source_bucket, "Key": source_key}
        )


def _unless_missing(call, **kwargs):
    """``call(**kwargs)``, or None where S3 says the object is not there."""
    try:
        return call(**kwargs)
    except ClientError as error:
        if _is_not_found(error):
            return None
        raise


def _is_not_found(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}
