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

import time

from .. import progress
from ..errors import UnreadableFileError


class BlockEngine:
    name = "base"
    frame_kind = None  # the DataFrame kind this engine reads itself ("dask", "spark")

    def __init__(self):
        self.n_passes = 0
        self.summaries = []
        self.n_features = 0
        self.pass_seconds = 0.0

    # ---- loading ---------------------------------------------------------------------
    def load(self, pieces, decoder):
        """Decode and cache every piece; return the block summaries in piece order."""
        return self._cache(lambda: self._load(list(pieces), decoder), decoder)

    def load_frame(self, frame, decoder):
        """Decode and cache the partitions of this engine's own DataFrame kind."""
        return self._cache(lambda: self._load_frame(frame, decoder), decoder)

    def _cache(self, load, decoder):
        self._release()
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
    def bytes_cached(self):
        return sum(s.nbytes for s in self.summaries)

    def reference_row(self):
        """The first row of the first non-empty block: a shift for accurate moments."""
        for s in self.summaries:
            if s.n_rows:
                return s.first_x, s.first_y
        raise ValueError("no rows are loaded")

    def run_pass(self, request):
        """One pass over every cached block; the merged statistics."""
        self.n_passes += 1
        t0 = time.perf_counter()
        out = self._pass(request)
        seconds = time.perf_counter() - t0
        self.pass_seconds += seconds
        progress.data_pass(self.n_passes, seconds)
        return out

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
