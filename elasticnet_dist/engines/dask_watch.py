"""Watching a Dask computation that makes no progress, so that a pass never hangs.

A pass waits for its futures in rounds of :data:`WATCH_SECONDS`; after a round in
which none of its tasks finished, :meth:`Watch.look` asks the scheduler where its
tasks are and recognises the two ways a Dask computation can wait for ever:

* **Paused workers.** Dask pauses a worker at 80% of its memory limit and waits
  for memory to come back, which it does not when the blocks themselves, or
  memory the allocator keeps, fill it. Tasks queued on a paused worker are not
  taken by the others (dask/distributed#5235). Verdict ``"paused"`` when every
  worker, or every worker that holds this pass's tasks, has been paused for
  ``paused_timeout`` seconds.
* **Stranded tasks.** A task placed with ``workers=[address],
  allow_other_workers=True`` goes to the ``no-worker`` state when its worker
  leaves while no other worker runs (all killed at once, or restarted by their
  nannies at the memory limit), and Dask then waits for that address for ever,
  even after new workers have joined: it looks for a worker among the task's
  restrictions only (dask/distributed#7346). Verdict ``"stranded"`` when, in
  :data:`STRANDED_WATCHES` rounds in a row, none of the pass's tasks (nor the
  blocks it reads) was being processed anywhere while a running worker had a
  free thread; the engine then submits the work again.
"""
from __future__ import annotations

import time

#: Seconds between two looks at a waiting pass.
WATCH_SECONDS = 2.0
#: Seconds the workers may stay paused at their memory limit before a pass stops.
PAUSED_SECONDS = 30.0
#: Rounds in a row without any of a pass's tasks running before they count as stranded.
STRANDED_WATCHES = 2


class Stranded(Exception):
    """Tasks that Dask will never run (see the module docstring)."""

    def __init__(self, futures):
        super().__init__("%d tasks are stranded" % len(futures))
        self.futures = futures


class Watch:
    """The state of one wait: the futures waited for, and ``upstream``, the
    futures they are computed from (their running counts as progress too)."""

    def __init__(self, client, futures, upstream=(), paused_timeout=PAUSED_SECONDS):
        self.client = client
        self.futures = list(futures) + list(upstream)
        self.keys = {f.key for f in self.futures}
        self.paused_timeout = paused_timeout
        self.workers = {}          # the scheduler's worker records at the last look
        self._done = -1
        self._paused_since = None
        self._stranded_rounds = 0

    def pending(self):
        return sum(not f.done() for f in self.futures)

    def look(self):
        """``None``, ``"paused"`` or ``"stranded"``, after a round of waiting."""
        done = len(self.futures) - self.pending()
        if done != self._done:  # progress: start the clocks again
            self._done, self._paused_since, self._stranded_rounds = done, None, 0
            return None
        self.workers = self.client.scheduler_info().get("workers", {})
        processing = self.client.processing()
        holders = [addr for addr, keys in processing.items() if self.keys.intersection(keys)]
        status = {addr: w.get("status") for addr, w in self.workers.items()}

        idle = any(state == "running"
                   and len(processing.get(addr, ())) < self.workers[addr].get("nthreads", 1)
                   for addr, state in status.items())
        self._stranded_rounds = self._stranded_rounds + 1 if not holders and idle else 0
        if self._stranded_rounds >= STRANDED_WATCHES:
            return "stranded"

        paused = bool(status) and all(status.get(addr) == "paused"
                                      for addr in (holders or status))
        if not paused:
            self._paused_since = None
            return None
        self._paused_since = self._paused_since or time.monotonic()
        if time.monotonic() - self._paused_since >= self.paused_timeout:
            return "paused"
        return None
