"""One pass over the data: the only way a solver touches rows.

A pass evaluates :func:`block_stats` on every block of rows ``(X, y, s)`` and
adds the results in a fixed order (:func:`merge_stats`). Every statistic is a
plain sum over rows, so any partitioning of the table and any engine (local,
Dask, Spark) gives the same answer up to rounding.

What a :class:`PassRequest` can ask for (``s`` = row weights, ``o`` = the row
offsets, 0 without an offset column, ``l`` = the loss, ``eta_k = o + b_k + X w_k``
for each requested point ``k``):

- always: ``n_rows``, ``weight_sum = sum s``, ``weight_sq_sum = sum s^2``;
- ``coefs``: ``loss_sum[k] = sum s l(y, eta_k)`` (logistic and Poisson: also
  ``dual_curv_sum[k]``, see losses.py); with ``gradient`` also
  ``grad[k] = X' (s * l'(y, eta_k))`` and ``grad_sum[k] = sum s l'``;
- ``hessians`` (:class:`HessianBlock` i with point k, index arrays R, C and a
  centre c): with ``h = s * l''(y, eta_k)`` (``h = s`` for the squared loss),
  ``hess.i = (X_R - c_R)' diag(h) (X_C - c_C)``, ``hess_col_sums.i = sum h (X_C - c_C)``
  and ``hess_sum.i = sum h``;
- ``moments`` (with a shift ``K``, ``Ky`` near the data, for accuracy):
  ``sx = sum s (x - K)``, ``sxx = sum s (x - K)^2``, ``sy = sum s (y - Ky)``,
  ``syy``, ``sxy = sum s (x - K)(y - Ky)``, ``sylogy = sum s y log y`` (over
  ``y > 0``); with ``full_gram`` also
  ``gram = sum s (x - K)(x - K)'``; with offsets also ``seo = sum s e^o``,
  ``syo = sum s y o`` and ``sxeo = sum s e^o (x - K)`` (the Poisson null model
  and its gradient, see problem.py).

Cross-validation (``n_folds`` = K; blocks hold their rows sorted by fold):

- ``by_fold``: every statistic above separately for each fold, stacked on a
  leading axis of length K (one pass yields the moments and Gram matrices of
  every training set: the total minus one fold). Its Gram matrices travel as
  their lower triangles, row after row (``gram_lower``, K x p(p + 1)/2: BLAS
  ``syrk`` computes half the products, and sums of triangles stay triangles, so
  every block's result, transfer, merge and stored leaf is half the size);
  :func:`symmetric_grams` completes them once, after the merge;
- ``train_groups`` (k x K booleans) instead of ``holdout``: point ``k`` trains
  on the rows of the folds (here: groups) marked in its row, e.g. a half-sample
  of stability selection; ``train_weight_sum[k]`` as with ``holdout``, no
  validation sums;
- ``holdout[k]``: the fold held out from point ``k`` (-1: none). The sums of
  point ``k`` (loss, gradient, Hessian blocks) then run over its training
  rows only, ``train_weight_sum[k]`` is their weight, and the held-out rows give
  ``valid_loss_sum[k]``, ``valid_weight_sum[k]`` and, with ``auc_bins``,
  weighted histograms ``valid_pos_hist[k]``, ``valid_neg_hist[k]`` of ``eta_k``
  (for the area under the ROC curve; :func:`auc_bin`). One pass thus serves the
  K fold problems and the full-data problem at once.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import numpy as np
from scipy.linalg.blas import dger, dsyrk
from scipy.special import xlogy

from .alignment import aligned
from .losses import get_loss
from .reduction import PassHint, merge_group, merge_stats
from .sparse import issparse

@dataclass(frozen=True)
class HessianBlock:
    """One Hessian block of a pass: rows ``rows`` (None: same as ``cols``) and
    columns ``cols`` of ``(X - center)' diag(h) (X - center)`` at point ``point``."""

    cols: np.ndarray
    rows: Optional[np.ndarray] = None
    center: Optional[np.ndarray] = None
    point: int = 0


@dataclass(frozen=True)
class PassRequest:
    """What one pass must compute (see the module docstring)."""

    loss: str = "squared"
    coefs: Optional[np.ndarray] = None        # (k, p) original-scale coefficients
    intercepts: Optional[np.ndarray] = None   # (k,)
    gradient: bool = True
    hessians: tuple = ()                      # HessianBlock, ...
    moments: bool = False
    shift_x: Optional[np.ndarray] = None
    shift_y: float = 0.0
    full_gram: bool = False
    n_folds: int = 0
    by_fold: bool = False
    holdout: Optional[np.ndarray] = None      # (k,) fold held out of each point, -1: none
    auc_bins: int = 0
    train_groups: Optional[np.ndarray] = None  # (k, K) bool: the folds each point trains on
    #: The multinomial loss's classes (0: a scalar loss): ``coefs`` and ``intercepts``
    #: then hold C rows per point, its classes' (see :func:`_multinomial_points`).
    n_classes: int = 0

    @property
    def per_fold(self):
        """Does this pass need the fold of every row?"""
        return self.by_fold or self.holdout is not None or self.train_groups is not None

    def matrix_bytes(self, n_features):
        """Bytes of the matrices one block's statistics for this pass hold (the
        Hessian blocks, or the Gram matrices): what grows with the square of the
        working set, for the memory guard (:meth:`BlockEngine.run_pass`)."""
        cells = sum(len(h.cols) * len(h.cols if h.rows is None else h.rows)
                    for h in self.hessians) * ((self.n_folds + 1) if self.by_fold else 1)
        cells *= max(1, self.n_classes) ** 2  # a multinomial block per pair of classes
        if self.full_gram:  # by fold: the packed triangles and the kernel's square buffer
            p = n_features
            cells += self.n_folds * p * (p + 1) // 2 + p * p if self.by_fold else p * p
        return 8 * cells


def hessian_keys(index):
    """The keys of Hessian block ``index`` in a pass's results: the block, its
    column sums and the sum of the curvature weights."""
    return "hess.%d" % index, "hess_col_sums.%d" % index, "hess_sum.%d" % index


#: Statistics of a pass with one entry per requested point (the leading axis).
PER_POINT = ("loss_sum", "grad", "grad_sum", "dual_curv_sum", "train_weight_sum",
             "valid_loss_sum", "valid_weight_sum", "valid_pos_hist", "valid_neg_hist",
             "valid_error_sum")


def points_of(stats, points, hessians=()):
    """The statistics a pass of the points ``points`` (a slice of its positions)
    alone would have returned, with the Hessian blocks of indices ``hessians``
    renumbered 0, 1, ...: how several solvers, or a solver and the point it
    solves ahead, share one pass. In a ``holdout`` pass ``weight_sum`` becomes
    the points' training weight (they hold out the same fold)."""
    out = {key: stats[key] for key in ("n_rows", "weight_sum", "weight_sq_sum")
           if key in stats}
    if "train_weight_sum" in stats:
        out["weight_sum"] = stats["train_weight_sum"][points.start]
    out.update((key, stats[key][points]) for key in PER_POINT if key in stats)
    for mine, index in enumerate(hessians):
        out.update((new, stats[old]) for new, old in
                   zip(hessian_keys(mine), hessian_keys(index), strict=True))
    return out


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


def _scaled_rows(X, w):
    """``diag(w) X`` of a CSR matrix: each row's stored values times its weight (a
    copy; no COO round trip)."""
    out = X.copy()
    out.data *= np.repeat(w, np.diff(X.indptr))
    return out


def _sparse_hessian_block(X, h, spec):
    """:func:`_hessian_block` of a CSR block, as sparse products (no column is made
    dense: ``rows x |working set|`` would dwarf the block), the centre taken out
    exactly afterwards:

        (X_R - c_R)' H (X_C - c_C) = X_R' H X_C - (X_R' h) c_C' - c_R (h' X_C) + (sum h) c_R c_C'.
    """
    cols = spec.cols
    C = X[:, cols]
    same = spec.rows is None or np.array_equal(spec.rows, cols)
    rows = cols if same else spec.rows
    R = C if same else X[:, rows]
    HC = _scaled_rows(C, h)
    block = (R.T @ HC).toarray()
    hC = np.asarray(HC.sum(axis=0)).ravel()  # h' X_C
    total = h.sum()
    if spec.center is None:
        return block, hC, np.float64(total)
    cC, cR = spec.center[cols], spec.center[rows]
    hR = hC if same else R.T @ h
    col_sums = hC - cC * total
    if block.size:
        # block -= hR cC' + cR (hC - S cC)': two rank-1 updates in place (BLAS dger on
        # the Fortran view of the C-ordered block), no h x h temporaries
        view = dger(-1.0, cC, hR, a=block.T, overwrite_a=1)
        block = dger(-1.0, col_sums, cR, a=view, overwrite_a=1).T
    return block, col_sums, np.float64(total)


def _hessian_block(X, h, spec):
    if issparse(X):
        return _sparse_hessian_block(X, h, spec)
    rows, cols = spec.rows, spec.cols
    Xc = _centred_columns(X, cols, spec.center)
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
            Xr = _centred_columns(X, rows, spec.center)
        Xc *= h[:, None]
        block = Xr.T @ Xc
        col_sums = Xc.sum(axis=0)
    return block, col_sums, np.float64(h.sum())


def _moments(X, y, s, request, gram_out=None, accumulate=False, o=None):
    """Shifted sums; with sqrt-weights folded into one temporary A = sqrt(s) (X - K).

    ``gram_out``: a C-ordered (p, p) buffer whose lower triangle receives ``A'A``
    (added to it with ``accumulate``, and then no ``gram`` key is returned)."""
    if issparse(X):
        return _sparse_moments(X, y, s, request, gram_out, accumulate, o)
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
        "sylogy": np.float64(s @ xlogy(y, np.where(y > 0, y, 1.0))),  # the Poisson null loss
    }
    if o is not None:
        seo = s * np.exp(o)
        out["seo"] = np.float64(seo.sum())
        out["syo"] = np.float64(s @ (y * o))
        out["sxeo"] = seo @ (X - request.shift_x)
    if request.full_gram and gram_out is None:
        out["gram"] = A.T @ A
    elif request.full_gram:
        # syrk on A' (Fortran-ordered p x m) into the Fortran view of the buffer:
        # its upper triangle is the C buffer's lower one; no copy of A or of the buffer
        dsyrk(1.0, A.T, beta=1.0 if accumulate else 0.0, c=gram_out.T, trans=0, lower=0,
              overwrite_c=1)
        if not accumulate:
            out["gram"] = gram_out
    return out


def _sparse_moments(X, y, s, request, gram_out=None, accumulate=False, o=None):
    """:func:`_moments` of a CSR block, whose rows are never shifted (that would fill
    it): the sums of the unshifted rows, then the shift ``K`` taken out exactly,

        sum s (x - K) = X's - K S,  sum s (x - K)^2 = (X o X)'s - 2 K X's + K^2 S,
        sum s (x - K)(x - K)' = X' S X - X's K' - K s'X + S K K'   (S = sum s).

    Sparse sources shift by 0 (their reference row is zeros), so the corrections
    vanish and no sum loses digits to cancellation."""
    K = np.zeros(X.shape[1]) if request.shift_x is None else np.asarray(request.shift_x)
    shifted = bool(np.any(K))
    ys = y - request.shift_y
    total = s.sum()
    Xt = X.T.tocsr()  # p x m: products with row vectors in one sparse pass each
    sX = Xt @ s
    sy_row = s * ys
    out = {
        "sx": sX - K * total,
        "sxx": Xt.multiply(Xt) @ s - 2.0 * K * sX + K * K * total,
        "sy": np.float64(sy_row.sum()),
        "syy": np.float64(s @ (ys * ys)),
        "sxy": Xt @ sy_row - K * sy_row.sum(),
        "sylogy": np.float64(s @ xlogy(y, np.where(y > 0, y, 1.0))),
    }
    if o is not None:
        seo = s * np.exp(o)
        out["seo"] = np.float64(seo.sum())
        out["syo"] = np.float64(s @ (y * o))
        out["sxeo"] = Xt @ seo - K * seo.sum()
    if request.full_gram:
        A = _scaled_rows(X, np.sqrt(s)) if np.any(s != 1.0) else X
        G = (A.T @ A).toarray()
        if shifted:
            G -= np.outer(sX, K) + np.outer(K, sX) - total * np.outer(K, K)
        if gram_out is None:
            out["gram"] = G
        else:
            lower = np.tril(G)
            if accumulate:
                gram_out += lower
            else:
                gram_out[...] = lower
                out["gram"] = gram_out
    return out


#: Side of the square tiles :func:`symmetric_grams` transposes one at a time.
TILE = 256


def pack_lower(G, out):
    """The lower triangle of the square matrix ``G`` into ``out``, row after row
    (row ``i``: its ``i + 1`` first numbers); returns ``out``."""
    start = 0
    for i in range(G.shape[0]):
        out[start:start + i + 1] = G[i, :i + 1]
        start += i + 1
    return out


def unpack_lower(packed):
    """Square lower-triangular matrices (upper triangles 0) from rows of
    :func:`pack_lower` (``packed``: (..., p(p + 1)/2)); the same numbers."""
    side = int(round((np.sqrt(8 * packed.shape[-1] + 1) - 1) / 2))
    full = np.zeros(packed.shape[:-1] + (side, side))
    for matrix, rows in zip(full.reshape(-1, side, side), packed.reshape(-1, packed.shape[-1]),
                            strict=True):
        start = 0
        for i in range(side):
            matrix[i, :i + 1] = rows[start:start + i + 1]
            start += i + 1
    return full


def symmetric_grams(stats):
    """The Gram matrices of a ``by_fold`` pass made whole, in place: unpacked from
    their lower triangles (``gram_lower``, see :func:`pack_lower`) into ``gram``,
    then ``G += strictly_lower(G)'``; returns ``stats``.

    Tile by tile, so that each transposed tile is read and written while it is
    in cache: 2,000 x 2,000 in 9 ms instead of 38 with one whole transpose."""
    packed = stats.pop("gram_lower", None)
    if packed is not None:
        stats["gram"] = unpack_lower(packed)
        del packed
    grams = stats.get("gram")
    if grams is not None:
        for G in grams.reshape((-1,) + grams.shape[-2:]):
            for i in range(0, G.shape[0], TILE):
                for j in range(0, i, TILE):
                    G[j:j + TILE, i:i + TILE] += G[i:i + TILE, j:j + TILE].T
                diagonal = G[i:i + TILE, i:i + TILE]
                diagonal += np.tril(diagonal, -1).T
    return stats


#: The linear predictors of a pass's points are computed over the columns where some
#: point is not zero when they are fewer than 1 / SPARSE_POINTS_SHARE of all: along a
#: path on a wide table the points hold tens of features out of thousands (ALLAML,
#: 72 x 7,129, 18 points a pass: the kernel's product halves).
SPARSE_POINTS_SHARE = 2


def _points(X, y, s, request, fold, out, o=None):
    """The per-point sums of ``request.coefs`` (and their Hessian blocks) into ``out``;
    ``o``: the rows' offsets (None: 0).

    ``fold`` is the fold of every row of this chunk (an array; None outside CV):
    a point's training sums run over the rows outside the fold it holds out
    (``request.holdout``), its validation sums over the rows inside. Every point
    takes one product with the chunk whatever the folds: the rows a point does
    not train on get weight 0 (a mask, ``train``, rows x points); a chunk inside
    the fold a point holds out skips its Hessian block (large folds are passed
    one at a time, see FOLD_CHUNK_ROWS).
    """
    loss = get_loss(request.loss)
    coefs = np.atleast_2d(request.coefs)
    used = np.flatnonzero(np.any(coefs != 0, axis=0))
    if issparse(X):  # a CSR block: nnz x k operations whatever the points
        eta = X @ coefs.T + request.intercepts
    elif used.size * SPARSE_POINTS_SHARE < X.shape[1]:  # sparse points: over their support
        eta = _centred_columns(X, used, None) @ coefs[:, used].T + request.intercepts
    else:
        eta = X @ coefs.T + request.intercepts  # (m, k)
    if o is not None:
        eta += o[:, None]
    yk = y[:, None]
    if fold is None:
        train = None
    elif request.train_groups is not None:
        train = request.train_groups.T[fold]  # (m, k)
    else:
        train = fold[:, None] != request.holdout[None, :]
    if request.n_classes:
        return _multinomial_points(X, y, s, request, train, eta, out)
    st = s[:, None] if train is None else s[:, None] * train  # training weights (m, k)
    values = loss.value(yk, eta)
    out["loss_sum"] = np.einsum("ik,ik->k", st, values)
    curv = loss.dual_curvature(yk, eta)
    if curv is not None:
        out["dual_curv_sum"] = np.einsum("ik,ik->k", st, curv)
    if request.gradient:
        d = st * loss.derivative(yk, eta)
        grad = np.zeros((coefs.shape[0], X.shape[1]))
        trains = np.flatnonzero(train.any(axis=0)) if train is not None else slice(None)
        grad[trains] = (X.T @ d[:, trains]).T  # points holding out every row here: 0
        out["grad"] = grad
        out["grad_sum"] = d.sum(axis=0)
    for i, spec in enumerate(request.hessians):
        j = spec.point
        if train is not None and not train[:, j].any():  # this chunk is its held-out fold
            n_rows = spec.cols.shape[0] if spec.rows is None else spec.rows.shape[0]
            block = (np.zeros((n_rows, spec.cols.shape[0])), np.zeros(spec.cols.shape[0]),
                     np.float64(0.0))
        else:
            sj = s if train is None else st[:, j]
            h = sj if loss.quadratic else sj * loss.curvature(y, eta[:, j])
            block = _hessian_block(X, h, spec)
        out.update(zip(hessian_keys(i), block, strict=True))
    if train is not None:
        out["train_weight_sum"] = st.sum(axis=0)
    if request.holdout is not None:
        sv = s[:, None] - st  # validation weights: exactly s or 0
        out["valid_weight_sum"] = sv.sum(axis=0)
        out["valid_loss_sum"] = np.einsum("ik,ik->k", sv, values)
        if request.auc_bins:
            out["valid_pos_hist"], out["valid_neg_hist"] = _histograms(
                eta, y, s, fold, request.holdout, request.auc_bins)


def _weighted_blocks(X, weights, spec):
    """``[(block, col_sums, sum h) for h in weights]`` as :func:`_hessian_block`
    gives them, for weights of any sign (a multinomial block's off-diagonal pairs
    are negative), the columns gathered and centred once for all of them."""
    if issparse(X):
        return [_sparse_hessian_block(X, h, spec) for h in weights]
    Xc = _centred_columns(X, spec.cols, spec.center)
    same = spec.rows is None or np.array_equal(spec.rows, spec.cols)
    Xr = Xc if same else _centred_columns(X, spec.rows, spec.center)
    out = []
    for h in weights:
        scaled = Xc * h[:, None]
        out.append((Xr.T @ scaled, scaled.sum(axis=0), np.float64(h.sum())))
    return out


def _multinomial_points(X, y, s, request, train, eta, out):
    """:func:`_points` for the multinomial loss: ``eta`` (m, k C) holds the C classes'
    linear predictors of each of the k points side by side, ``y`` the class indices.

    With ``P`` the class probabilities and ``Y`` the one-hot labels (m, k, C), point
    j's sums are ``loss_sum[j] = sum s l``, ``grad[j] = X' (s (P - Y))`` (C x p),
    ``grad_sum[j] = sum s (P - Y)`` (C); its Hessian block for the pair of classes
    (c, d) weighs the rows by ``h_cd = s P_c (1[c = d] - P_d)``, so that
    ``hess.i`` is C x C x |R| x |C| (and ``hess_col_sums.i`` C x C x |C|,
    ``hess_sum.i`` C x C); held-out rows give ``valid_loss_sum`` and the weight of
    the misclassified ones, ``valid_error_sum`` (the most likely class is not the label).

    Only the blocks of the first C - 1 classes are computed, ``(C - 1) C / 2`` products
    with the rows: each row's weights sum to zero over ``e`` (``sum_e p_e = 1``), so
    the last class's are ``h_{c, C-1} = -sum_{e < C-1} h_ce`` (and ``h_ec = h_ce``).
    """
    loss = get_loss(request.loss)
    m, C = X.shape[0], request.n_classes
    k = eta.shape[1] // C
    eta = eta.reshape(m, k, C)
    codes = y.astype(np.intp)
    st = s[:, None] if train is None else s[:, None] * train  # (m, k)
    values = loss.values(codes, eta)
    out["loss_sum"] = np.einsum("ik,ik->k", st, values)
    P = loss.probabilities(eta)
    if request.gradient:
        d = P.copy()
        d[np.arange(m), :, codes] -= 1.0
        d *= st[:, :, None]
        out["grad"] = (X.T @ d.reshape(m, k * C)).T.reshape(k, C, X.shape[1])
        out["grad_sum"] = d.sum(axis=0)
    for i, spec in enumerate(request.hessians):
        sj = st[:, spec.point]
        rows = spec.cols if spec.rows is None else spec.rows
        hess = np.zeros((C, C, rows.shape[0], spec.cols.shape[0]))
        col_sums, h_sums = np.zeros((C, C, spec.cols.shape[0])), np.zeros((C, C))
        if np.any(sj):
            pairs = [(c, e) for c in range(C - 1) for e in range(c, C - 1)]
            Pj = P[:, spec.point]
            weights = [sj * Pj[:, c] * ((c == e) - Pj[:, e]) for c, e in pairs]
            for (c, e), block in zip(pairs, _weighted_blocks(X, weights, spec), strict=True):
                for a, b in {(c, e), (e, c)}:  # h_ce = h_ec: the same block
                    hess[a, b], col_sums[a, b], h_sums[a, b] = block
            last = C - 1
            for out_ in (hess, col_sums, h_sums):  # the last class: rows sum to zero
                out_[:last, last] = -out_[:last, :last].sum(axis=1)
                out_[last, :last] = out_[:last, last]
                out_[last, last] = -out_[:last, last].sum(axis=0)
        out.update(zip(hessian_keys(i), (hess, col_sums, h_sums), strict=True))
    if train is not None:
        out["train_weight_sum"] = st.sum(axis=0)
    if request.holdout is not None:
        sv = s[:, None] - st
        out["valid_weight_sum"] = sv.sum(axis=0)
        out["valid_loss_sum"] = np.einsum("ik,ik->k", sv, values)
        wrong = np.argmax(eta, axis=2) != codes[:, None]
        out["valid_error_sum"] = np.einsum("ik,ik->k", sv, wrong)


def auc_bin(eta, bins):
    """The histogram bin of each linear predictor: ``bins`` equal bins of
    ``t = eta / (1 + |eta|)`` in (-1, 1), an increasing map that is finest where
    predictions crowd (width 2 / bins in eta near 0, about 0.03 at |eta| = 3 for
    2,048 bins), so that few pairs of rows share a bin."""
    t = eta / (1.0 + np.abs(eta))
    return np.clip(((t + 1.0) * (0.5 * bins)).astype(np.int64), 0, bins - 1)


def _histograms(eta, y, s, fold, holdout, bins):
    """Weighted histograms of eta over the positive and negative rows each point
    holds out (``fold``: the fold of every row; ``holdout``: each point's)."""
    k = eta.shape[1]
    pos, neg = np.zeros((k, bins)), np.zeros((k, bins))
    positive = y == 1
    for j in np.flatnonzero(holdout >= 0):
        rows = fold == holdout[j]
        if not rows.any():
            continue
        b = auc_bin(eta[rows, j], bins)
        pos[j] = np.bincount(b, weights=s[rows] * positive[rows], minlength=bins)
        neg[j] = np.bincount(b, weights=s[rows] * ~positive[rows], minlength=bins)
    return pos, neg


def block_stats(X, y, s, request: PassRequest, fold=None, gram_out=None, accumulate=False,
                o=None):
    """Additive statistics of one block of rows (pure; no engine involved).

    Parameters
    ----------
    X : (m, p) float array, y : (m,) float array, s : (m,) non-negative weights.
    request : PassRequest
    fold : (m,) int array, optional. The fold of every row (requests with ``holdout``).
    gram_out : (p, p) C-ordered float64 array, optional. Its lower triangle
        receives the Gram matrix (``full_gram``; the upper one is left alone),
        or gets it added with ``accumulate`` (``gram`` is then not returned).
    o : (m,) float array, optional. The rows' offsets, added to every linear
        predictor (None: no offset).

    Returns
    -------
    dict of float64 scalars and arrays; summing the dicts of all blocks key by
    key gives the statistics of the whole table.
    """
    if not issparse(X):
        X = np.asarray(X)
    out = {"n_rows": np.float64(X.shape[0]), "weight_sum": np.float64(s.sum()),
           "weight_sq_sum": np.float64(s @ s)}
    if request.moments:
        with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf are reported, not warned
            out.update(_moments(X, y, s, request, gram_out, accumulate, o))
    if request.coefs is not None:
        _points(X, y, s, request, fold, out, o)
    elif request.hessians:
        for i, spec in enumerate(request.hessians):  # no point: the squared loss's h = s
            out.update(zip(hessian_keys(i), _hessian_block(X, s, spec), strict=True))
    return out


#: Target size of one chunk of a cached block in bytes. Chunks bound a pass's
#: temporaries and keep them in recycled heap memory; too small and the Python
#: overhead per chunk shows. Measured on 100,000 x 2,000 row-major, whole fits
#: in memory (squared / logistic): 4 MiB 2.52 / 2.90 s, 16 MiB 2.40 / 2.58 s;
#: one gradient pass per 100 MB block, two processes at once: 15.2-17.4 ms for
#: any chunk from 1 MiB to the whole block. (Earlier, with column-major Gram
#: gathers, 64 MiB took 5.5 s and 1 MiB 4.7 s.)
CHUNK_BYTES = 16 * 2**20
MIN_CHUNK_ROWS = 64
#: Holdout passes run fold by fold once a block's folds average this many rows: each
#: point's Hessian block is then gathered from a chunk that stays in cache (20,000
#: x 200, logistic: 13.0 s fold by fold, 20.0 s over 10,000-row chunks), and points
#: holding the fold out skip it. Smaller folds go at once, each point weighting its
#: held-out rows 0: one product and no per-fold overhead (ALLAML, 72 rows: the
#: kernel's time 1.8 -> 0.7 s over 176 passes; arcene, 40 rows per fold: 14 s at
#: once, about 21 s fold by fold).
FOLD_CHUNK_ROWS = 256
#: A pass asking for the full Gram matrix runs on chunks of at least this many
#: rows per feature, so that adding the p x p partial sums costs little next to
#: computing them.
GRAM_ROWS_PER_FEATURE = 8


def chunk_rows(n_features, request=None, rows=None, stored_per_row=None):
    """Rows per chunk for a pass over blocks of ``n_features`` columns; for CSR
    blocks, of ``stored_per_row`` values per row on average (12 bytes each with
    its index), the per-point temporaries (rows x points) bounding them too."""
    if rows is None and stored_per_row is not None:
        points = 1 if request is None or request.coefs is None else len(request.coefs)
        per_row = 12 * max(1.0, stored_per_row) + 32 * points
        rows = max(MIN_CHUNK_ROWS, int(CHUNK_BYTES // per_row))
    elif rows is None:
        rows = max(MIN_CHUNK_ROWS, CHUNK_BYTES // (8 * max(1, n_features)))
    if request is not None and request.full_gram:
        rows = max(rows, GRAM_ROWS_PER_FEATURE * n_features)
    return int(rows)


def chunked_block_stats(X, y, s, request: PassRequest, rows=None, fold_bounds=None, o=None):
    """:func:`block_stats` of one (large) cached block, computed chunk by chunk.

    Float32 blocks are converted to float64 one chunk at a time, so every sum
    is accumulated in float64 while the cache holds half the bytes. ``s=None``
    stands for unit weights, ``o=None`` for no offsets. ``fold_bounds`` (K + 1
    positions) delimit the rows of each fold in a block sorted by fold: a
    request with ``by_fold`` gets its statistics stacked per fold, one with
    ``holdout`` its per-point sums.
    """
    n = X.shape[0]
    if n == 0:
        return None  # a block whose rows were all dropped adds nothing
    rows = chunk_rows(X.shape[1], request, rows,
                      stored_per_row=X.nnz / n if issparse(X) else None)
    if not request.per_fold:
        return _chunks(X, y, s, o, request, 0, n, rows, None)
    if fold_bounds is None or len(fold_bounds) != request.n_folds + 1:
        raise ValueError("a pass over %d folds needs blocks loaded with %d folds"
                         % (request.n_folds, request.n_folds))
    bounds = list(zip(fold_bounds[:-1], fold_bounds[1:], strict=True))
    if not request.by_fold:  # holdout: every row knows its fold
        fold = np.repeat(np.arange(request.n_folds), np.diff(fold_bounds))
        if n < request.n_folds * FOLD_CHUNK_ROWS:  # small folds: all at once
            return _chunks(X, y, s, o, request, 0, n, rows, fold)
        return merge_stats([_chunks(X, y, s, o, request, int(a), int(b), rows, fold)
                            for a, b in bounds if b > a])
    # by_fold with the Gram matrix: each fold's lower triangle goes into one p x p
    # buffer (syrk: 25-35% faster than A'A, which fills both triangles), then packed
    # into the fold's row of the result (see the module's doc)
    p = X.shape[1]
    square = np.zeros((p, p)) if request.full_gram else None
    grams = np.zeros((request.n_folds, p * (p + 1) // 2)) if request.full_gram else None
    per_fold = []
    for f, (a, b) in enumerate(bounds):
        per_fold.append(_chunks(X, y, s, o, request, int(a), int(b), rows, None, square)
                        if b > a else None)
        if b > a and grams is not None:
            pack_lower(square, grams[f])
    template = next(part for part in per_fold if part is not None)
    out = {key: np.zeros((request.n_folds,) + np.shape(value)) for key, value in template.items()
           if key != "gram" or grams is None}
    for f, part in enumerate(per_fold):
        if part is not None:
            for key, value in part.items():
                if key in out:
                    out[key][f] = value
    if grams is not None:
        out["gram_lower"] = grams
    return out


def _chunks(X, y, s, o, request, start, stop, rows, fold, gram_out=None):
    """Statistics of rows ``start:stop`` chunk by chunk, summed in chunk order into
    the first chunk's (fresh) arrays; the Gram matrix's lower triangle into
    ``gram_out`` if given."""
    total = None
    for i in range(start, stop, rows):
        j = min(stop, i + rows)
        Xc = X[i:j]
        if Xc.dtype != np.float64:
            Xc = Xc.astype(np.float64)
        sc = np.ones(j - i) if s is None else s[i:j]
        part = block_stats(Xc, y[i:j], sc, request, None if fold is None else fold[i:j],
                           gram_out, accumulate=total is not None,
                           o=None if o is None else o[i:j])
        if total is None:
            total = part
        else:
            for key, value in part.items():
                total[key] += value
    return total


def _aligned_request(request):
    """``request`` with its arrays at ALIGNMENT-byte boundaries (a few p-vectors)."""
    hessians = tuple(replace(h, cols=aligned(h.cols), rows=aligned(h.rows),
                             center=aligned(h.center)) for h in request.hessians)
    return replace(request, coefs=aligned(request.coefs), intercepts=aligned(request.intercepts),
                   holdout=aligned(request.holdout), shift_x=aligned(request.shift_x),
                   train_groups=aligned(request.train_groups), hessians=hessians)


@dataclass(frozen=True)
class BlockKernel:
    """The function an engine maps over its blocks in one pass: a block's
    statistics for ``request`` (:func:`chunked_block_stats`). Engines call it
    without knowing what it computes. Its arithmetic runs on aligned arrays
    (:func:`~elasticnet_dist.alignment.aligned`), so that the bits do not depend on
    where a process received them: blocks are aligned when they are made (a block
    that arrives elsewhere is copied), requests here."""

    request: PassRequest

    def __call__(self, block):
        """The block's statistics; a block with an ``origin`` in a statistics store
        asks it (:meth:`elasticnet_dist.stats_store.Origin.result`)."""
        origin = getattr(block, "origin", None)
        return self.compute(block) if origin is None else origin.result(self, block)

    def group(self, blocks):
        """One level-1 node of the merge tree (:mod:`~elasticnet_dist.reduction`):
        the statistics of consecutive ``blocks`` added in order, each block's as it
        is made (:func:`~elasticnet_dist.reduction.merge_group`). When every block
        came from a statistics store, the store answers for the whole node
        (:meth:`elasticnet_dist.stats_store.Origin.group_result`)."""
        origins = [getattr(block, "origin", None) for block in blocks]
        if len(blocks) > 1 and all(origin is not None for origin in origins):
            return origins[0].group_result(self, blocks)
        return merge_group(self(block) for block in blocks)

    def compute(self, block):
        return chunked_block_stats(aligned(block.X), aligned(block.y), aligned(block.s),
                                   _aligned_request(self.request),
                                   fold_bounds=block.fold_bounds, o=aligned(block.o))


def pass_hint(request, n_features):
    """The :class:`~elasticnet_dist.reduction.PassHint` of ``request``: the bytes of
    one block's matrices, and what they are for a memory error."""
    if request.hessians:
        side = max(max(len(h.cols), 0 if h.rows is None else len(h.rows))
                   for h in request.hessians)
    else:
        side = n_features if request.full_gram else 0
    return PassHint(
        result_bytes=request.matrix_bytes(n_features),
        what="matrices over %d features%s" % (
            side, " for %d folds" % request.n_folds if request.by_fold else ""),
        advice="set search.max_features (e.g. 500) to end the paths before that many "
               "features enter, use more alphas (search.n_alphas) so that each step adds "
               "fewer, leave columns out (input.features / --exclude), or give it more memory")


def fold_slice(stats, fold):
    """The statistics of one fold from a ``by_fold`` pass."""
    return {key: value[fold] for key, value in stats.items()}


def fold_total(stats):
    """The statistics of the whole table from a ``by_fold`` pass."""
    return {key: value.sum(axis=0) for key, value in stats.items()}
