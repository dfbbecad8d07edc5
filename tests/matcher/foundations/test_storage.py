import boto3
import pytest
from botocore.exceptions import ClientError

from include.matcher.foundations.storage import PreconditionFailed
from include.matcher.foundations.uris import S3Uri, join_uri


def test_uri_parsing_and_joining():
    uri = S3Uri.parse("s3://bucket/a/b/")
    assert (uri.bucket, uri.key) == ("bucket", "a/b")
    assert str(uri.join("c", "/d.json")) == "s3://bucket/a/b/c/d.json"
    assert join_uri("s3://bucket", "x") == "s3://bucket/x"
    with pytest.raises(ValueError, match="not an s3:// URI: '/local/path'"):
        S3Uri.parse("/local/path")


def test_server_requires_keys(s3_server):
    anonymous = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint,
        aws_access_key_id="wrong",
        aws_secret_access_key="wrong",
        region_name="us-east-1",
    )
    with pytest.raises(ClientError):
        anonymous.list_buckets()


def test_server_listens_on_loopback_only(s3_server):
    """Every socket the SeaweedFS process listens on is bound to 127.0.0.1, not just the S3 one."""
    import psutil

    listening = [
        c.laddr for c in psutil.Process(s3_server.pid).net_connections(kind="inet") if c.status == psutil.CONN_LISTEN
    ]
    assert listening, "the server listens on nothing?"
    assert {address.ip for address in listening} == {"127.0.0.1"}, listening


def test_json_round_trip_listing_and_missing(storage, locations):
    uri = join_uri(locations.work, "x", "a.json")
    storage.put_json(uri, {"k": [1, 2]})
    storage.put_jsonl(join_uri(locations.work, "x", "b.jsonl"), [{"i": 1}, {"i": 2}])
    assert storage.get_json(uri) == {"k": [1, 2]}
    assert storage.get_jsonl(join_uri(locations.work, "x", "b.jsonl")) == [{"i": 1}, {"i": 2}]
    assert [o.key.rsplit("/", 1)[1] for o in storage.list(join_uri(locations.work, "x"))] == ["a.json", "b.jsonl"]
    assert storage.get_with_etag(join_uri(locations.work, "missing.json")) is None


def test_conditional_writes_are_compare_and_swap(storage, locations):
    uri = join_uri(locations.work, "pointer.json")
    etag = storage.put_json(uri, {"v": 1}, if_none_match=True)
    with pytest.raises(PreconditionFailed):
        storage.put_json(uri, {"v": 2}, if_none_match=True)
    storage.put_json(uri, {"v": 2}, if_match=etag)
    with pytest.raises(PreconditionFailed):
        storage.put_json(uri, {"v": 3}, if_match=etag)
    assert storage.get_json(uri) == {"v": 2}


def test_directories_upload_download_and_copy(storage, locations, tmp_path):
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "a.txt").write_text("a")
    (tmp_path / "src" / "sub" / "b.txt").write_text("b")
    storage.upload_dir(tmp_path / "src", join_uri(locations.work, "dir"))
    storage.copy_prefix(join_uri(locations.work, "dir"), join_uri(locations.work, "copy"))
    storage.download_dir(join_uri(locations.work, "copy"), tmp_path / "out")
    assert (tmp_path / "out" / "sub" / "b.txt").read_text() == "b"


def test_delete_prefix_removes_a_folder_and_nothing_beside_it(storage, locations):
    for key in ("keep/a", "gone/a", "gone/sub/b", "gone-not/c"):
        storage.put_bytes(join_uri(locations.work, key), b"x")
    assert storage.delete_prefix(join_uri(locations.work, "gone")) == 2
    assert storage.list(join_uri(locations.work, "gone")) == []
    assert storage.exists(join_uri(locations.work, "keep/a")) and storage.exists(join_uri(locations.work, "gone-not/c"))


def test_an_outage_past_the_retries_is_storage_unavailable_never_a_missing_object(monkeypatch):
    """Nothing listens on the port: after ``MATCHER_S3_RETRY_SECONDS`` the read fails as an outage
    (503 on the page, a retry later), with the connection error as its cause."""
    from botocore.config import Config
    from botocore.exceptions import EndpointConnectionError

    from include.devtools.embedded_s3 import free_port
    from include.matcher.foundations.errors import MatcherError, NotFound, StorageUnavailable
    from include.matcher.foundations.storage import Storage

    monkeypatch.setenv("MATCHER_S3_RETRY_SECONDS", "1")
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        aws_access_key_id="k",
        aws_secret_access_key="s",
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    with pytest.raises(StorageUnavailable) as raised:
        Storage(client).get_json("s3://bucket/state/ledger.json")
    assert isinstance(raised.value, MatcherError) and not isinstance(raised.value, NotFound)
    assert isinstance(raised.value.__cause__, EndpointConnectionError) and raised.value.status == 503
