"""Decode worker processes that live as long as the run, fed through one pipe each.

Why not torch's DataLoader or multiprocessing.Pool: the DataLoader needs torch (2-3 s to
import) and restarted its workers for every page of rows; a Pool hangs for ever when a
worker dies mid-task (it replaces the process and forgets the task). Here the parent
knows which tasks each worker holds, so a worker killed by a file (a decoder crash, the
OOM killer) costs exactly that file, which gets an error row, and a fresh worker takes
over the rest.

- Workers are forked before the network is loaded (small, and no threads to fork).
- They die with the parent (PR_SET_PDEATHSIG), ignore Ctrl-C (the parent stops them) and
  drop the DB writer lock they inherit (db.connection closes it at fork).
- Memory is bounded: at most ``depth`` tasks per worker, and the caller decides how many
  results may wait (it submits only as far ahead as it wants).
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable, Hashable
from multiprocessing import connection, get_context
from typing import Any

from config import InvalidInputError

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Have Linux kill this process when ``parent_pid`` dies: otherwise a SIGKILLed main.py
    would leave workers behind, blocked writing to a pipe nobody reads."""
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(1)  # the parent died before the request took effect


def _serve(job: Callable[[Any], Any], tasks: connection.Connection, results: connection.Connection,
           parent_pid: int) -> None:
    """A worker's life: (key, argument) in, (key, ok, value) out, until None arrives."""
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent handles it
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's "stop cleanly" handler
    while True:
        try:
            task = tasks.recv()
        except EOFError:
            return
        if task is None:
            return
        key, argument = task
        try:
            results.send((key, True, job(argument)))
        except Exception as exc:  # a bug, not a bad file (the job returns those): report it, keep serving
            results.send((key, False, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


class WorkerPool:
    """``job(argument)`` in ``workers`` forked processes; results are fetched by key.

    on_lost(argument, why) makes the result of a task whose worker died or raised (one line
    ``why``), so the caller always gets one result per task.
    """

    def __init__(self, job: Callable[[Any], Any], workers: int, on_lost: Callable[[Any, str], Any], depth: int = 2):
        if workers < 1:
            raise InvalidInputError(f"workers must be a positive integer, got {workers!r}")
        self._job, self._on_lost, self._depth = job, on_lost, depth
        self._context = get_context("fork")  # inherits the job; the workers never import anything
        self._parent = os.getpid()
        self._cond = threading.Condition()
        self._waiting: deque[tuple[Hashable, Any]] = deque()
        self._done: dict[Hashable, Any] = {}
        self._slots: list[dict] = [self._spawn() for _ in range(workers)]
        self._closing = False
        self._wake_read, self._wake_write = os.pipe()  # close() wakes the result thread through it
        self._collector = threading.Thread(target=self._collect, name="decode-results", daemon=True)
        self._collector.start()

    @property
    def size(self) -> int:
        return len(self._slots)

    def _spawn(self) -> dict:
        task_read, task_write = self._context.Pipe(duplex=False)
        result_read, result_write = self._context.Pipe(duplex=False)
        process = self._context.Process(target=_serve, args=(self._job, task_read, result_write, self._parent),
                                        daemon=True, name="decode-worker")
        process.start()
        task_read.close()
        result_write.close()
        return {"process": process, "tasks": task_write, "results": result_read, "held": deque(), "dead": False}

    def submit(self, key: Hashable, argument: Any) -> None:
        """Queue one task; its result is fetched with ``result(key)``."""
        with self._cond:
            self._waiting.append((key, argument))
            self._dispatch()

    def result(self, key: Hashable) -> Any:
        """The result of the task ``key`` (blocks until it is there), removed from the pool."""
        with self._cond:
            while key not in self._done:
                if not self._collector.is_alive():
                    raise RuntimeError("the decode workers' result thread stopped")
                self._cond.wait(timeout=1.0)
            return self._done.pop(key)

    def _dispatch(self) -> None:
        """Hand waiting tasks to the least busy workers (caller holds the lock)."""
        while self._waiting:
            alive = [s for s in self._slots if not s["dead"]]
            slot = min(alive, key=lambda s: len(s["held"]), default=None)
            if slot is None or len(slot["held"]) >= self._depth:
                return  # a replaced worker calls again
            key, argument = self._waiting[0]
            try:
                slot["tasks"].send((key, argument))
            except OSError:  # it died: the result thread replaces it and dispatches again
                slot["dead"] = True
                continue
            self._waiting.popleft()
            slot["held"].append((key, argument))

    def _collect(self) -> None:
        """Result thread: receive results and notice dead workers while the caller runs the network."""
        while not self._closing:
            with self._cond:
                by_handle = {}
                for slot in self._slots:
                    by_handle[slot["results"]] = slot
                    by_handle[slot["process"].sentinel] = slot
            ready = connection.wait([*by_handle, self._wake_read], timeout=5)
            if self._closing:
                return
            for handle in ready:
                slot = by_handle.get(handle)
                if slot is None:
                    continue  # the wake-up pipe
                if handle is slot["results"]:
                    self._receive(slot)
                elif slot in self._slots and not slot["process"].is_alive():
                    self._replace(slot)

    def _receive(self, slot: dict) -> bool:
        try:
            key, ok, value = slot["results"].recv()
        except (EOFError, OSError):
            return False  # the worker died: its sentinel tells
        with self._cond:
            held_key, argument = slot["held"].popleft()
            if not ok:
                log.error("decode worker failed on %r: %s", argument, value)
                value = self._on_lost(argument, value.splitlines()[0])
            self._done[held_key] = value
            self._dispatch()  # keep the worker busy while the caller runs the network
            self._cond.notify_all()
        return True

    def _replace(self, slot: dict) -> None:
        """A worker died: keep what it sent, fail the task it was on, give the rest to a new worker."""
        while slot["held"] and slot["results"].poll(0) and self._receive(slot):
            pass
        code = slot["process"].exitcode
        why = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
        with self._cond:
            if slot["held"]:
                key, argument = slot["held"].popleft()
                log.error("a decode worker died (%s) while reading %s", why, argument)
                self._done[key] = self._on_lost(argument, f"the decoder crashed on this file ({why})")
                self._waiting.extendleft(reversed(slot["held"]))
            slot["tasks"].close()
            slot["results"].close()
            self._slots[self._slots.index(slot)] = self._spawn()
            self._dispatch()
            self._cond.notify_all()

    def close(self) -> None:
        """Stop every worker; tasks not fetched yet are dropped (a busy worker is killed: it
        holds nothing that is not recomputed by the next run)."""
        self._closing = True
        os.write(self._wake_write, b"x")
        self._collector.join(timeout=5)
        os.close(self._wake_read)
        os.close(self._wake_write)
        for slot in self._slots:
            if slot["held"]:
                slot["process"].kill()
            else:
                try:
                    slot["tasks"].send(None)
                except OSError:
                    slot["process"].kill()
        for slot in self._slots:
            slot["process"].join(timeout=2)
            if slot["process"].is_alive():
                slot["process"].kill()
                slot["process"].join()
            slot["tasks"].close()
            slot["results"].close()
