"""One contract, two stores: what the fast tier's in-memory store answers is what SeaweedFS answers.

Each test runs against the real S3 server and against :class:`MemoryStorage`; ``make test-fast``
runs only the memory half (the S3 half is marked ``s3``), ``make test`` both.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from include.matcher.foundations.memory_storage import MemoryStorage, NoSuchBucket
from include.matcher.foundations.storage import MissingObject, PreconditionFailed


@pytest.fixture(params=[pytest.param("seaweedfs", marks=pytest.mark.s3), "memory"])
def store(request):
    """(store, bucket URI) in a fresh bucket of each kind."""
    if request.param == "seaweedfs":
        request.getfixturevalue("s3_server")
        from include.matcher.foundations.storage import Storage

        store = Storage()
    else:
        store = MemoryStorage()
    bucket = f"contract-{uuid.uuid4().hex[:12]}"
    store.ensure_bucket(bucket)
    yield store, f"s3://{bucket}"
    store.delete_prefix(f"s3://{bucket}/")
    store.delete_bucket(bucket)


def test_an_object_reads_back_with_the_etag_its_write_returned(store):
    storage, bucket = store
    etag = storage.put_bytes(f"{bucket}/a/b.bin", b"\x00bytes")
    assert storage.get_with_etag(f"{bucket}/a/b.bin") == (b"\x00bytes", etag)
    assert storage.get_bytes(f"{bucket}/a/b.bin") == b"\x00bytes"
    info = storage.head(f"{bucket}/a/b.bin")
    assert (info.key, info.etag, info.size, info.uri) == ("a/b.bin", etag, 6, f"{bucket}/a/b.bin") and info.modified
    assert storage.put_bytes(f"{bucket}/other.bin", b"\x00bytes") == etag  # the ETag is the content's MD5


def test_a_missing_object_is_none_or_missing_object(store):
    storage, bucket = store
    assert storage.get_with_etag(f"{bucket}/nothing") is None and storage.head(f"{bucket}/nothing") is None
    assert not storage.exists(f"{bucket}/nothing")
    with pytest.raises(MissingObject):
        storage.get_bytes(f"{bucket}/nothing")


def test_conditional_writes_refuse_a_stale_etag_and_an_existing_object(store):
    storage, bucket = store
    uri = f"{bucket}/pointer.json"
    first = storage.put_json(uri, {"version": 1}, if_none_match=True)
    with pytest.raises(PreconditionFailed):
        storage.put_json(uri, {"version": 2}, if_none_match=True)
    second = storage.put_json(uri, {"version": 2}, if_match=first)
    with pytest.raises(PreconditionFailed):
        storage.put_json(uri, {"version": 3}, if_match=first)
    with pytest.raises(PreconditionFailed):
        storage.put_json(f"{bucket}/absent.json", {}, if_match=second)
    assert storage.get_json(uri) == {"version": 2}


def test_of_racing_compare_and_swaps_exactly_one_wins(store):
    storage, bucket = store
    uri = f"{bucket}/race.json"
    etag = storage.put_json(uri, {"n": 0})

    def swap(n: int) -> bool:
        try:
            storage.put_json(uri, {"n": n}, if_match=etag)
            return True
        except PreconditionFailed:
            return False

    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(swap, range(1, 9)))
    assert won.count(True) == 1 and storage.get_json(uri) == {"n": won.index(True) + 1}


def test_listings_are_in_key_order_below_a_folder_only(store):
    storage, bucket = store
    for key in ("runs/b/x", "runs/a/y", "runs/a/x", "runsX/z", "top"):
        storage.put_bytes(f"{bucket}/{key}", key.encode())
    assert [i.key for i in storage.list(f"{bucket}/runs")] == ["runs/a/x", "runs/a/y", "runs/b/x"]
    assert [i.key for i in storage.list(f"{bucket}/runs/", limit=2)] == ["runs/a/x", "runs/a/y"]
    assert [i.key for i in storage.list(bucket)] == ["runs/a/x", "runs/a/y", "runs/b/x", "runsX/z", "top"]
    assert storage.delete_prefix(f"{bucket}/runs") == 3
    assert [i.key for i in storage.list(bucket)] == ["runsX/z", "top"]


def test_json_jsonl_folders_and_copies_come_back_as_written(store, tmp_path):
    storage, bucket = store
    storage.put_json(f"{bucket}/doc.json", {"é": [1, 2.5, None], "b": True})
    assert storage.get_json(f"{bucket}/doc.json") == {"é": [1, 2.5, None], "b": True}
    storage.put_jsonl(f"{bucket}/rows.jsonl", [{"a": 1}, {"b": "two"}])
    assert storage.get_jsonl(f"{bucket}/rows.jsonl") == [{"a": 1}, {"b": "two"}]
    (tmp_path / "model" / "sub").mkdir(parents=True)
    (tmp_path / "model" / "config.json").write_text("{}")
    (tmp_path / "model" / "sub" / "weights.bin").write_bytes(b"\x01" * 1000)
    uploaded = storage.upload_dir(tmp_path / "model", f"{bucket}/models/v1")
    assert sorted(uploaded) == [f"{bucket}/models/v1/config.json", f"{bucket}/models/v1/sub/weights.bin"]
    assert storage.copy_prefix(f"{bucket}/models/v1", f"{bucket}/models/v2") == 2
    back = storage.download_dir(f"{bucket}/models/v2", tmp_path / "back")
    assert (back / "sub" / "weights.bin").read_bytes() == b"\x01" * 1000 and (back / "config.json").read_text() == "{}"
    fetched = storage.get_many([f"{bucket}/rows.jsonl", f"{bucket}/doc.json"])
    assert fetched[1] == storage.get_bytes(f"{bucket}/doc.json")
    with pytest.raises(FileNotFoundError):
        storage.download_dir(f"{bucket}/models/none", tmp_path / "none")


def test_the_memory_store_refuses_a_bucket_never_made_and_reaching_past_the_protocol():
    storage = MemoryStorage()
    with pytest.raises(NoSuchBucket):
        storage.put_bytes("s3://never-made/key", b"")
    with pytest.raises(AttributeError, match="needs a real S3 server"):
        storage.client.list_buckets()
