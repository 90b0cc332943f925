"""Cross-validation folds that do not depend on the engine or the partitioning.

A row's fold is ``h mod K`` for a 64-bit hash ``h`` of

- its key: the values of the key columns (``keys=`` of a fit), when there are
  any; the same row lands in the same fold however the table is cut into files,
  row groups or partitions, and on every engine;
- otherwise its *position*: the file it comes from (its path relative to the
  table's root folder, so that moving the table does not move the folds) and
  its row number in that file. Cutting a file into row groups or pieces does
  not change the folds; rewriting the table into other files does.

An explicit fold column (integers ``0 .. K-1``) or scikit-learn splits can be
given instead (:func:`folds_from_splits`).

For a binary label (the logistic loss) the folds are stratified: each class's
rows are ordered by the same hash and cut into K runs of equal size
(:func:`stratum_thresholds`, :func:`stratified_folds`), so that every fold holds
each class's share to one row (ALLAML, 72 rows: folds of 10 to 18 rows with
varying class balance before). The cut points come from the multiset of hashes,
so they too are the same on every engine and for any partitioning.

The hash is pure NumPy: SplitMix64's finaliser on integers and IEEE bits,
FNV-1a over the UTF-8 bytes of strings, combined column by column. It is the
same on every machine, Python version and process (unlike ``hash()``).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from .errors import BadValuesError

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_NULL = np.uint64(0x6A09E667F3BCC908)


def mix64(x):
    """SplitMix64's finaliser: a bijection of uint64 with good avalanche."""
    x = np.asarray(x, dtype=np.uint64).copy()
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= _M1
        x ^= x >> np.uint64(27)
        x *= _M2
        x ^= x >> np.uint64(31)
    return x


def _combine(h, values):
    with np.errstate(over="ignore"):
        return mix64(h ^ (mix64(values) + _GOLDEN))


def hash_strings(strings):
    """FNV-1a of each string's UTF-8 bytes (nulls hash to a constant), vectorised
    over positions: one NumPy step per character of the longest string."""
    arr = pa.array(strings) if not isinstance(strings, (pa.Array, pa.ChunkedArray)) else strings
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_binary())
    n = len(arr)
    valid = np.ones(n, dtype=bool) if arr.null_count == 0 else \
        np.asarray(arr.is_valid().to_numpy(zero_copy_only=False))
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset:arr.offset + n + 1]
    data = arr.buffers()[2]
    data = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    start, length = offsets[:-1], np.diff(offsets)
    h = np.full(n, _FNV_OFFSET, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(int(length.max(initial=0))):
            rows = np.flatnonzero(length > k)
            h[rows] = (h[rows] ^ data[start[rows] + k].astype(np.uint64)) * _FNV_PRIME
        h[~valid] = _NULL
    return h


def hash_column(column):
    """A uint64 hash of every value of an Arrow column (equal values, equal hashes;
    an integer and the same number stored as a float hash alike; nulls alike)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    t = column.type
    if pa.types.is_dictionary(t):
        column, t = column.cast(t.value_type), t.value_type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) \
            or pa.types.is_large_binary(t):
        return hash_strings(column)
    null = np.asarray(column.is_null().to_numpy(zero_copy_only=False))
    if pa.types.is_temporal(t):
        column = column.view(pa.int32() if t.bit_width == 32 else pa.int64())
    if pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_temporal(t):
        ints = column.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        out = mix64(np.asarray(ints, dtype=np.int64).view(np.uint64))
    elif pa.types.is_floating(t) or pa.types.is_decimal(t):
        x = np.asarray(column.cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False))
        whole = np.isfinite(x) & (x == np.round(x)) & (np.abs(x) < 2.0 ** 62)
        as_int = np.where(whole, x, 0).astype(np.int64).view(np.uint64)
        bits = np.where(whole, 0.0, x).view(np.uint64)
        out = mix64(np.where(whole, as_int, bits ^ _GOLDEN))
        null |= np.isnan(x)
    else:
        raise BadValuesError("a key column of type %s cannot define folds; use integer, "
                             "string or date keys" % t)
    out[null] = _NULL
    return out


def key_hashes(table: pa.Table, columns, seed=0):
    """The 64-bit hash of each row's key ``columns``."""
    h = np.full(table.num_rows, np.uint64(seed), dtype=np.uint64)
    for name in columns:
        h = _combine(h, hash_column(table.column(name)))
    return h


def position_hashes(source, row_offset, n_rows, seed=0):
    """The 64-bit hash of rows ``row_offset .. row_offset + n_rows - 1`` of the file
    ``source``."""
    base = _combine(np.full(1, np.uint64(seed), dtype=np.uint64),
                    hash_strings([source]))[0]
    rows = np.arange(row_offset, row_offset + n_rows, dtype=np.uint64)
    return _combine(np.full(n_rows, base, dtype=np.uint64), rows)


def key_folds(table: pa.Table, columns, n_folds, seed=0):
    """Fold of each row from the values of the key ``columns``."""
    return (key_hashes(table, columns, seed) % np.uint64(n_folds)).astype(np.int64)


def position_folds(source, row_offset, n_rows, n_folds, seed=0):
    """Fold of rows ``row_offset .. row_offset + n_rows - 1`` of the file ``source``."""
    return (position_hashes(source, row_offset, n_rows, seed)
            % np.uint64(n_folds)).astype(np.int64)


def stratum_thresholds(hashes, n_folds):
    """The K - 1 hashes at which the folds of one class begin: the class's rows
    sorted by hash, fold ``k`` takes ranks ``floor(k n / K) .. floor((k + 1) n / K) - 1``
    (:func:`stratified_folds`), so that every fold holds the class's share of rows to
    one row. ``hashes`` are every row's of the class, in any order (a multiset:
    the thresholds do not depend on the engine, the pieces or their order)."""
    h = np.sort(np.asarray(hashes, dtype=np.uint64))
    if h.size == 0:
        return ()
    ranks = (np.arange(1, n_folds) * h.size) // n_folds
    return tuple(int(v) for v in h[ranks])


def stratified_folds(hashes, labels, strata):
    """Folds of rows by class: ``strata[c]`` are :func:`stratum_thresholds` of class
    ``c`` (0 or 1); a row's fold counts the thresholds of its class at or below its
    hash."""
    folds = np.zeros(len(hashes), dtype=np.int64)
    for c, thresholds in enumerate(strata):
        rows = labels == c
        if rows.any():
            folds[rows] = np.searchsorted(np.asarray(thresholds, dtype=np.uint64),
                                          hashes[rows], side="right")
    return folds


def column_folds(column, n_folds, name):
    """Folds given as a column of integers ``0 .. n_folds - 1``."""
    values = np.asarray(column.cast(pa.float64()).to_numpy(zero_copy_only=False))
    bad = ~np.isfinite(values) | (values < 0) | (values >= n_folds) | (values != np.round(values))
    if np.any(bad):
        raise BadValuesError("fold column %r must hold integers 0 to %d; found %r"
                             % (name, n_folds - 1, values[np.argmax(bad)]))
    return values.astype(np.int64)


def folds_from_splits(splits, n_rows):
    """Fold ids from scikit-learn style ``(train, test)`` splits whose test sets
    partition the rows (``KFold``, ``GroupKFold``, ...); the number of folds."""
    folds = np.full(n_rows, -1, dtype=np.int64)
    k = -1
    for k, (_, test) in enumerate(splits):
        test = np.asarray(test)
        if test.dtype == bool:
            test = np.flatnonzero(test)
        if np.any(folds[test] >= 0):
            raise ValueError("cv: the test sets of the splits overlap (row %d is in two); "
                             "give splits whose test sets partition the rows"
                             % int(test[np.argmax(folds[test] >= 0)]))
        folds[test] = k
    if k < 1:
        raise ValueError("cv: need at least 2 splits, got %d" % (k + 1))
    if np.any(folds < 0):
        raise ValueError("cv: row %d is in no test set; give splits whose test sets "
                         "partition the rows" % int(np.argmax(folds < 0)))
    return folds, k + 1
