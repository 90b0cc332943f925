"""One pass over the data: the only way a solver touches rows.

A pass evaluates :func:`block_stats` on every block of rows ``(X, y, s)`` and
adds the results in a fixed order (:func:`merge_stats`). Every statistic is a
plain sum over rows, so any partitioning of the table and any engine (local,
Dask, Spark) gives the same answer up to rounding.

What a :class:`PassRequest` can ask for (``s`` = row weights, ``l`` = the
loss, ``eta_k = b_k + X w_k`` for each requested point ``k``):

- always: ``n_rows``, ``weight_sum = sum s``, ``weight_sq_sum = sum s^2``;
- ``coefs``: ``loss_sum[k] = sum s l(y, eta_k)`` (logistic: also
  ``dual_curv_sum[k]``, see losses.py); with ``gradient`` also
  ``grad[k] = X' (s * l'(y, eta_k))`` and ``grad_sum[k] = sum s l'``;
- ``hessian_rows``/``hessian_cols`` (index arrays R, C): with ``h = s * l''``
  at the first point (``h = s`` for the squared loss), the centred block
  ``hess = (X_R - c_R)' diag(h) (X_C - c_C)``, ``hess_col_sums = sum h (X_C - c_C)``
  and ``hess_sum = sum h``;
- ``moments`` (with a shift ``K``, ``Ky`` near the data, for accuracy):
  ``sx = sum s (x - K)``, ``sxx = sum s (x - K)^2``, ``sy = sum s (y - Ky)``,
  ``syy``, ``sxy = sum s (x - K)(y - Ky)``; with ``full_gram`` also
  ``gram = sum s (x - K)(x - K)'``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .losses import get_loss


@dataclass(frozen=True)
class PassRequest:
    """What one pass must compute (see the module docstring)."""

    loss: str = "squared"
    coefs: Optional[np.ndarray] = None        # (k, p) original-scale coefficients
    intercepts: Optional[np.ndarray] = None   # (k,)
    gradient: bool = True
    hessian_rows: Optional[np.ndarray] = None
    hessian_cols: Optional[np.ndarray] = None
    center: Optional[np.ndarray] = None       # (p,) centre of the Hessian block
    moments: bool = False
    shift_x: Optional[np.ndarray] = None
    shift_y: float = 0.0
    full_gram: bool = False

    @property
    def wants_hessian(self):
        return self.hessian_cols is not None


def _centred_columns(X, cols, center):
    """X[:, cols] - center[cols] as one fresh array.

    The gather depends on the layout: on row-major blocks np.take is about 1.7x
    faster than fancy indexing; on column-major ones (pandas' to_numpy, Arrow
    decodes) fancy indexing is about 10x faster than np.take.
    """
    row_major = X.strides[1] == X.itemsize
    out = np.take(X, cols, axis=1) if row_major else X[:, cols]
    if center is not None:
        out -= center[cols]
    return out


def _hessian_block(X, h, request):
    rows, cols = request.hessian_rows, request.hessian_cols
    Xc = _centred_columns(X, cols, request.center)
    k = cols.shape[0]
    if rows is None or np.array_equal(rows, cols):
        root = np.sqrt(h)
        Xc *= root[:, None]
        block = Xc.T @ Xc  # symmetric rank-k update (BLAS syrk)
        col_sums = root @ Xc
    else:
        m = rows.shape[0]
        if m <= k and np.array_equal(cols[k - m:], rows):
            Xr = Xc[:, k - m:].copy()  # rows are the trailing columns: no second gather
        else:
            Xr = _centred_columns(X, rows, request.center)
        Xc *= h[:, None]
        block = Xr.T @ Xc
        col_sums = Xc.sum(axis=0)
    return {"hess": block, "hess_col_sums": col_sums, "hess_sum": np.float64(h.sum())}


def _moments(X, y, s, request):
    """Shifted sums; with sqrt-weights folded into one temporary A = sqrt(s) (X - K)."""
    A = X - request.shift_x
    ys = y - request.shift_y
    if np.all(s == 1.0):  # unit weights: skip the scaling (about 30% of this pass)
        root = s
    else:
        root = np.sqrt(s)
        A *= root[:, None]
    lin = np.vstack([root, root * ys]) @ A  # [sum s (x - K), sum s (x - K)(y - Ky)]
    out = {
        "sx": lin[0],
        "sxx": np.einsum("ij,ij->j", A, A),
        "sy": np.float64(s @ ys),
        "syy": np.float64(s @ (ys * ys)),
        "sxy": lin[1],
    }
    if request.full_gram:
        out["gram"] = A.T @ A
    return out


def block_stats(X, y, s, request: PassRequest):
    """Additive statistics of one block of rows (pure; no engine involved).

    Parameters
    ----------
    X : (m, p) float array, y : (m,) float array, s : (m,) non-negative weights.
    request : PassRequest

    Returns
    -------
    dict of float64 scalars and arrays; summing the dicts of all blocks key by
    key gives the statistics of the whole table.
    """
    X = np.asarray(X)
    loss = get_loss(request.loss)
    out = {"n_rows": np.float64(X.shape[0]), "weight_sum": np.float64(s.sum()),
           "weight_sq_sum": np.float64(s @ s)}
    if request.moments:
        with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf are reported, not warned
            out.update(_moments(X, y, s, request))
    h = None
    if request.coefs is not None:
        coefs = np.atleast_2d(request.coefs)
        eta = X @ coefs.T + request.intercepts  # (m, k)
        yk = y[:, None]
        out["loss_sum"] = s @ loss.value(yk, eta)
        curv = loss.dual_curvature(yk, eta)
        if curv is not None:
            out["dual_curv_sum"] = s @ curv
        if request.gradient:
            d = s[:, None] * loss.derivative(yk, eta)
            out["grad"] = (X.T @ d).T
            out["grad_sum"] = d.sum(axis=0)
        if request.wants_hessian and request.loss != "squared":
            h = s * loss.curvature(y, eta[:, 0])
    if request.wants_hessian:
        out.update(_hessian_block(X, s if h is None else h, request))
    return out


def merge_stats(parts):
    """Sum a sequence of :func:`block_stats` results key by key, in the given order
    (``None`` stands for a block without rows and is skipped)."""
    parts = [part for part in parts if part is not None]
    if not parts:
        raise ValueError("a pass needs at least one block of rows")
    total = {k: np.array(v, dtype=np.float64, copy=True) for k, v in parts[0].items()}
    for part in parts[1:]:
        for k, v in part.items():
            total[k] += v
    return total


#: Partial results merged at each node of the reduction tree.
FAN_IN = 8


def merge_group(parts):
    """:func:`merge_stats` of one node of the tree; ``None`` when every part is empty."""
    parts = [part for part in parts if part is not None]
    return merge_stats(parts) if parts else None


def tree_merge(parts, fan_in=FAN_IN):
    """:func:`merge_stats` as a tree of fixed shape: groups of ``fan_in`` consecutive
    partial results, then groups of those, ... The shape depends only on the
    number of parts (empty blocks included), so the rounding is the same on every
    run and engine, and an engine may compute the lower levels where the parts
    are (:func:`merge_group` on each group) and finish here with the same result."""
    parts = list(parts)
    while len(parts) > 1:
        parts = [merge_group(parts[i:i + fan_in]) for i in range(0, len(parts), fan_in)]
    return merge_stats(parts)


#: Target size of one chunk of a cached block in bytes. Chunks bound a pass's
#: temporaries and keep them in recycled heap memory; too small and the Python
#: overhead per chunk shows. Measured on 100,000 x 2,000 row-major, whole fits
#: in memory (squared / logistic): 4 MiB 2.52 / 2.90 s, 16 MiB 2.40 / 2.58 s;
#: one gradient pass per 100 MB block, two processes at once: 15.2-17.4 ms for
#: any chunk from 1 MiB to the whole block. (Earlier, with column-major Gram
#: gathers, 64 MiB took 5.5 s and 1 MiB 4.7 s.)
CHUNK_BYTES = 16 * 2**20
MIN_CHUNK_ROWS = 64
#: A pass asking for the full Gram matrix runs on chunks of at least this many
#: rows per feature, so that adding the p x p partial sums costs little next to
#: computing them.
GRAM_ROWS_PER_FEATURE = 8


def chunk_rows(n_features, request=None, rows=None):
    """Rows per chunk for a pass over blocks of ``n_features`` columns."""
    if rows is None:
        rows = max(MIN_CHUNK_ROWS, CHUNK_BYTES // (8 * max(1, n_features)))
    if request is not None and request.full_gram:
        rows = max(rows, GRAM_ROWS_PER_FEATURE * n_features)
    return int(rows)


def chunked_block_stats(X, y, s, request: PassRequest, rows=None):
    """:func:`block_stats` of one (large) cached block, computed chunk by chunk.

    Float32 blocks are converted to float64 one chunk at a time, so every sum
    is accumulated in float64 while the cache holds half the bytes. ``s=None``
    stands for unit weights.
    """
    n = X.shape[0]
    if n == 0:
        return None  # a block whose rows were all dropped adds nothing
    rows = chunk_rows(X.shape[1], request, rows)
    parts = []
    for i in range(0, n, rows):
        Xc = X[i:i + rows]
        if Xc.dtype != np.float64:
            Xc = Xc.astype(np.float64)
        sc = np.ones(Xc.shape[0]) if s is None else s[i:i + rows]
        parts.append(block_stats(Xc, y[i:i + rows], sc, request))
    return merge_stats(parts)
