"""The embedded SeaweedFS: two of them side by side (two clones, or tests beside a demo), and a
restart right after a stop, as ``make down`` then ``make demo`` does."""

from __future__ import annotations

import random
import socket
import time

import boto3
import pytest

from include.devtools import embedded_s3

pytestmark = pytest.mark.s3  # starts SeaweedFS servers of its own


def free_s3_port() -> int:
    """A free port whose derived internal ports (+10000 ... +10008) are free too and below the
    ephemeral range, so a client's own connections cannot take them meanwhile."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(12000, 22000)
        try:
            embedded_s3.require_free([port, *embedded_s3.internal_ports_for(port)])
            return port
        except embedded_s3.PortInUse:
            continue
    pytest.skip("no free port range for an embedded S3")


def client(server):
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name="us-east-1",
    )


def test_two_servers_run_side_by_side_with_internal_ports_derived_from_their_s3_port(tmp_path):
    first_port, second_port = free_s3_port(), None
    while second_port is None or abs(second_port - first_port) < 10:
        second_port = free_s3_port()
    servers = []
    try:
        for name, port in (("a", first_port), ("b", second_port)):
            servers.append(embedded_s3.start(tmp_path / name, s3_port=port))
        for server in servers:
            s3 = client(server)
            s3.create_bucket(Bucket="side-by-side")
            s3.put_object(Bucket="side-by-side", Key="who", Body=server.endpoint.encode())
        assert [client(s).get_object(Bucket="side-by-side", Key="who")["Body"].read().decode() for s in servers] == [
            s.endpoint for s in servers
        ]
        assert servers[0].internal_ports == tuple(embedded_s3.internal_ports_for(first_port))
        assert not set(servers[0].internal_ports) & set(servers[1].internal_ports)
    finally:
        for name in ("a", "b"):
            embedded_s3.stop(tmp_path / name)


def leave_in_time_wait(port: int) -> None:
    """A connection on ``port`` closed by its accepting side first, as a stopped server's are: the
    kernel keeps it in TIME-WAIT on that port for a minute."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen()
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        accepted.close()  # the server side closes first: TIME-WAIT is on its port
        client.recv(1)
        client.close()
    deadline = time.monotonic() + 5  # the last ACK is processed by the kernel, not by this call
    while not _time_wait_on(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _time_wait_on(port)


def test_a_server_starts_again_at_once_after_a_stop_that_left_connections_in_time_wait(tmp_path):
    """``make down`` then ``make demo`` once failed for a minute: the port check tripped on the stopped
    server's connections in TIME-WAIT, which the server itself binds through."""
    port = free_s3_port()
    for held in (port, embedded_s3.internal_ports_for(port)[4]):  # the S3 port and the filer's
        leave_in_time_wait(held)
    server = embedded_s3.start(tmp_path / "s3", s3_port=port)
    try:
        s3 = client(server)
        s3.create_bucket(Bucket="restart")
        for index in range(20):  # connections the server closes when it stops
            s3.put_object(Bucket="restart", Key=f"k{index}", Body=b"x")
        embedded_s3.stop(tmp_path / "s3")
        again = embedded_s3.start(tmp_path / "s3", s3_port=port)  # at once
        assert client(again).get_object(Bucket="restart", Key="k19")["Body"].read() == b"x"
    finally:
        embedded_s3.stop(tmp_path / "s3")


def test_a_port_held_by_a_listening_process_is_still_refused():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(embedded_s3.PortInUse, match="already in use"):
            embedded_s3.require_free([taken.getsockname()[1]])


def _time_wait_on(port: int) -> bool:
    """Whether a connection in TIME-WAIT holds ``port`` (from /proc/net/tcp; state 06)."""
    from pathlib import Path

    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(int(line.split()[1].split(":")[1], 16) == port and line.split()[3] == "06" for line in lines)
