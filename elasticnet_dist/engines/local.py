"""The local engine: blocks of rows held in this process, passes run in-process."""
from __future__ import annotations

import numpy as np

from ..passes import chunked_block_stats, tree_merge
from .base import BlockEngine


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
    """Table pieces decoded into blocks in this process (no cluster)."""

    name = "local"

    def __init__(self):
        super().__init__()
        self._blocks = []

    def _load(self, pieces, decoder):
        self._blocks = [decoder.load(piece) for piece in pieces]
        return [block.summary for block in self._blocks]

    def _pass(self, request):
        return tree_merge(block.stats(request) for block in self._blocks)

    def _release(self):
        self._blocks = []
