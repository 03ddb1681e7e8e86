"""A stage stops when the process that started it dies (no orphan keeps writing outputs).

``dvc repro`` runs a stage as ``sh -c "<cmd>"``; when ``dvc`` is killed (SIGKILL, an OOM kill, a closed
terminal), the shell and the stage are re-parented and would carry on writing outputs nobody will record.
:func:`stop_with_driver` starts a daemon thread that watches the *driver*: the nearest ancestor that is not a
``sh -c`` / ``bash -c`` wrapper (``dvc``, ``torchrun``, the Prefect flow, or the user's interactive shell).
When the driver is gone, the stage is interrupted as by Ctrl-C (SIGINT: ``atomic_dir`` removes its
temporaries, the trainers save a resumable checkpoint) and, if it has not ended after a grace period, it exits.

Linux only (``/proc``); elsewhere the direct parent is watched through ``os.getppid()``.
"""
from __future__ import annotations

import _thread
import concurrent.futures
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("motion.process")

WRAPPER_SHELLS = frozenset({"sh", "bash", "dash", "zsh"})
POLL_S = 0.5
GRACE_S = 30.0


@dataclass(frozen=True)
class Process:
    """A process seen in ``/proc``: its pid, parent, start time (clock ticks since boot) and command line."""

    pid: int
    ppid: int
    start: int
    argv: tuple[str, ...]


def read_process(pid: int, proc: Path = Path("/proc")) -> Process | None:
    """The process ``pid`` from ``/proc``, or None when it does not exist (or /proc is unavailable)."""
    try:
        stat = (proc / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
        cmdline = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state ppid ... starttime is field 22
    argv = tuple(part.decode(errors="replace") for part in cmdline.split(b"\0") if part)
    return Process(pid, int(fields[1]), int(fields[19]), argv)


def is_wrapper_shell(process: Process) -> bool:
    """True for ``sh -c "..."``-style wrappers (a shell given a command string), not for interactive shells."""
    return bool(process.argv) and Path(process.argv[0]).name in WRAPPER_SHELLS and "-c" in process.argv[1:]


def find_driver(pid: int | None = None, proc: Path = Path("/proc")) -> Process | None:
    """The nearest ancestor of ``pid`` (default: this process) that is not a wrapper shell."""
    me = read_process(pid or os.getpid(), proc)
    if me is None:
        return None
    parent = read_process(me.ppid, proc)
    while parent is not None and parent.pid > 1 and is_wrapper_shell(parent):
        parent = read_process(parent.ppid, proc)
    if parent is None or parent.pid <= 1:
        return None
    return parent


def driver_alive(driver: Process, proc: Path = Path("/proc")) -> bool:
    """Whether the driver still runs (the same process: a reused pid has another start time)."""
    now = read_process(driver.pid, proc)
    return now is not None and now.start == driver.start


def _interrupt_then_exit(grace_s: float) -> None:
    _thread.interrupt_main(signal.SIGINT)
    time.sleep(grace_s)
    os._exit(130)


_watcher: threading.Thread | None = None


def stop_with_driver(poll_s: float = POLL_S, grace_s: float = GRACE_S) -> threading.Thread | None:
    """Watch this process's driver from a daemon thread; when it dies, interrupt this process (SIGINT).

    One watcher per process (a second call returns the first). Returns the thread, or None when there is
    nothing to watch (no parent process but init)."""
    global _watcher
    if _watcher is not None and _watcher.is_alive():
        return _watcher
    driver = find_driver()
    start_ppid = os.getppid()
    if driver is None and start_ppid <= 1:
        return None
    name = Path(driver.argv[0]).name if driver and driver.argv else "parent"
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL, None):
        # Started with SIGINT ignored (by a background `cmd &` of a script, which DVC passes on to its stages),
        # the interrupt below would do nothing and the stage would end without its cleanup: the watcher's
        # interrupt is this process's own stop request, so it must raise KeyboardInterrupt.
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def gone() -> bool:
        if driver is not None:
            return not driver_alive(driver)
        return os.getppid() != start_ppid

    def watch() -> None:
        while not gone():
            time.sleep(poll_s)
        pid = driver.pid if driver else start_ppid
        print(f"the process that started this one ({name}, pid {pid}) is gone: stopping", file=sys.stderr,
              flush=True)
        _interrupt_then_exit(grace_s)

    _watcher = threading.Thread(target=watch, name="stop-with-driver", daemon=True)
    _watcher.start()
    return _watcher


def side_by_side(processes: int) -> concurrent.futures.ProcessPoolExecutor:
    """A pool of ``processes`` workers for a stage's independent runs (TMR roles, LGTM runs, generated sets).

    Workers are spawned, not forked (a forked child of a process that has started torch's thread pools can
    hang), and each watches the stage that started it (``stop_with_driver``), so killing the stage stops them.
    A worker's result depends only on what it is given and on its thread count, never on the pool.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"), initializer=stop_with_driver)
