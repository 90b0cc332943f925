"""One pass over the data: the only way a solver touches rows.

A pass evaluates :func:`block_stats` on every block of rows ``(X, y, s)`` and
adds the results in a fixed order (:func:`merge_stats`). Every statistic is a
plain sum over rows, so any partitioning of the table and any engine (local,
Dask, Spark) gives the same answer up to rounding.

What a :class:`PassRequest` can ask for (``s`` = row weights, ``l`` = the
loss, ``eta_k = b_k + X w_k`` for each requested point ``k``):

- always: ``n_rows``, ``weight_sum = sum s``;
- ``coefs``: ``loss_sum[k] = sum s l(y, eta_k)``; with ``gradient`` also
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


def _hessian_block(X, h, request):
    rows, cols = request.hessian_rows, request.hessian_cols
    center = request.center
    Xc = X[:, cols]
    if center is not None:
        Xc = Xc - center[cols]
    same = rows is None or (rows.shape == cols.shape and np.array_equal(rows, cols))
    if same:
        A = np.sqrt(h)[:, None] * Xc
        block = A.T @ A  # symmetric rank-k update (BLAS syrk)
    else:
        Xr = X[:, rows]
        if center is not None:
            Xr = Xr - center[rows]
        block = Xr.T @ (h[:, None] * Xc)
    return {
        "hess": block,
        "hess_col_sums": h @ Xc,
        "hess_sum": np.float64(h.sum()),
    }


def _moments(X, y, s, request):
    Xs = X - request.shift_x
    ys = y - request.shift_y
    sXs = s[:, None] * Xs
    out = {
        "sx": sXs.sum(axis=0),
        "sxx": np.einsum("ij,ij->j", sXs, Xs),
        "sy": np.float64(s @ ys),
        "syy": np.float64(s @ (ys * ys)),
        "sxy": ys @ sXs,
    }
    if request.full_gram:
        A = np.sqrt(s)[:, None] * Xs
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
    out = {"n_rows": np.float64(X.shape[0]), "weight_sum": np.float64(s.sum())}
    if request.moments:
        out.update(_moments(X, y, s, request))
    h = None
    if request.coefs is not None:
        coefs = np.atleast_2d(request.coefs)
        eta = X @ coefs.T + request.intercepts  # (m, k)
        yk = y[:, None]
        out["loss_sum"] = s @ loss.value(yk, eta)
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
    """Sum a sequence of :func:`block_stats` results key by key, in the given order."""
    parts = list(parts)
    if not parts:
        raise ValueError("a pass needs at least one block of rows")
    total = {k: np.array(v, dtype=np.float64, copy=True) for k, v in parts[0].items()}
    for part in parts[1:]:
        for k, v in part.items():
            total[k] += v
    return total
