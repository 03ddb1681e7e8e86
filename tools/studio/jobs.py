"""One device worker with a bounded queue: the studio's only place where models run.

Requests never run a model on their own thread: they submit a job and poll it (generation) or wait for it
(search). A single worker thread takes jobs one at a time, so two generations never share a device; when the
queue is full ``submit`` raises ``Busy`` and the page says "busy, retry".
"""
from __future__ import annotations

import itertools
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from motion.core.errors import DataError


class Busy(RuntimeError):
    """The job queue is full."""


class UserError(ValueError):
    """Bad input the person can fix: the message is shown in the page as is."""


# Errors whose message is meant for the person (one line naming the file or value and the fix).
USER_ERRORS: tuple[type[BaseException], ...] = (UserError, ValueError, DataError, KeyError, FileNotFoundError)


@dataclass
class Job:
    """A unit of device work and what the page can see of it."""

    id: str
    kind: str
    status: str = "queued"          # queued | running | done | failed
    step: int = 0
    total: int = 0
    phase: str = "queued"
    error: str = ""
    result: Any = None
    data: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    finished: threading.Event = field(default_factory=threading.Event, repr=False)

    def public(self) -> dict[str, Any]:
        """The JSON view of the job."""
        return {"id": self.id, "kind": self.kind, "status": self.status, "step": self.step, "total": self.total,
                "phase": self.phase, "error": self.error, **self.data}


def user_message(err: BaseException) -> str:
    """A one-line message for the page: the error's own text for user errors, a generic line otherwise."""
    if isinstance(err, USER_ERRORS):
        text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
        return " ".join(text.split())[:500] or type(err).__name__
    return f"internal error ({type(err).__name__}); see the studio's terminal"


class DeviceWorker:
    """A single worker thread draining a bounded FIFO queue of jobs."""

    def __init__(self, capacity: int = 4, keep: int = 200) -> None:
        if capacity < 1:
            raise ValueError("the queue needs room for at least one job")
        self._queue: queue.Queue[tuple[Job, Callable[[Job], Any]]] = queue.Queue(maxsize=capacity)
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._keep = keep
        self.running = 0  # jobs running right now (0 or 1): checked by the tests
        self.max_running = 0
        self._thread = threading.Thread(target=self._run, name="studio-device-worker", daemon=True)
        self._thread.start()

    def submit(self, kind: str, work: Callable[[Job], Any]) -> Job:
        """Queue ``work(job)``; raise Busy when the queue is full."""
        with self._lock:
            job = Job(id=f"{kind[0]}{next(self._ids):05d}", kind=kind)
            try:
                self._queue.put_nowait((job, work))
            except queue.Full:
                raise Busy("busy, retry: the studio is already working on its queue of requests") from None
            self._jobs[job.id] = job
            if len(self._jobs) > self._keep:
                for old in [j for j in self._jobs.values() if j.finished.is_set()][: len(self._jobs) - self._keep]:
                    del self._jobs[old.id]
        return job

    def get(self, job_id: str) -> Job | None:
        """The job with this id, if known."""
        with self._lock:
            return self._jobs.get(job_id)

    def pending(self) -> int:
        """Jobs waiting in the queue (not counting the running one)."""
        return self._queue.qsize()

    def _run(self) -> None:
        while True:
            job, work = self._queue.get()
            job.status = job.phase = "running"
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            try:
                job.result = work(job)
                job.status = job.phase = "done"
            except BaseException as err:  # noqa: BLE001 - a failing job must never stop the worker
                job.status = job.phase = "failed"
                job.error = user_message(err)
                if not isinstance(err, USER_ERRORS):
                    traceback.print_exc(file=sys.stderr)
            finally:
                self.running -= 1
                job.finished.set()
                self._queue.task_done()
