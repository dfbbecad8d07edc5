"""The parser pool survives files that hang, eat memory or crash the process."""

import os
import signal
import time

from include.matcher.documents import ParsedText, Rejected, extract_text
from include.matcher.isolation import IsolatedParser, Job


def misbehaving_parse(data, filename, limits):
    """A stand-in parser whose behaviour the file content chooses (spawned workers import it by name)."""
    if data == b"hang":
        time.sleep(600)
    if data == b"balloon":
        hog = []
        while True:
            hog.append(bytearray(50 * 2**20))
    if data == b"segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    if data == b"raise":
        raise RuntimeError("parser bug")
    return extract_text(data, filename, limits)


GOOD = b"Sous chef, ran the pass and trained commis cooks in a busy kitchen. " * 3


def test_hangs_memory_bombs_and_crashes_become_rejects_and_the_rest_still_parses():
    jobs = [Job(name, data, f"{name}.txt") for name, data in [("hang", b"hang"), ("balloon", b"balloon"), ("segfault", b"segfault"), ("raise", b"raise"), ("good-1", GOOD), ("good-2", GOOD)]]
    started = time.monotonic()
    with IsolatedParser(workers=2, timeout_s=5, memory_mb=512, parse=misbehaving_parse) as pool:
        results = dict(pool.map(jobs))
    assert time.monotonic() - started < 60
    assert set(results) == {job.id for job in jobs}
    reasons = {key: value.reason for key, value in results.items() if isinstance(value, Rejected)}
    assert reasons == {"hang": "timeout", "balloon": "memory", "segfault": "corrupt", "raise": "corrupt"}
    assert "died" in results["segfault"].detail and "RuntimeError" in results["raise"].detail
    assert isinstance(results["good-1"], ParsedText) and isinstance(results["good-2"], ParsedText)


def test_an_empty_batch_starts_no_worker():
    with IsolatedParser(workers=2) as pool:
        assert list(pool.map([])) == []
        assert pool.workers == []
