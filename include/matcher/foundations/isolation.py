"""Parse untrusted documents in worker processes, each with a wall-clock timeout and a memory cap.

A PDF that loops forever or a DOCX that balloons in memory must cost one reject, not the task. The
pool keeps ``workers`` long-lived processes (so imports are paid once); a worker that overruns its
deadline is killed and replaced, one that hits its address-space limit reports ``memory``, and one
that dies outright (a crash in a C extension) is reported as ``corrupt`` with its exit signal.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from include.matcher.foundations.documents import ParsedText, Rejected, extract_text
from include.matcher.foundations.errors import MatcherError
from include.matcher.foundations.settings import ParseLimits

# spawn, not fork: the parent runs S3 download threads, and forking a threaded process can
# copy a held lock into the child.
CONTEXT = multiprocessing.get_context("spawn")
READY = "ready"
STARTUP_TIMEOUT_S = 120.0


class WorkerStartupError(MatcherError, RuntimeError):
    """A parser process could not start: the machine's problem, never the file's (the task fails and retries)."""


@contextmanager
def _main_module_hidden():
    """Keep spawned workers from re-running the parent's ``__main__``.

    Spawn re-imports the parent's main script in each child. Inside an Airflow task that script is
    the ``airflow`` CLI, whose import needs a metadata database the task runner deliberately withholds,
    so every worker would die at start-up. The workers need only this package.
    """
    main = sys.modules.get("__main__")
    saved = {
        name: main.__dict__[name] for name in ("__file__", "__spec__") if main is not None and name in main.__dict__
    }
    try:
        for name in saved:
            setattr(main, name, None) if name == "__spec__" else delattr(main, name)
        yield
    finally:
        for name, value in saved.items():
            setattr(main, name, value)


@contextmanager
def children_allowed():
    """Let a Celery worker's task process start the parse workers.

    A Celery worker's default (prefork) pool runs each task in a daemonic process forked by
    billiard, Celery's fork of multiprocessing. Two things then stop multiprocessing from starting
    children: it refuses children to daemonic processes ("daemonic processes are not allowed to have
    children") because they could outlive their parent, and the process's auth key is billiard's
    type, which multiprocessing's spawn cannot pickle. The parse workers cannot outlive the task:
    the pool kills each one on timeout, on close and when the task ends, and each is itself daemonic.
    So while they start, the process counts as non-daemonic with a standard auth key.
    """
    process = multiprocessing.current_process()
    saved = {key: process._config[key] for key in ("daemon", "authkey") if key in process._config}
    process._config["daemon"] = False
    process._config["authkey"] = multiprocessing.process.AuthenticationString(bytes(process.authkey))
    try:
        yield
    finally:
        process._config.update(saved)


@dataclass(frozen=True)
class Document:
    """One file to parse: an id to answer under, its bytes, and the name its extension is read from."""

    id: str
    data: bytes
    filename: str


def _worker(conn: Connection, memory_bytes: int, limits: ParseLimits, parse: Callable) -> None:
    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    conn.send(READY)
    while True:
        try:
            document = conn.recv()
        except EOFError:
            return
        try:
            result = parse(document.data, document.filename, limits)
            reply = ("parsed", result.text, result.kind, result.extractor, result.version, result.fallback)
        except Rejected as rejected:
            reply = ("rejected", rejected.reason, rejected.detail)
        except MemoryError:
            reply = ("rejected", "memory", f"parser exceeded the {memory_bytes // 2**20} MiB memory limit")
        except Exception as error:  # noqa: BLE001 - any parser failure is a reject, never a crash
            reply = ("rejected", "corrupt", f"{type(error).__name__}: {error}"[:500])
        conn.send((document.id, reply))


class _Worker:
    def __init__(self, memory_bytes: int, limits: ParseLimits, parse: Callable):
        self.conn, child = CONTEXT.Pipe()
        with _main_module_hidden(), children_allowed():  # the process copies its parent's config when made
            self.process = CONTEXT.Process(target=_worker, args=(child, memory_bytes, limits, parse), daemon=True)
            self.process.start()
        child.close()
        self.document: Document | None = None
        self.deadline = 0.0

    def wait_ready(self, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        """Block until the worker has started; a worker that dies first fails the task, not a file."""
        try:
            if self.conn.poll(timeout_s) and self.conn.recv() == READY:
                return
        except (EOFError, OSError):
            pass
        self.process.join(5)
        code = self.process.exitcode
        self.kill()
        raise WorkerStartupError(f"a parser process failed to start (exit code {code}); its stderr is in the task log")

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.conn.close()


class IsolatedParser:
    """A pool of parser processes. Use as a context manager; :meth:`map` yields results as they finish."""

    def __init__(
        self,
        workers: int | None = None,
        timeout_s: float | None = None,
        memory_mb: int | None = None,
        limits: ParseLimits | None = None,
        parse: Callable[[bytes, str, ParseLimits], ParsedText] = extract_text,
    ):
        """Pool size, per-file timeout and memory cap come from ``limits`` unless given here."""
        self.limits = limits or ParseLimits()
        self.size = max(1, workers or self.limits.workers or os.cpu_count() or 1)
        self.timeout_s = self.limits.timeout_s if timeout_s is None else timeout_s
        memory_mb = self.limits.memory_mb if memory_mb is None else memory_mb
        self.memory_bytes = memory_mb * 2**20 if memory_mb else 0
        self.parse = parse
        self.workers: list[_Worker] = []

    def __enter__(self) -> IsolatedParser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for worker in self.workers:
            worker.kill()
        self.workers = []

    def _spawn(self, count: int = 1) -> None:
        started = [_Worker(self.memory_bytes, self.limits, self.parse) for _ in range(count)]
        self.workers.extend(started)
        for worker in started:  # started together, awaited together: imports overlap
            worker.wait_ready()

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        self.workers.remove(worker)
        self._spawn()

    def map(self, documents: Iterable[Document]) -> Iterator[tuple[str, ParsedText | Rejected]]:
        """(document id, ParsedText or Rejected) for every document, in completion order."""
        pending = deque(documents)
        missing = min(self.size, len(pending)) - len(self.workers)
        if missing > 0:
            self._spawn(missing)
        while pending or any(w.document for w in self.workers):
            for worker in self.workers:
                if worker.document is None and pending:
                    worker.document = pending.popleft()
                    worker.deadline = time.monotonic() + self.timeout_s
                    worker.conn.send(worker.document)
            busy = [w for w in self.workers if w.document is not None]
            timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            ready = set(wait([w.conn for w in busy], timeout=timeout))
            for worker in busy:
                document = worker.document
                if worker.conn in ready:
                    try:
                        job_id, reply = worker.conn.recv()
                    except (EOFError, OSError):
                        worker.process.join(5)
                        code = worker.process.exitcode
                        yield document.id, Rejected("corrupt", f"parser process died (exit code {code})")
                        self._replace(worker)
                        continue
                    worker.document = None
                    yield (
                        job_id,
                        ParsedText(*reply[1:]) if reply[0] == "parsed" else Rejected(reply[1], reply[2]),
                    )
                elif time.monotonic() >= worker.deadline:
                    yield document.id, Rejected("timeout", f"parsing took longer than {self.timeout_s:g}s")
                    self._replace(worker)
