"""``s3://`` URIs: parsing and joining, with no S3 client (what layout and settings need of them)."""

from __future__ import annotations

from dataclasses import dataclass


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


def join_uri(uri: str, *parts: str) -> str:
    return str(S3Uri.parse(uri).join(*parts))
