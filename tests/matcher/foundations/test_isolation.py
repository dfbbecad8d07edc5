"""The parser pool survives files that hang, eat memory or crash the process."""

import os
import signal
import time

import pytest

from include.matcher.foundations.documents import ParsedText, Rejected, extract_text
from include.matcher.foundations.isolation import Document, IsolatedParser


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
    jobs = [
        Document(name, data, f"{name}.txt")
        for name, data in [
            ("hang", b"hang"),
            ("balloon", b"balloon"),
            ("segfault", b"segfault"),
            ("raise", b"raise"),
            ("good-1", GOOD),
            ("good-2", GOOD),
        ]
    ]
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


ENTRY = """
import contextlib, sys
if __name__ != "__main__":
    raise SystemExit("re-imported in a worker")
import include.matcher.foundations.isolation as isolation
if sys.argv[1:] == ["--reimport-main"]:
    isolation._main_module_hidden = contextlib.nullcontext  # what spawn does by default
try:
    with isolation.IsolatedParser(2) as pool:
        results = pool.map([isolation.Document(str(i), GOOD, "cv.txt") for i in range(3)])
        print(sorted(type(result).__name__ for _, result in results))
except isolation.WorkerStartupError as error:
    print("WorkerStartupError", error)
"""


def run_entry(tmp_path, *args: str) -> str:
    import subprocess
    import sys

    from tests.helpers import PROJECT_ROOT

    script = tmp_path / "entry.py"
    script.write_text(ENTRY.replace("GOOD", repr(GOOD)))
    result = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


def test_workers_start_under_a_main_script_that_cannot_be_reimported(tmp_path):
    """Inside an Airflow task the main script is the airflow CLI, whose re-import fails without a database."""
    assert run_entry(tmp_path) == "['ParsedText', 'ParsedText', 'ParsedText']"


def test_a_worker_that_cannot_start_fails_the_task_instead_of_rejecting_files(tmp_path):
    assert run_entry(tmp_path, "--reimport-main").startswith(
        "WorkerStartupError a parser process failed to start (exit code 1)"
    )


TEXT = b"Line cook with five years on a busy grill station, sauces and prep for 200 covers a night; menu costing."


def _parse_in_a_daemonic_process(queue) -> None:
    try:
        with IsolatedParser(workers=1) as pool:
            queue.put(
                [
                    (key, getattr(result, "text", None) or repr(result))
                    for key, result in pool.map([Document("a.txt", TEXT, "a.txt")])
                ]
            )
    except Exception as error:  # noqa: BLE001 - the parent asserts on what happened
        queue.put(repr(error))


@pytest.mark.parametrize("library", ["multiprocessing", "billiard"])
def test_the_pool_starts_inside_a_daemonic_process_as_celery_prefork_workers_run_tasks(library):
    """CeleryExecutor's default pool runs each task in a daemonic process forked by billiard
    (Celery's multiprocessing); parsing must work there as in a plain daemonic process."""
    import importlib

    context = importlib.import_module(library).get_context("fork")
    queue = context.Queue()
    process = context.Process(target=_parse_in_a_daemonic_process, args=(queue,), daemon=True)
    process.start()
    outcome = queue.get(timeout=120)
    process.join(30)
    assert outcome == [("a.txt", TEXT.decode())], outcome
