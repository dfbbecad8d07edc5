"""S3 faults a real night meets: the server restarting mid-stage, and throttling (503) answers.

Each test runs ingest + parse on demo data through a real SeaweedFS of its own, with the fault
injected on the wire; the stages must finish with every file accounted for.
"""

from __future__ import annotations

import http.client
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

import boto3
import pytest

from include.devtools import embedded_s3
from include.matcher.foundations.settings import Locations
from include.matcher.foundations.storage import CLIENT_CONFIG, Storage
from include.matcher.foundations.uris import join_uri
from include.matcher.stages.ingest import ingest
from include.matcher.stages.parse import parse


def client_for(server, endpoint: str | None = None):
    return boto3.client(
        "s3",
        endpoint_url=endpoint or server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name="us-east-1",
        config=CLIENT_CONFIG,
    )


def seed(storage: Storage, demo_folder) -> Locations:
    bucket = f"faults-{uuid.uuid4().hex[:8]}"
    storage.ensure_bucket(bucket)
    locations = Locations(
        **{name: value.replace("s3://matcher/", f"s3://{bucket}/") for name, value in Locations().__dict__.items()}
    )
    storage.upload_dir(demo_folder / "cvs", locations.raw_cvs)
    storage.put_bytes(locations.jobs_file, (demo_folder / "job_descriptions.json").read_bytes())
    return locations


def ingest_and_parse(storage: Storage, locations: Locations) -> dict:
    run = join_uri(locations.work, "runs", "r1")
    parse(ingest(run, locations, storage), run, locations, storage)
    return storage.get_json(join_uri(run, "parse", "summary.json"))


@pytest.fixture
def own_server(tmp_path):
    server = embedded_s3.start(tmp_path / "s3", s3_port=embedded_s3.free_port(), base_port=None)
    yield server
    embedded_s3.stop(tmp_path / "s3")


def test_the_server_restarting_mid_parse_is_survived(own_server, demo_folder):
    storage = Storage(client_for(own_server))
    locations = seed(storage, demo_folder)
    requests = {"count": 0, "restarted": False}
    port = int(own_server.endpoint.rsplit(":", 1)[1])

    def restart_once(**_):
        requests["count"] += 1
        if requests["count"] == 20 and not requests["restarted"]:
            requests["restarted"] = True
            embedded_s3.stop(own_server.data_dir)  # the next requests meet a closed port
            threading.Timer(
                1.0,
                embedded_s3.start,
                args=(own_server.data_dir,),
                kwargs={"s3_port": port, "internal_ports": list(own_server.internal_ports)},
            ).start()

    storage.client.meta.events.register("before-send.s3", restart_once)
    summary = ingest_and_parse(storage, locations)
    assert requests["restarted"]
    assert summary["parsed"] == 30 and summary["rejected"] == 3


class ThrottlingProxy(ThreadingHTTPServer):
    """Forwards to S3, but during a burst answers every ``every``-th request with 503 SlowDown."""

    daemon_threads = True

    def __init__(self, upstream: str, every: int, burst: int):
        self.upstream = urlparse(upstream)
        self.every = every
        self.burst = burst
        self.seen = 0
        self.throttled = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _ProxyHandler)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # answers botocore's "Expect: 100-continue" at once

    def log_message(self, *args):
        pass

    def _handle(self):
        server: ThrottlingProxy = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with server.lock:
            server.seen += 1
            throttle = server.seen % server.every == 0 and server.seen <= server.burst
            server.throttled += throttle
        if throttle:
            payload = (
                b"<?xml version='1.0'?><Error><Code>SlowDown</Code>"
                b"<Message>Please reduce your request rate.</Message></Error>"
            )
            self.send_response(503)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        upstream = http.client.HTTPConnection(server.upstream.hostname, server.upstream.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "expect"}  # Host kept: SigV4 signed it
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        data = response.read()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in {"transfer-encoding", "connection", "content-length"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle


def test_throttling_answers_are_retried(s3_server, demo_folder):
    proxy = ThrottlingProxy(s3_server.endpoint, every=3, burst=60)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        storage = Storage(client_for(s3_server, f"http://127.0.0.1:{proxy.server_address[1]}"))
        started = time.monotonic()
        summary = ingest_and_parse(storage, seed(Storage(client_for(s3_server)), demo_folder))
        assert proxy.throttled >= 10, proxy.throttled
        assert summary["parsed"] == 30 and summary["rejected"] == 3
        assert time.monotonic() - started < 300
    finally:
        proxy.shutdown()
