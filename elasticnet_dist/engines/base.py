"""What every engine shares: the pass counter, the summaries, the source interface.

An engine caches decoded blocks where its workers are and runs passes over
them, knowing nothing of elastic nets (it imports no loss, penalty, problem or
solver): a pass is ``run_pass(kernel, hint)``, the function ``kernel(block) ->
dict of float64 arrays`` evaluated on every block and the results added by the
fixed-shape tree of :mod:`elasticnet_dist.reduction`, with a
:class:`~elasticnet_dist.reduction.PassHint` (how large the results are). The
solvers see an engine through :class:`elasticnet_dist.sources.EngineSource`.

Subclasses implement:

- ``_load(pieces, decoder) -> [BlockSummary]``: decode every piece once, keep
  the blocks, return their summaries in piece order (``_load_frame`` does the
  same for the engine's own DataFrame kind, ``frame_kind``);
- ``_pass(kernel, hint) -> dict``: ``kernel`` on every block, merged with
  :func:`~elasticnet_dist.reduction.tree_merge` in piece order (so the rounding
  depends only on the pieces, never on scheduling);
- ``_release()``: drop the cached blocks.

Optional capabilities, explicit (the base class says "not available"):
``worker_memory_limit()`` (None: unknown), ``runs_tasks`` with
``solve_tasks(fn, shared, stages)`` (driver jobs on the workers),
``hosts_objects`` with ``host_objects(factory, shared, jobs)`` (stateful driver
objects living on the workers), ``map_jobs(task, jobs)`` (independent jobs on
the workers; here, in order), and ``gather_bytes()`` with ``gather_blocks()``
(the cached blocks fetched into this process, for a table small enough that
passes are cheaper here).
"""
from __future__ import annotations

import logging
import os
import time

import numpy as np

from .. import progress
from ..errors import MemoryBudgetError, UnreadableFileError
from ..memory import available_memory
from ..reduction import FAN_IN, PassHint

log = logging.getLogger("elasticnet_dist")

#: Ways to keep the table between passes: ``memory`` caches every decoded block
#: on the workers (stops early if they lack the memory), ``none`` decodes the
#: Parquet pieces again in every pass, ``auto`` caches when it fits.
CACHE_MODES = ("auto", "memory", "none")
#: Share of the engine's memory the cached blocks may fill; the rest is for each
#: pass's temporaries: a chunk of rows, and the partial sums (K + 1 p x p
#: matrices per block and up to FAN_IN + 1 of them per merge in a CV Gram pass).
CACHE_SHARE = 0.5
#: Passes whose matrices take fewer bytes per block are not checked against memory.
MIN_CHECKED_BYTES = 64 * 2**20


def cached_bytes(pieces, decoder):
    """Bytes the decoded blocks of ``pieces`` take: rows x (features x itemsize + the
    label and weight in float64). Features from a column of vectors become CSR
    blocks, about as large as the column in Arrow: counted for in-memory pieces,
    unknown (not counted) in files until they are decoded."""
    rows = sum(int(getattr(piece, "n_rows", 0) or 0) for piece in pieces)
    per_row = 8 + (8 if decoder.weight is not None else 0)
    if decoder.vector is None:
        return rows, rows * (per_row + len(decoder.features) * np.dtype(decoder.dtype).itemsize)
    vectors = sum(piece.table.column(decoder.vector.name).nbytes for piece in pieces
                  if hasattr(piece, "table"))
    return rows, rows * per_row + vectors


def gigabytes(n_bytes):
    return "%.2f GB" % (n_bytes / 1e9)


class BlockEngine:
    name = "base"
    frame_kind = None  # the DataFrame kind this engine reads itself ("dask", "spark")
    #: The fixed cost of one pass in seconds, whatever the rows (scheduling, moving the
    #: results), for the route's cost model. In this process: about 0.2 ms.
    pass_overhead = 2e-4
    #: The :class:`~elasticnet_dist.stats_store.StatsStore` of the loaded table, if any
    #: (set by :func:`~elasticnet_dist.loading.load_table`; its sources record passes in it).
    stats_store = None
    groups = None  # a group number per feature (the decoder's), None: no groups

    def __init__(self, cache="auto"):
        if cache not in CACHE_MODES:
            raise ValueError("cache=%r is not supported; choose one of %s"
                             % (cache, list(CACHE_MODES)))
        self.n_passes = 0
        self.summaries = []
        self.n_features = 0
        self.pass_seconds = 0.0
        self.cache = cache
        self.streaming = False  # passes decode the pieces again instead of caching them

    # ---- loading ---------------------------------------------------------------------
    def load(self, pieces, decoder):
        """Decode and cache every piece (or, streaming, only summarise them); return
        the block summaries in piece order."""
        pieces = list(pieces)
        self.streaming = self._streams(pieces, decoder)
        load = self._load_streaming if self.streaming else self._load
        return self._cache(lambda: load(pieces, decoder), decoder)

    def _streams(self, pieces, decoder):
        """Whether passes should read the pieces again: ``cache="none"``, or ``"auto"``
        with blocks larger than CACHE_SHARE of :meth:`memory_budget`. Only files
        can be read again; ``cache="memory"`` stops here, before loading anything,
        when the blocks would not fit."""
        rereadable = bool(pieces) and all(hasattr(piece, "path") for piece in pieces)
        if self.cache == "none" and rereadable:
            log.info("engine cache: none: every pass reads the %d Parquet pieces again",
                     len(pieces))
            return True
        budget = self.memory_budget()
        rows, need = cached_bytes(pieces, decoder)
        if self.cache == "none" or budget is None or need <= CACHE_SHARE * budget:
            return False
        shape = ("%d rows x %d features x %d bytes" % (
            rows, len(decoder.features), np.dtype(decoder.dtype).itemsize)
            if decoder.vector is None else "%d rows of sparse vectors" % rows)
        what = ("the table needs %s cached on the %s engine (%s, with the label) but %s; "
                "blocks may fill %d%% of it" % (gigabytes(need), self.name, shape,
                                                self.describe_budget(budget),
                                                100 * CACHE_SHARE))
        if not rereadable and self.cache != "memory":
            log.warning("%s: caching it anyway (an in-memory table cannot be read again)",
                        what)
            return False
        if self.cache == "memory":
            raise MemoryBudgetError(
                what + "; set engine.cache: auto (or none) to read the Parquet files again in "
                "every pass instead, input.dtype: float32 to halve the blocks, or give the "
                "engine more memory or workers")
        log.warning("%s: every pass reads the Parquet files again (engine.cache: auto; "
                    "engine.cache: memory would stop here instead)", what)
        return True

    def memory_budget(self):
        """Bytes of memory the cached blocks live in (None: unknown or unlimited)."""
        return None

    def worker_memory_limit(self):
        """Bytes one task of a pass may use at most (None: unknown or unlimited)."""
        return None

    def describe_budget(self, budget):
        return "it has %s" % gigabytes(budget)

    def _load_streaming(self, pieces, decoder):
        """Summaries of every piece, decoded and dropped (streaming passes)."""
        raise NotImplementedError

    def _stream_pass(self, kernel, hint):
        raise NotImplementedError

    def load_frame(self, frame, decoder):
        """Decode and cache the partitions of this engine's own DataFrame kind."""
        return self._cache(lambda: self._load_frame(frame, decoder), decoder)

    def _cache(self, load, decoder):
        self._release()
        self.summaries = []
        self.summaries = list(load())
        self.n_features = len(decoder.features)
        self.groups = decoder.groups
        return self.summaries

    # ---- the source interface -----------------------------------------------------------
    @property
    def n_rows(self):
        return sum(s.n_rows for s in self.summaries)

    @property
    def n_partitions(self):
        return len(self.summaries)

    @property
    def bytes_decoded(self):
        return sum(s.nbytes for s in self.summaries)

    @property
    def bytes_cached(self):
        """Bytes of blocks held between passes (0 when streaming)."""
        return 0 if self.streaming else self.bytes_decoded

    def reference_row(self):
        """The first row of the first non-empty block: a shift for accurate moments."""
        for s in self.summaries:
            if s.n_rows:
                return s.first_x, s.first_y
        raise ValueError("no rows are loaded")

    def run_pass(self, kernel, hint=None):
        """One pass: ``kernel(block)`` on every block, the results merged by the
        fixed tree. A pass whose results would not fit in memory is refused before
        anything is allocated (:meth:`check_pass_memory`)."""
        hint = PassHint() if hint is None else hint
        self.check_pass_memory(hint)
        self.n_passes += 1
        t0 = time.perf_counter()
        out = self._stream_pass(kernel, hint) if self.streaming else self._pass(kernel, hint)
        seconds = time.perf_counter() - t0
        self.pass_seconds += seconds
        progress.data_pass(self.n_passes, seconds)
        return out

    def check_pass_memory(self, hint):
        """Refuse a pass (:class:`MemoryBudgetError`, exit 5) whose results would not
        fit: one block's take ``m = hint.result_bytes``; the driver holds up to
        :meth:`driver_results` such results while it merges, a worker task 3.
        Compared with the driver's available memory
        (:func:`~elasticnet_dist.memory.available_memory`) and the smallest worker's
        limit."""
        m = hint.result_bytes
        if m < MIN_CHECKED_BYTES:
            return
        driver, worker = available_memory(), self.worker_memory_limit()
        need = m * self.driver_results()
        for held, limit, where in ((need, driver, "the driver has available"),
                                   (3 * m, worker, "a worker may use")):
            if limit is not None and held > limit:
                raise MemoryBudgetError(
                    "a data pass would build %s: about %s, more than the %s that %s; %s"
                    % (hint.what, gigabytes(held), gigabytes(limit), where, hint.advice))

    def driver_results(self):
        """Block results (of a pass with large ones) the driver holds at once while it
        merges: the parts of the tree's root, their sum and the kernel's temporaries."""
        return min(self.n_partitions, FAN_IN) + 2

    # ---- gathering: the blocks fetched into this process ----------------------------------
    def gather_bytes(self):
        """Bytes of the blocks :meth:`gather_blocks` would fetch into this process; None
        when this engine cannot (they are here already, or passes stream the files)."""
        return None

    def gather_blocks(self):
        """Every cached block, in piece order, fetched into this process."""
        raise NotImplementedError("the %s engine does not gather its blocks" % self.name)

    #: Whether :meth:`solve_tasks` runs jobs on workers (a capability; see the module doc).
    runs_tasks = False

    def solve_tasks(self, fn, shared, stages):
        raise NotImplementedError("the %s engine runs no tasks of the driver" % self.name)

    #: Whether :meth:`host_objects` keeps objects on workers (a capability).
    hosts_objects = False

    def host_objects(self, factory, shared, jobs):
        raise NotImplementedError("the %s engine keeps no objects on its workers" % self.name)

    def map_jobs(self, task, jobs):
        """``[task(job) for job in jobs]``, run by the engine's workers (here: in this
        process, in order)."""
        return [task(job) for job in jobs]

    def describe(self):
        """Facts for a fit report: engine, workers, partitions, rows, bytes cached."""
        return {"engine": self.name, "workers": self.n_workers(),
                "partitions": self.n_partitions, "rows": self.n_rows,
                "bytes_cached": self.bytes_cached}

    def n_workers(self):
        return 1

    def cores(self):
        """Cores a pass's arithmetic runs on (here: this machine's, through BLAS)."""
        return os.cpu_count() or 1

    # ---- lifetime -------------------------------------------------------------------
    def close(self):
        """Release the cached blocks (and a cluster this engine started)."""
        self._release()
        self.summaries = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _load(self, pieces, decoder):
        raise NotImplementedError

    def _load_frame(self, frame, decoder):
        raise NotImplementedError("the %s engine cannot read a %s; give a Parquet path"
                                  % (self.name, type(frame).__name__))

    def _pass(self, kernel, hint):
        raise NotImplementedError

    def _release(self):
        pass


def check_reachable(pieces, engine):
    """A memory:// file system lives in this process only: workers cannot read it."""
    for piece in pieces:
        protocol = getattr(getattr(piece, "filesystem", None), "protocol", None)
        protocols = protocol if isinstance(protocol, (tuple, list)) else (protocol,)
        if "memory" in protocols:
            raise UnreadableFileError(
                "%s is on a memory:// file system, which exists only in this process; "
                "engine=%r reads on the workers. Use engine='local' or a path the workers "
                "can reach" % (piece.path, engine))
