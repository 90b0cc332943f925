"""The local engine: an in-memory table cut into row blocks, passes run in-process."""
from __future__ import annotations

import numpy as np

from ..passes import block_stats, merge_stats

#: Target size of one block in bytes (bounds the temporaries of a pass).
BLOCK_BYTES = 64 * 2**20


class InMemorySource:
    """Rows held in this process, split into blocks of ``block_rows`` rows.

    A pass evaluates :func:`~elasticnet_dist.passes.block_stats` on each block
    and merges the results in block order. ``n_passes`` counts the passes.
    """

    is_data = True

    def __init__(self, X, y, sample_weight=None, block_rows=None):
        X = np.asarray(X)
        self.n_rows, self.n_features = X.shape
        if block_rows is None:
            block_rows = max(1, BLOCK_BYTES // (8 * max(1, self.n_features)))
        s = np.ones(self.n_rows) if sample_weight is None else np.asarray(sample_weight, float)
        y = np.asarray(y, dtype=np.float64)
        bounds = range(0, self.n_rows, block_rows)
        self._blocks = [(X[i:i + block_rows], y[i:i + block_rows], s[i:i + block_rows])
                        for i in bounds]
        self.n_passes = 0

    @property
    def n_blocks(self):
        return len(self._blocks)

    def reference_row(self):
        """One row of the table (x, y): a shift that keeps moment sums accurate."""
        X0, y0, _ = self._blocks[0]
        return np.asarray(X0[0], dtype=np.float64), float(y0[0])

    def run_pass(self, request):
        self.n_passes += 1
        return merge_stats(block_stats(X, y, s, request) for X, y, s in self._blocks)
