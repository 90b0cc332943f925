"""Decoding a piece of a table into a cached numeric block, with a summary for checks.

A :class:`BlockDecoder` is a small picklable description (column names, dtype,
missing-value policy) that every engine ships to its workers; a worker calls
``decoder.load(piece)`` once per piece and keeps the :class:`Block`. All
columns are cast and copied into one (rows x features) array by Arrow in C++
(``Table.to_tensor``): no Python loop over rows or row batches. Features from a
column of Spark ML vectors become a CSR matrix instead (:mod:`elasticnet_dist.sparse`).

The :class:`BlockSummary` of each block is all the driver sees of the data
before a solver runs: row counts, per-column counts of missing values, what
the label, weight and offset hold, one reference row. The driver checks those
(:mod:`elasticnet_dist.io.checks`) and names the column, the count and the file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from ..alignment import aligned, aligned_empty, aligned_fortran
from ..errors import InputError
from ..folds import column_folds, key_hashes, position_hashes, stratified_folds
from ..sparse import (VectorError, column_extremes, column_nonfinite, column_sums, issparse,
                      nbytes, vectors_to_csr)
from .categorical import class_codes, feature_groups, numeric_features, one_hot

NAN_POLICIES = ("error", "drop_rows", "impute_mean")
DTYPES = ("float64", "float32")


@dataclass
class BlockSummary:
    """What the driver learns about one block when it is loaded.

    Counts refer to the rows read (before any row was dropped) unless named
    otherwise; ``n_rows`` is what the block holds for the passes.
    """

    piece: str
    n_rows_read: int
    n_rows: int
    nbytes: int
    nonfinite_x: np.ndarray           # (p,) NaN, inf or null count per feature
    null_x: np.ndarray                # (p,) null count per feature
    finite_sum_x: np.ndarray          # (p,) sum of the finite values (for impute_mean)
    finite_count_x: np.ndarray        # (p,)
    nonfinite_y: int
    label_zeros: int
    label_ones: int
    label_other: Optional[float]      # one finite label value other than 0 and 1
    nonfinite_s: int = 0
    negative_s: int = 0
    nonfinite_o: int = 0
    weight_sum: float = 0.0
    rows_dropped: int = 0
    values_imputed: int = 0
    first_x: Optional[np.ndarray] = None
    first_y: float = 0.0
    fold_rows: Optional[np.ndarray] = None   # (K,) rows kept in each fold (CV loads)
    hi_x: Optional[np.ndarray] = None        # (p,) largest value kept per feature (NaN: none)
    lo_x: Optional[np.ndarray] = None        # (p,) smallest value kept per feature
    absmax_y: float = 0.0                    # largest finite |label|
    lo_y: float = float("nan")               # smallest label kept (NaN: none)
    absmax_s: float = 0.0                    # largest finite weight
    absmax_o: float = 0.0                    # largest finite |offset|
    rounded: tuple = ()                      # integer columns beyond 2^53, cast with rounding
    stored_x: Optional[int] = None           # values a CSR block stores (None: dense)
    extra: dict = field(default_factory=dict)


@dataclass
class Block:
    """Rows of one piece, decoded: ``X`` (m x p: row-major, column-major when wide, or
    a CSR matrix for features from a column of vectors), ``y``, the weights
    ``s`` (None for unit weights: nothing is cached for them) and the offsets
    ``o`` (None without an offset column). Loaded for cross-validation, the rows
    are sorted by fold and ``fold_bounds`` (K + 1 positions) delimit the folds."""

    X: np.ndarray
    y: np.ndarray
    s: Optional[np.ndarray]
    summary: BlockSummary
    fold_bounds: Optional[np.ndarray] = None
    o: Optional[np.ndarray] = None
    origin: Optional[object] = None  # its piece in a statistics store (stats_store.Origin)

    @property
    def nbytes(self):
        """Bytes of its arrays (rows, label, weights, offsets)."""
        x_bytes = nbytes(self.X) if issparse(self.X) else self.X.nbytes
        return int(x_bytes + self.y.nbytes
                   + sum(0 if v is None else v.nbytes for v in (self.s, self.o)))


@dataclass(frozen=True)
class BlockDecoder:
    """How to turn a piece of the table into a :class:`Block`.

    ``fill`` holds the per-feature means that replace missing values under
    ``nan_policy="impute_mean"`` (known only after a first load). ``offset``
    names a column added to every row's linear predictor (the log of an
    exposure for counts).

    With ``n_folds`` = K > 0 every row gets a fold (:mod:`elasticnet_dist.folds`):
    from ``fold_column`` (integers 0 .. K-1) if set, else from a hash of the
    ``fold_keys`` columns if any, else from the piece's file and row position.
    """

    features: tuple
    label: str
    weight: Optional[str] = None
    offset: Optional[str] = None
    dtype: str = "float64"
    nan_policy: str = "error"
    fill: Optional[tuple] = None
    n_folds: int = 0
    fold_keys: tuple = ()
    fold_column: Optional[str] = None
    fold_seed: int = 0
    strata: Optional[tuple] = None   # per class 0/1: where its folds begin (stratified CV)
    collect_hashes: bool = False     # report each class's fold hashes (to find the strata)
    #: A :class:`~elasticnet_dist.sparse.VectorColumn` whose slots hold the features
    #: (``features`` then names the slots kept): blocks are CSR matrices.
    vector: Optional[object] = None
    #: Categorical columns (:class:`~.categorical.CategoricalColumn`), decoded one-hot
    #: into the last features, one per level, in order.
    categorical: tuple = ()
    #: The classes of a multinomial label, sorted: each row's label is decoded into its
    #: class's index (empty: the label is a number, read as it is).
    label_classes: tuple = ()
    #: A :class:`~elasticnet_dist.stats_store.PieceStore`: pieces seen in an earlier run
    #: load as stand-ins whose statistics the store holds (not part of the decoder's identity).
    store: Optional[object] = field(default=None, compare=False)

    @property
    def numeric(self):
        """The features read from numeric columns (all but the categorical levels)."""
        return numeric_features(self.features, self.categorical)

    @property
    def groups(self):
        """A group number per feature (-1: numeric), None without categorical columns."""
        return feature_groups(self.features, self.categorical)

    @property
    def columns(self):
        """The columns to read, each once: features, label, weight, offset, fold columns."""
        cols = [self.vector.name] if self.vector is not None else list(self.numeric)
        cols += [c.name for c in self.categorical]
        cols.append(self.label)
        for extra in (self.weight, self.offset, self.fold_column, *self.fold_keys):
            if extra is not None and extra not in cols:
                cols.append(extra)
        return cols

    def load(self, piece):
        """Read one piece and decode it. Arrow's allocator then returns the memory of
        the read (a few times the block, held by mimalloc or jemalloc otherwise,
        which Dask counts as unmanaged memory and pauses workers for). With a
        :attr:`store`, a piece it holds is not read (its ``PieceStore.load``)."""
        if self.store is not None:
            return self.store.load(self, piece)
        block = self.decode(piece.read(self.columns), piece.name,
                            source=getattr(piece, "source", ""),
                            row_offset=getattr(piece, "row_offset", 0))
        pa.default_memory_pool().release_unused()
        return block

    def fold_hashes(self, table: pa.Table, source="", row_offset=0):
        """The 64-bit hash that places each row of ``table`` in a fold (None when not
        loading for CV, or when a fold column says it)."""
        if not self.n_folds or self.fold_column is not None:
            return None
        if self.fold_keys:
            return key_hashes(table, self.fold_keys, self.fold_seed)
        return position_hashes(source, row_offset, table.num_rows, self.fold_seed)

    def folds(self, table: pa.Table, source="", row_offset=0, labels=None, hashes=None):
        """The fold of every row of ``table`` (None when not loading for CV): its fold
        column, or its hash modulo K, or (with ``strata``) its class's run of hashes."""
        if not self.n_folds:
            return None
        if self.fold_column is not None:
            return column_folds(table.column(self.fold_column), self.n_folds, self.fold_column)
        h = self.fold_hashes(table, source, row_offset) if hashes is None else hashes
        if self.strata is not None:
            return stratified_folds(h, labels, self.strata)
        return (h % np.uint64(self.n_folds)).astype(np.int64)

    def decode(self, table: pa.Table, name: str, source="", row_offset=0) -> Block:
        """Decode an Arrow table holding (at least) :attr:`columns`."""
        dtype = np.dtype(self.dtype)
        hashes = self.fold_hashes(table, source, row_offset)
        n = table.num_rows
        rounded = []
        if self.vector is not None:
            X, null_rows = self._vectors(table, name, dtype)
            missing = _SparseMissing(X, null_rows)
            null_x = np.full(X.shape[1], int(null_rows.sum()), dtype=np.int64)
        else:
            feats = table.select(list(self.numeric))
            null_x = np.array([c.null_count for c in feats.columns], dtype=np.int64)
            X = _to_matrix(feats, dtype, n, rounded)
            if self.categorical:
                X, null_x = self._with_levels(table, X, null_x, dtype)
            missing = _DenseMissing(X)
        if self.label_classes:
            y = class_codes(table.column(self.label), self.label_classes)
        else:
            y = _to_vector(table.column(self.label), self.label, rounded)
        s = None if self.weight is None else _to_vector(table.column(self.weight), self.weight,
                                                        rounded)
        o = None if self.offset is None else _to_vector(table.column(self.offset), self.offset,
                                                        rounded)
        fold = self.folds(table, labels=y, hashes=hashes)

        nonfinite_x = missing.per_column()
        y_ok = np.isfinite(y)
        s_ok = np.ones(n, dtype=bool) if s is None else np.isfinite(s)
        o_ok = np.ones(n, dtype=bool) if o is None else np.isfinite(o)
        summary = BlockSummary(
            piece=name, n_rows_read=n, n_rows=n, nbytes=0, nonfinite_x=nonfinite_x,
            null_x=null_x, finite_sum_x=missing.finite_sums(),
            finite_count_x=n - nonfinite_x,
            nonfinite_y=int(n - y_ok.sum()), label_zeros=int(np.sum(y == 0)),
            label_ones=int(np.sum(y == 1)), label_other=_other_label(y, y_ok),
            nonfinite_s=int(n - s_ok.sum()), negative_s=0 if s is None else int(np.sum(s < 0)),
            nonfinite_o=int(n - o_ok.sum()),
            absmax_y=_absmax(y, y_ok), absmax_s=0.0 if s is None else _absmax(s, s_ok),
            absmax_o=0.0 if o is None else _absmax(o, o_ok),
            rounded=tuple(rounded))

        keep = None
        if self.nan_policy in ("drop_rows", "impute_mean"):
            keep = y_ok & s_ok & o_ok  # a missing label, weight or offset is never imputed
        if self.nan_policy == "drop_rows" and nonfinite_x.any():
            keep &= ~missing.rows()
        if self.nan_policy == "impute_mean" and self.fill is not None and nonfinite_x.any():
            X = missing.imputed(np.asarray(self.fill, dtype=dtype))
            summary.values_imputed = int(nonfinite_x.sum())
        del missing
        if keep is not None and not keep.all():
            X, y, s = _rows(X, keep), y[keep], None if s is None else s[keep]
            o = None if o is None else o[keep]
            fold = None if fold is None else fold[keep]
            hashes = None if hashes is None else hashes[keep]
            summary.rows_dropped = int(n - keep.sum())
            summary.n_rows = int(keep.sum())
            summary.label_zeros, summary.label_ones = int(np.sum(y == 0)), int(np.sum(y == 1))
        if self.collect_hashes and hashes is not None:
            summary.extra["class_hashes"] = (hashes[y == 0], hashes[y == 1])
        bounds = None
        if fold is not None:  # rows sorted by fold: each fold's rows are one slice
            order = np.argsort(fold, kind="stable")
            if np.any(order != np.arange(order.size)):
                X, y, s = _rows(X, order), y[order], None if s is None else s[order]
                o = None if o is None else o[order]
            counts = np.bincount(fold, minlength=self.n_folds)
            bounds = np.concatenate([[0], np.cumsum(counts)])
            summary.fold_rows = counts
        summary.weight_sum = float(X.shape[0] if s is None else s[np.isfinite(s)].sum())
        if issparse(X):
            summary.stored_x = int(X.nnz)
        if X.shape[0]:
            summary.first_y = float(y[0])
            summary.lo_y = float(np.fmin.reduce(y))
            if issparse(X):  # summed unshifted: the reference row is zeros
                summary.first_x = np.zeros(X.shape[1])
                summary.hi_x, summary.lo_x = column_extremes(X)
            else:
                # a copy: a view of the row would keep this block's row-major buffer
                # alive after the column-major one below replaces it (a wide table's
                # blocks then took twice their size: 20,000 x 20,000, 7.3 GB for 3.2)
                summary.first_x = np.array(X[0], dtype=np.float64)
                summary.hi_x = np.fmax.reduce(X, axis=0).astype(np.float64)  # NaN-blind
                summary.lo_x = np.fmin.reduce(X, axis=0).astype(np.float64)
        if not issparse(X) and X.shape[0] < X.shape[1]:
            # a wide block is column-major: a Hessian block gathers a few hundred of its
            # columns from every row, which row-major scatters over all of its memory
            # (arcene, 200 x 10,000: 0.47 ms a gather, 1.7 of 13.5 s; column-major 0.14)
            X = aligned_fortran(X)
        block = Block(aligned(X), aligned(y), aligned(s), summary, bounds, aligned(o))
        summary.nbytes = block.nbytes
        return block

    def _with_levels(self, table, X, null_x, dtype):
        """The numeric block ``X`` with the one-hot columns of the categorical ones
        after it, and the null counts of both (a null value: every level missing)."""
        hot = [one_hot(table.column(c.name), c.levels, dtype) for c in self.categorical]
        nulls = [np.full(len(c.levels), table.column(c.name).null_count, dtype=np.int64)
                 for c in self.categorical]
        return np.hstack([X] + hot), np.concatenate([null_x] + nulls)

    def _vectors(self, table, name, dtype):
        """The vector column as a CSR matrix of the kept slots, and its null rows."""
        vector = self.vector
        try:
            X, null_rows = vectors_to_csr(table.column(vector.name), len(vector.slots), dtype)
        except VectorError as exc:
            raise InputError("vector column %r of %s: %s" % (vector.name, name, exc)) from None
        if tuple(self.features) != vector.slots:
            position = {slot: i for i, slot in enumerate(vector.slots)}
            X = X[:, [position[f] for f in self.features]]
        return X, null_rows


def _rows(X, which):
    """The rows ``which`` (a mask or positions) of a block, in its memory order; a dense
    block's go straight into an aligned array (:func:`aligned` would copy a plain one
    again: a cross-validated search on a 0.8 GB array peaked at 4.70 GB before, 4.40 GB
    so)."""
    if issparse(X):
        return X[which]
    if which.dtype == bool:
        which = np.flatnonzero(which)
    if X.flags.f_contiguous and not X.flags.c_contiguous:
        # a wide block stays column-major: each column's rows taken from the row-major
        # view of its transpose (20,000 x 2,500 block: 0.23 s, against 3.6 s for the
        # row-major copy and its column-major copy back; the indices are valid, so
        # "clip" only spares np.take its buffered copy of ``out``)
        out = aligned_empty((X.shape[1], which.size), X.dtype)
        np.take(X.T, which, axis=1, out=out, mode="clip")
        return out.T
    return np.take(X, which, axis=0, out=aligned_empty((which.size, X.shape[1]), X.dtype))


class _DenseMissing:
    """Where a dense block's features are missing (NaN, inf or null)."""

    def __init__(self, X):
        self.X = X
        self.finite = np.isfinite(X)
        self.bad_cols = np.flatnonzero(~self.finite.all(axis=0))

    def per_column(self):
        out = np.zeros(self.X.shape[1], dtype=np.int64)
        out[self.bad_cols] = self.X.shape[0] - self.finite[:, self.bad_cols].sum(axis=0)
        return out

    def finite_sums(self):
        with np.errstate(invalid="ignore", over="ignore"):
            values = np.where(self.finite, self.X, 0) if self.bad_cols.size else self.X
            return values.sum(axis=0, dtype=np.float64)

    def rows(self):
        return ~self.finite[:, self.bad_cols].all(axis=1)

    def imputed(self, fill):
        for j in self.bad_cols:  # only the affected columns, in place
            self.X[~self.finite[:, j], j] = fill[j]
        return self.X


class _SparseMissing:
    """Where a CSR block's features are missing: stored NaN or inf values, and rows
    whose vector is null (missing in every slot)."""

    def __init__(self, X, null_rows):
        self.X, self.null_rows = X, null_rows
        self.bad = ~np.isfinite(X.data)

    def per_column(self):
        return column_nonfinite(self.X) + int(self.null_rows.sum())

    def finite_sums(self):
        return column_sums(self.X)

    def rows(self):
        out = self.null_rows.copy()
        if self.bad.any():
            row_of = np.repeat(np.arange(self.X.shape[0]), np.diff(self.X.indptr))
            out[row_of[self.bad]] = True
        return out

    def imputed(self, fill):
        """Stored missing values replaced by their column's mean; a null vector's row
        by every column's (those rows become dense)."""
        X = self.X
        X.data = X.data.copy()  # (Arrow's buffer, read-only)
        X.data[self.bad] = fill[X.indices[self.bad]]
        empty = np.flatnonzero(self.null_rows)
        if empty.size:
            cols = np.flatnonzero(fill)
            indptr = np.zeros(X.shape[0] + 1, dtype=np.int64)
            indptr[empty + 1] = cols.size
            filled = sp.csr_matrix((np.tile(fill[cols], empty.size), np.tile(cols, empty.size),
                                    np.cumsum(indptr)), shape=X.shape)
            X = (X + filled).tocsr()
            X.sort_indices()
        return X


def _to_matrix(table: pa.Table, dtype, n, rounded):
    """All columns of ``table`` as one (n x p) array of ``dtype``, row-major unless it
    is wide (fewer rows than columns: column-major, see :meth:`BlockDecoder.decode`);
    the names of integer columns that float cannot hold exactly are added to
    ``rounded`` (:func:`_cast`)."""
    if table.num_columns == 0:
        return np.empty((n, 0), dtype=dtype)
    target = pa.float32() if dtype == np.float32 else pa.float64()
    try:
        if any(field.type != target for field in table.schema):
            table = table.cast(pa.schema([pa.field(f.name, target) for f in table.schema]))
    except pa.ArrowInvalid:  # rare: find the columns at fault, cast them with rounding
        table = pa.table({name: _cast(table.column(name), target, name, rounded)
                          for name in table.column_names})
    table = table.combine_chunks()
    if n == 0:
        return np.empty((0, table.num_columns), dtype=dtype)
    row_major = n >= table.num_columns
    tensor = table.to_tensor(null_to_nan=True, row_major=row_major)
    return np.ascontiguousarray(tensor) if row_major else np.asfortranarray(tensor)


def _to_vector(column, name, rounded):
    """A label, weight or offset column as float64 (nulls become NaN)."""
    column = _cast(column, pa.float64(), name, rounded)
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64).copy()


def _cast(column, target, name, rounded):
    """``column`` cast to ``target``; integers beyond the float's exact range (2^53
    for float64: ids, hashes) are cast with rounding, and ``name`` is added to
    ``rounded`` so that the driver can say so (Arrow's safe cast refuses them)."""
    try:
        return column.cast(target)
    except pa.ArrowInvalid:
        if not pa.types.is_integer(column.type):
            raise
        rounded.append(name)
        return column.cast(target, safe=False)


def _absmax(values, ok):
    """The largest finite magnitude in ``values`` (0 for none)."""
    finite = values[ok] if not ok.all() else values
    return float(np.max(np.abs(finite))) if finite.size else 0.0


def _other_label(y, ok):
    other = ok & (y != 0) & (y != 1)
    return float(y[np.argmax(other)]) if other.any() else None
