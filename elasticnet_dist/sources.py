"""What the solvers see of the data: a :class:`Source`, and its implementations.

A solver touches rows only through ``source.run_pass(request)`` (a
:class:`~elasticnet_dist.passes.PassRequest` in, merged statistics out). A
source also tells its size (``n_rows``, ``n_features``), counts its passes
(``n_passes``) and gives one row as a shift for accurate moments
(``reference_row()``). Optional capabilities are explicit attributes with the
defaults of :class:`SourceBase` (never probed with ``getattr``):

- ``checkpoint``: a :class:`~elasticnet_dist.checkpoint.Checkpoint` the path
  solvers save their points to (None: none);
- ``task_memory_limit()``: bytes one task on a worker may use (None: unknown);
- ``solve_tasks``: a function running independent driver jobs on the workers
  (None: the driver solves them), see
  :meth:`~elasticnet_dist.engines.dask_engine.DaskEngine.solve_tasks`;
- ``host_objects``: a function keeping stateful driver objects on the workers
  (None: the driver keeps them), see
  :meth:`~elasticnet_dist.engines.dask_engine.DaskEngine.host_objects`;
- ``pass_overhead`` (seconds) and ``cores``: a pass's fixed cost and the cores
  its arithmetic runs on, and ``density``: the share of values stored by sparse
  rows (None: dense), for the route's cost model (:mod:`.solvers.routes`);
- ``gather_bytes`` (None: cannot), ``gathered_overhead`` and ``gathered()``: the
  rows fetched into this process, a source whose passes run here
  (:class:`GatheredSource`; :func:`~.solvers.routes.gather_if_cheaper` decides).

Implementations: :class:`InMemorySource` (arrays in this process),
:class:`EngineSource` (a loaded engine: the request becomes the kernel the
engine maps over its blocks), :class:`GatheredSource` (its blocks fetched here),
:class:`~elasticnet_dist.sufficient.SufficientStatistics`
(the moments and Gram matrix of a quadratic loss: no data pass at all) and
:class:`~elasticnet_dist.checkpoint.CheckpointedSource` (passes logged and replayed).
"""
from __future__ import annotations

import os
from typing import Optional, Protocol, runtime_checkable

import numpy as np

from .engines.local import LocalEngine
from .passes import BlockKernel, PassRequest, chunked_block_stats, pass_hint
from .sparse import as_csr, issparse


@runtime_checkable
class Source(Protocol):
    """The protocol of every source (see the module doc)."""

    n_rows: int
    n_features: int
    n_passes: int
    checkpoint: Optional[object]
    solve_tasks: Optional[object]
    host_objects: Optional[object]
    pass_overhead: float
    cores: int
    density: Optional[float]

    def reference_row(self) -> tuple: ...

    def run_pass(self, request: PassRequest) -> dict: ...

    def task_memory_limit(self) -> Optional[int]: ...


class SourceBase:
    """The optional capabilities, absent; a pass costs no fixed overhead and runs on
    this machine's cores (the cost model of :mod:`.solvers.routes` reads both)."""

    checkpoint = None
    solve_tasks = None
    host_objects = None
    pass_overhead = 0.0
    cores = os.cpu_count() or 1
    density = None  # dense rows
    #: A group number per feature (-1: none): the one-hot columns of each categorical
    #: feature, penalised as one group (penalty.py); None: no groups.
    groups = None
    gather_bytes = None  # bytes that gathered() would fetch; None: it cannot
    gathered_overhead = 0.0

    def gathered(self):
        raise NotImplementedError("this source does not gather its rows")

    def task_memory_limit(self):
        return None


class InMemorySource(SourceBase):
    """In-memory arrays (X, y, weights, offsets) as one block, passed over in chunks.
    ``X`` dense or ``scipy.sparse`` (kept as CSR, never made dense).

    A pass evaluates :func:`~elasticnet_dist.passes.block_stats` on chunks of
    ``block_rows`` rows and adds the results in order. ``n_passes`` counts
    the passes.
    """

    def __init__(self, X, y, sample_weight=None, block_rows=None, offset=None, groups=None):
        self._X = as_csr(X, X.dtype) if issparse(X) else np.asarray(X)
        self.groups = groups
        self.n_rows, self.n_features = self._X.shape
        if issparse(self._X):
            self.density = self._X.nnz / max(1, self.n_rows * self.n_features)
        self.block_rows = block_rows
        self._s = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        self._y = np.asarray(y, dtype=np.float64)
        self._o = None if offset is None else np.asarray(offset, dtype=np.float64)
        self.n_passes = 0

    def reference_row(self):
        """One row of the table (x, y): a shift that keeps moment sums accurate (zeros
        for sparse rows, which are summed unshifted: see ``passes._sparse_moments``)."""
        if issparse(self._X):
            return np.zeros(self.n_features), float(self._y[0])
        return np.asarray(self._X[0], dtype=np.float64), float(self._y[0])

    def run_pass(self, request):
        self.n_passes += 1
        return chunked_block_stats(self._X, self._y, self._s, request, rows=self.block_rows,
                                   o=self._o)


class EngineSource(SourceBase):
    """A loaded engine as a source: each request becomes a
    :class:`~elasticnet_dist.passes.BlockKernel` and a
    :class:`~elasticnet_dist.reduction.PassHint` for ``engine.run_pass``."""

    def __init__(self, engine):
        self.engine = engine
        self.pass_overhead = engine.pass_overhead
        self.cores = engine.cores()
        if engine.runs_tasks:
            self.solve_tasks = engine.solve_tasks
        if engine.hosts_objects:
            self.host_objects = engine.host_objects

    @property
    def n_rows(self):
        return self.engine.n_rows

    @property
    def n_features(self):
        return self.engine.n_features

    @property
    def n_passes(self):
        return self.engine.n_passes

    @property
    def groups(self):
        return self.engine.groups

    @property
    def density(self):
        """The share of values its CSR blocks store (None: dense blocks)."""
        summaries = self.engine.summaries
        if not summaries or any(s.stored_x is None for s in summaries):
            return None
        cells = self.engine.n_rows * self.engine.n_features
        return sum(s.stored_x for s in summaries) / max(1, cells)

    def reference_row(self):
        """The engine's first row, or the statistics store's (kept from its first run,
        see :mod:`elasticnet_dist.stats_store`)."""
        store = self.engine.stats_store
        if store is not None and store.reference is not None:
            return store.reference
        return self.engine.reference_row()

    def run_pass(self, request):
        if self.engine.stats_store is not None:
            self.engine.stats_store.record(request)
        return self.engine.run_pass(BlockKernel(request), pass_hint(request, self.n_features))

    def task_memory_limit(self):
        return self.engine.worker_memory_limit()

    @property
    def gather_bytes(self):
        return self.engine.gather_bytes()

    gathered_overhead = LocalEngine.pass_overhead

    def gathered(self):
        return GatheredSource(self)


class GatheredSource(EngineSource):
    """A loaded engine's blocks fetched into this process (a table small enough that
    its passes cost less here than the engine's fixed cost per pass): the same
    blocks, kernels and merge tree as on the engine, so the same sums up to the
    rounding of BLAS products (which may differ between processes with other thread
    counts or memory layouts). ``n_passes`` counts the engine's passes and those
    made here."""

    def __init__(self, origin):
        engine = origin.engine
        super().__init__(LocalEngine.holding(engine.gather_blocks(), engine.summaries,
                                             engine.n_features))
        self.engine.stats_store = engine.stats_store
        self.engine.groups = engine.groups
        self.origin = origin

    @property
    def n_passes(self):
        return self.origin.n_passes + self.engine.n_passes

    @property
    def gather_bytes(self):
        return None  # here already
