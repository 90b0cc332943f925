"""Seeded synthetic wide tables for the demo, the tests and the benchmarks."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .losses import get_loss


@dataclass
class WideTable:
    X: np.ndarray
    y: np.ndarray
    coef: np.ndarray           # the true coefficients (original scale)
    names: list


def make_wide_table(n_rows=2000, n_features=500, n_informative=20, *, loss="squared",
                    correlation=0.5, scale_range=(1e-3, 1e3), noise=1.0, seed=0):
    """A dense table with AR(1)-correlated columns on mixed scales.

    Column ``j`` is ``offset_j + scale_j * z_j`` with ``z_j = rho z_{j-1} +
    sqrt(1 - rho^2) e_j`` (unit variance, neighbour correlation ``rho``),
    scales log-uniform in ``scale_range``. ``n_informative`` evenly spread
    columns carry effects of size 0.5 to 2 per standard deviation, random
    signs. ``y`` is the linear predictor plus Gaussian noise (squared loss) or
    a Bernoulli draw of its sigmoid (logistic loss).
    """
    rng = np.random.default_rng(seed)
    Z = np.empty((n_rows, n_features))
    Z[:, 0] = rng.standard_normal(n_rows)
    c = np.sqrt(1.0 - correlation ** 2)
    for j in range(1, n_features):
        Z[:, j] = correlation * Z[:, j - 1] + c * rng.standard_normal(n_rows)
    lo, hi = np.log10(scale_range[0]), np.log10(scale_range[1])
    scales = 10.0 ** rng.uniform(lo, hi, n_features)
    offsets = rng.normal(0.0, 3.0, n_features) * scales
    effects = np.zeros(n_features)
    idx = np.linspace(0, n_features - 1, n_informative).astype(int) if n_informative else []
    effects[idx] = rng.uniform(0.5, 2.0, len(idx)) * rng.choice([-1.0, 1.0], len(idx))
    eta = Z @ effects
    y = get_loss(loss).simulate(eta, rng, noise)
    Z *= scales
    Z += offsets
    names = ["f%04d" % j for j in range(n_features)]
    return WideTable(X=Z, y=y, coef=effects / scales, names=names)


def write_parquet(table: WideTable, path, n_files=16, *, label="y", row_group_rows=None,
                  extra_columns=None):
    """Write ``table`` as ``n_files`` Parquet files ``part-00000.parquet``, ... under ``path``.

    Rows are cut into ``n_files`` consecutive, nearly equal parts (so the same
    table can be written with any partitioning). ``extra_columns``: a dict of
    name -> array (length n_rows) added after the label, e.g. keys or weights.
    Returns the directory path.
    """
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(path, exist_ok=True)
    n = table.X.shape[0]
    bounds = np.linspace(0, n, n_files + 1).astype(int)
    extra = dict(extra_columns or {})
    for i in range(n_files):
        lo, hi = bounds[i], bounds[i + 1]
        cols = {name: table.X[lo:hi, j] for j, name in enumerate(table.names)}
        cols[label] = table.y[lo:hi]
        cols.update({k: np.asarray(v)[lo:hi] for k, v in extra.items()})
        pq.write_table(pa.table(cols), os.path.join(path, "part-%05d.parquet" % i),
                       row_group_size=row_group_rows)
    return path
