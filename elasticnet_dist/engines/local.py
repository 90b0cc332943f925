"""The local engine: blocks of rows held in this process, passes run in-process."""
from __future__ import annotations

import numpy as np

from ..passes import LazyParts, chunked_block_stats
from .base import BlockEngine, gigabytes, grouped_tree_merge


class InMemorySource:
    """In-memory arrays (X, y, weights) as one block, passed over in chunks.

    A pass evaluates :func:`~elasticnet_dist.passes.block_stats` on chunks of
    ``block_rows`` rows and adds the results in order. ``n_passes`` counts
    the passes.
    """

    def __init__(self, X, y, sample_weight=None, block_rows=None):
        self._X = np.asarray(X)
        self.n_rows, self.n_features = self._X.shape
        self.block_rows = block_rows
        self._s = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        self._y = np.asarray(y, dtype=np.float64)
        self.n_passes = 0

    def reference_row(self):
        """One row of the table (x, y): a shift that keeps moment sums accurate."""
        return np.asarray(self._X[0], dtype=np.float64), float(self._y[0])

    def run_pass(self, request):
        self.n_passes += 1
        return chunked_block_stats(self._X, self._y, self._s, request, rows=self.block_rows)


class LocalEngine(BlockEngine):
    """Table pieces decoded into blocks in this process (no cluster).

    ``cache`` (see :data:`~.base.CACHE_MODES`): with ``"none"``, or ``"auto"`` and
    blocks larger than half the memory available, every pass decodes the pieces
    again, one at a time."""

    name = "local"

    def __init__(self, cache="auto"):
        super().__init__(cache)
        self._blocks = []
        self._pieces, self._decoder = [], None

    def _load(self, pieces, decoder):
        self._blocks = [decoder.load(piece) for piece in pieces]
        return [block.summary for block in self._blocks]

    def _load_streaming(self, pieces, decoder):
        self._pieces, self._decoder = pieces, decoder
        return [decoder.load(piece).summary for piece in pieces]

    def _pass(self, request):
        # a group of blocks at a time: a CV Gram pass has K p x p sums per block
        blocks = self._blocks
        return grouped_tree_merge(len(blocks), lambda first, stop: LazyParts(
            lambda i: blocks[i].stats(request), range(first, stop)))

    def _stream_pass(self, request):
        pieces, decoder = self._pieces, self._decoder
        return grouped_tree_merge(len(pieces), lambda first, stop: LazyParts(
            lambda i: decoder.load(pieces[i]).stats(request), range(first, stop)))

    def memory_budget(self):
        """The memory this machine has available (Linux's MemAvailable)."""
        return available_memory()

    def describe_budget(self, budget):
        return "this machine has %s available" % gigabytes(budget)

    def _release(self):
        self._blocks = []
        self._pieces, self._decoder = [], None


def available_memory():
    """Bytes of memory available to a new allocation (None where unknown): Linux's
    MemAvailable, or less where this process's address-space limit
    (``RLIMIT_AS``, e.g. ``ulimit -v``) leaves less room above what it maps."""
    found = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            with open("/proc/self/status") as f:
                mapped = next(int(line.split()[1]) * 1024 for line in f
                              if line.startswith("VmSize:"))
            room = max(0, soft - mapped)
            found = room if found is None else min(found, room)
    except (OSError, ValueError, StopIteration, ImportError):
        pass
    return found
