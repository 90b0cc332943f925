"""Answer squared-loss passes from sufficient statistics instead of rows.

For the squared loss every quantity a solver asks of the data is a function of
``W``, the means ``m`` and ``ybar``, the centred covariance ``C`` of the
columns, ``cov(x, y)`` and ``var(y)`` (all weighted, 1/W). With
``delta = ybar - b - m.w``:

    (1/W) sum s l            = (var_y - 2 w.cov + w'Cw + delta^2) / 2
    (1/W) X' s l'            = C w - cov - m delta
    (1/W) sum s l'           = -delta
    (1/W) (X - m)' S (X - m) = C,    (1/W) X' S X = C + m m'

:class:`SufficientStatistics` exposes the same ``run_pass`` as an engine, so
the working-set solver runs unchanged on the driver, at no data pass.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg.blas import dsymv

from .passes import hessian_keys
from .problem import Moments


class GramProducts:
    """``w @ C`` for one point ``w`` at a time, C the (symmetric) centred Gram matrix.

    The product is bound by reading C (2,000 x 2,000: 32 MB), so it reads as
    little of it as it can. Rows of C are gathered once each, as their feature
    is first used, into a buffer with room to grow, and a point multiplies
    the gathered rows (``w`` is zero outside them) as one contiguous block;
    once they are half of C, one triangle of it is read instead (BLAS
    ``dsymv``; C C-ordered is its own Fortran-ordered transpose, no copy).
    Along the CV benchmark's paths (p = 2,000) a point's product took 0.83 ms
    on average gathering its support's rows every time, and the whole matrix
    1.75 ms against 0.93 for a triangle; 500 gathered rows take 0.40 ms.
    """

    def __init__(self, gram):
        self.gram = gram
        p = gram.shape[0]
        self.order = np.zeros(0, dtype=np.intp)     # features in the order gathered
        self._rows = np.empty((0, p))
        self._where = np.full(p, -1, dtype=np.intp)  # feature -> row of the buffer

    def __call__(self, w):
        """``w @ C`` for a (p,) vector ``w``."""
        used = np.flatnonzero(w)
        new = used[self._where[used] < 0]
        p = self.gram.shape[0]
        if 2 * (self.order.size + new.size) > p:
            return self._triangle(w)
        if new.size:
            self._gather(new)
        return w[self.order] @ self._rows[:self.order.size]

    def _gather(self, new):
        k, m = self.order.size, self.order.size + new.size
        if m > self._rows.shape[0]:
            grown = np.empty((max(m, 64, 3 * self._rows.shape[0] // 2), self.gram.shape[1]))
            grown[:k] = self._rows[:k]
            self._rows = grown
        self._rows[k:m] = self.gram[new]
        self._where[new] = np.arange(k, m)
        self.order = np.concatenate([self.order, new])

    def _triangle(self, w):
        G = self.gram
        if G.dtype != np.float64 or not (G.flags.c_contiguous or G.flags.f_contiguous):
            return w @ G
        return dsymv(1.0, G.T if G.flags.c_contiguous else G, w, lower=0)


class SufficientStatistics:
    """A squared-loss 'engine' backed by the moments and the centred Gram matrix."""

    def __init__(self, moments: Moments):
        if moments.gram is None:
            raise ValueError("sufficient statistics need the full Gram matrix")
        self.m = moments
        self.n_rows = moments.n_rows
        self.n_features = moments.mean_x.shape[0]
        self.n_passes = 0  # never a data pass
        self._products = GramProducts(moments.gram)

    def run_pass(self, request):
        if request.loss != "squared":
            raise ValueError("sufficient statistics serve the squared loss only")
        m, W = self.m, self.m.weight_sum
        out = {"n_rows": np.float64(m.n_rows), "weight_sum": np.float64(W),
               "weight_sq_sum": np.float64(m.weight_sq_sum)}
        if request.coefs is not None:
            w = np.atleast_2d(request.coefs)
            delta = m.mean_y - request.intercepts - w @ m.mean_x
            if w.shape[0] == 1:  # a solver's point
                Cw = self._products(w[0])[None]
            else:  # many points (scoring a path): one matrix product
                used = np.flatnonzero(np.any(w != 0, axis=0))
                Cw = w[:, used] @ m.gram[used] if used.size * 3 < self.n_features \
                    else w @ m.gram
            quad = np.einsum("kp,kp->k", w, Cw)
            out["loss_sum"] = 0.5 * W * (m.var_y - 2 * (w @ m.cov_xy) + quad + delta ** 2)
            if request.gradient:
                out["grad"] = W * (Cw - m.cov_xy - np.outer(delta, m.mean_x))
                out["grad_sum"] = -W * delta
        for i, spec in enumerate(request.hessians):
            rows = spec.cols if spec.rows is None else spec.rows
            center = 0.0 if spec.center is None else spec.center
            shift = m.mean_x - center  # (1/W) sum s (x - c)(x - c)' = C + shift shift'
            block = m.gram[rows][:, spec.cols] + np.outer(shift[rows], shift[spec.cols])
            out.update(zip(hessian_keys(i), (W * block, W * shift[spec.cols], np.float64(W)),
                           strict=True))
        return out
