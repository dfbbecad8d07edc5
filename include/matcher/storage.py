"""S3 access: URIs, JSON/JSONL objects, listings, directory sync and conditional writes.

Everything the pipeline persists goes through :class:`Storage`, which wraps one boto3 S3 client.
Outside Airflow the client comes from the standard AWS environment variables
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL_S3``...); inside Airflow the
DAG builds it from the ``aws_default`` connection.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

# Throttling, 5xx and connection resets are retried by botocore itself; "adaptive" also backs off
# the client-side send rate when the server pushes back.
CLIENT_CONFIG = Config(
    retries={"max_attempts": 10, "mode": "adaptive"},
    s3={"addressing_style": "path"},
    connect_timeout=10,
    read_timeout=120,
)


class PreconditionFailed(RuntimeError):
    """A conditional write lost its race: the object changed since it was read."""


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    key: str = ""

    @classmethod
    def parse(cls, uri: str) -> S3Uri:
        if not uri.startswith("s3://"):
            raise ValueError(f"not an s3:// URI: {uri!r}")
        bucket, _, key = uri[len("s3://") :].partition("/")
        if not bucket:
            raise ValueError(f"S3 URI without a bucket: {uri!r}")
        return cls(bucket, key.strip("/") if key.endswith("/") else key)

    def join(self, *parts: str) -> S3Uri:
        key = "/".join(p.strip("/") for p in (self.key, *parts) if p and p.strip("/"))
        return S3Uri(self.bucket, key)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}" if self.key else f"s3://{self.bucket}"


def is_s3_uri(value: str) -> bool:
    return str(value).startswith("s3://")


def join_uri(uri: str, *parts: str) -> str:
    return str(S3Uri.parse(uri).join(*parts))


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    etag: str
    size: int


def client_from_env():
    """A boto3 S3 client configured by the standard AWS environment variables."""
    return boto3.client("s3", config=CLIENT_CONFIG, region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))


class Storage:
    """Thin, typed helpers over one boto3 S3 client."""

    def __init__(self, client=None):
        self.client = client if client is not None else client_from_env()

    # -- buckets -------------------------------------------------------------------------------
    def ensure_bucket(self, bucket: str) -> None:
        try:
            self.client.head_bucket(Bucket=bucket)
        except ClientError:
            self.client.create_bucket(Bucket=bucket)

    # -- single objects ------------------------------------------------------------------------
    def get_bytes(self, uri: str) -> bytes:
        loc = S3Uri.parse(uri)
        return self.client.get_object(Bucket=loc.bucket, Key=loc.key)["Body"].read()

    def get_with_etag(self, uri: str) -> tuple[bytes, str] | None:
        """The object's bytes and ETag, or None when it does not exist."""
        loc = S3Uri.parse(uri)
        try:
            response = self.client.get_object(Bucket=loc.bucket, Key=loc.key)
        except ClientError as error:
            if _is_not_found(error):
                return None
            raise
        return response["Body"].read(), response["ETag"]

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

    def head(self, uri: str) -> ObjectInfo | None:
        loc = S3Uri.parse(uri)
        try:
            response = self.client.head_object(Bucket=loc.bucket, Key=loc.key)
        except ClientError as error:
            if _is_not_found(error):
                return None
            raise
        return ObjectInfo(loc.key, response["ETag"], response["ContentLength"])

    def exists(self, uri: str) -> bool:
        return self.head(uri) is not None

    def delete(self, uri: str) -> None:
        loc = S3Uri.parse(uri)
        self.client.delete_object(Bucket=loc.bucket, Key=loc.key)

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
    def list(self, prefix_uri: str) -> Iterator[ObjectInfo]:
        """Every object below ``prefix_uri`` (treated as a folder), in key order."""
        loc = S3Uri.parse(prefix_uri)
        prefix = f"{loc.key}/" if loc.key else ""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=loc.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield ObjectInfo(item["Key"], item["ETag"], item["Size"])

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
            list(pool.map(lambda pair: self.put_bytes(pair[1], pair[0].read_bytes()), zip(files, uris)))
        return uris

    def download_dir(self, prefix_uri: str, local_dir: str | Path) -> Path:
        local_dir = Path(local_dir)
        base = S3Uri.parse(prefix_uri)
        objects = list(self.list(prefix_uri))
        if not objects:
            raise FileNotFoundError(f"nothing under {prefix_uri}")

        def fetch(info: ObjectInfo) -> None:
            relative = info.key[len(base.key) :].lstrip("/")
            target = local_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            self.client.download_file(base.bucket, info.key, str(target))

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(fetch, objects))
        return local_dir

    def copy_prefix(self, source_uri: str, target_uri: str) -> int:
        source, target = S3Uri.parse(source_uri), S3Uri.parse(target_uri)
        objects = list(self.list(source_uri))

        def copy(info: ObjectInfo) -> None:
            relative = info.key[len(source.key) :].lstrip("/")
            self.client.copy_object(
                Bucket=target.bucket,
                Key=target.join(relative).key,
                CopySource={"Bucket": source.bucket, "Key": info.key},
            )

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(copy, objects))
        return len(objects)


def _is_not_found(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}
