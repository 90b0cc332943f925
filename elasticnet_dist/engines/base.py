"""What every engine shares: the pass counter, the summaries, the source interface.

An engine caches decoded blocks where its workers are and runs passes over
them. Subclasses implement three methods:

- ``_load(pieces, decoder) -> [BlockSummary]``: decode every piece once, keep
  the blocks, return their summaries in piece order (``_load_frame`` does the
  same for the engine's own DataFrame kind, ``frame_kind``);
- ``_pass(request) -> dict``: :meth:`Block.stats` on every block, merged with
  :func:`~elasticnet_dist.passes.tree_merge` in piece order (so the rounding
  depends only on the pieces, never on scheduling);
- ``_release()``: drop the cached blocks.

After :meth:`BlockEngine.load` an engine is a *source* for the solvers:
``n_rows``, ``n_features``, ``reference_row()``, ``run_pass(request)``,
``n_passes``.
"""
from __future__ import annotations

import logging
import time

import numpy as np

from .. import progress
from ..errors import MemoryBudgetError, UnreadableFileError
from ..passes import FAN_IN, finish_tree, subtrees

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
    label and weight in float64)."""
    rows = sum(int(getattr(piece, "n_rows", 0) or 0) for piece in pieces)
    per_row = len(decoder.features) * np.dtype(decoder.dtype).itemsize + 8 \
        + (8 if decoder.weight is not None else 0)
    return rows, rows * per_row


def gigabytes(n_bytes):
    return "%.2f GB" % (n_bytes / 1e9)


class BlockEngine:
    name = "base"
    frame_kind = None  # the DataFrame kind this engine reads itself ("dask", "spark")

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
        what = ("the table needs %s cached on the %s engine (%d rows x %d features x %d "
                "bytes, with the label) but %s; blocks may fill %d%% of it"
                % (gigabytes(need), self.name, rows, len(decoder.features),
                   np.dtype(decoder.dtype).itemsize, self.describe_budget(budget),
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

    def _stream_pass(self, request):
        raise NotImplementedError

    def load_frame(self, frame, decoder):
        """Decode and cache the partitions of this engine's own DataFrame kind."""
        return self._cache(lambda: self._load_frame(frame, decoder), decoder)

    def _cache(self, load, decoder):
        self._release()
        self.summaries = []
        self.summaries = list(load())
        self.n_features = len(decoder.features)
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

    def run_pass(self, request):
        """One pass over every cached block; the merged statistics. A pass whose
        matrices would not fit in memory is refused before anything is allocated
        (:meth:`check_pass_memory`)."""
        self.check_pass_memory(request)
        self.n_passes += 1
        t0 = time.perf_counter()
        out = self._stream_pass(request) if self.streaming else self._pass(request)
        seconds = time.perf_counter() - t0
        self.pass_seconds += seconds
        progress.data_pass(self.n_passes, seconds)
        return out

    def check_pass_memory(self, request):
        """Refuse a pass (:class:`MemoryBudgetError`, exit 5) whose matrices would not
        fit: one block's statistics take ``m = request.matrix_bytes(p)`` bytes; the
        driver holds up to FAN_IN + 2 such results while it merges (the parts of a
        group, their sum and the kernel's temporaries), a worker task 3. Compared
        with the driver's available memory (:func:`available_memory`) and the
        smallest worker's limit. The working set of a path is what grows here: with
        many columns and a coarse grid it can reach thousands of features."""
        m = request.matrix_bytes(self.n_features)
        if m < MIN_CHECKED_BYTES:
            return
        from .local import available_memory

        driver, worker = available_memory(), self.worker_memory_limit()
        need = m * (min(self.n_partitions, FAN_IN) + 2)
        for held, limit, where in ((need, driver, "the driver has available"),
                                   (3 * m, worker, "a worker may use")):
            if limit is not None and held > limit:
                side = max(max(len(h.cols), 0 if h.rows is None else len(h.rows))
                           for h in request.hessians) if request.hessians else self.n_features
                raise MemoryBudgetError(
                    "a data pass would build matrices over %d features%s: about %s, more "
                    "than the %s that %s; set search.max_features (e.g. 500) to end the "
                    "paths before that many features enter, use more alphas "
                    "(search.n_alphas) so that each step adds fewer, leave columns out "
                    "(input.features / --exclude), or give it more memory"
                    % (side, " for %d folds" % request.n_folds if request.by_fold else "",
                       gigabytes(held), gigabytes(limit), where))

    def describe(self):
        """Facts for a fit report: engine, workers, partitions, rows, bytes cached."""
        return {"engine": self.name, "workers": self.n_workers(),
                "partitions": self.n_partitions, "rows": self.n_rows,
                "bytes_cached": self.bytes_cached}

    def n_workers(self):
        return 1

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

    def _pass(self, request):
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


def grouped_tree_merge(n_parts, group_stats, fan_in=FAN_IN):
    """:func:`~elasticnet_dist.passes.tree_merge` of ``n_parts`` parts computed one
    group of ``fan_in`` consecutive parts at a time (``group_stats(first, stop)``
    returns their list, or :class:`~elasticnet_dist.passes.LazyParts` to hold one
    part at a time): at most one group and the merged groups are held at once. The
    parts are computed for this merge, which therefore sums into them."""
    nodes = {}
    for first in range(0, n_parts, fan_in):
        stop = min(n_parts, first + fan_in)
        nodes.update(subtrees(group_stats(first, stop), first, n_parts, fan_in))
    return finish_tree(nodes, n_parts, fan_in, owned=True)
