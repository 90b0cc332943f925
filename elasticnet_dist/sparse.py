"""Sparse rows: CSR blocks, and Spark ML's vector layout in Arrow tables.

A table's features may come as one **vector column** instead of numeric columns:
each row holds a vector of ``size`` slots, stored as Spark ML stores its
``VectorUDT`` (and writes it to Parquet):

    struct<type: int8, size: int32, indices: list<int32>, values: list<double>>

with ``type`` 0 for a sparse vector (``indices`` strictly increasing, one value
each) and 1 for a dense one (``indices`` and ``size`` null, ``size`` values).
``HashingTF``, ``CountVectorizer`` and ``OneHotEncoder`` write sparse ones, and
:func:`csr_to_vectors` writes a ``scipy.sparse`` matrix so. A block decoded from
such a column is a CSR matrix (:func:`vectors_to_csr`): its memory is
proportional to the non-zeros, never ``rows x size``. The kernels of
:mod:`elasticnet_dist.passes` take CSR blocks as they take dense ones, in sparse
products throughout (a Hessian block of the working set costs the products of each
row's non-zeros there, not ``rows x |working set|^2``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

#: The Arrow type of a Spark ML vector (``VectorUDT.sqlType``).
VECTOR_TYPE = pa.struct([("type", pa.int8()), ("size", pa.int32()),
                         ("indices", pa.list_(pa.int32())), ("values", pa.list_(pa.float64()))])


@dataclass(frozen=True)
class VectorColumn:
    """The features of a table as one vector column: its name and the names of its
    slots, in order (they name the features in the plan, the fit and the manifest)."""

    name: str
    slots: tuple

    def __post_init__(self):
        object.__setattr__(self, "slots", tuple(str(s) for s in self.slots))
        if len(set(self.slots)) != len(self.slots):
            raise ValueError("the slots of vector column %r have duplicate names" % self.name)


def slot_names(column, size, ml_attr=None):
    """Names of a vector column's ``size`` slots: those its Spark ML attributes
    (``ml_attr``, the column's metadata as ``VectorAssembler`` writes it) give, else
    ``<column>_<i>`` (Spark ML's own default)."""
    names = ["%s_%d" % (column, i) for i in range(size)]
    for group in (ml_attr or {}).get("attrs", {}).values():
        for attr in group:
            if attr.get("name") and 0 <= attr.get("idx", -1) < size:
                names[attr["idx"]] = attr["name"]
    return tuple(names)


#: The key of a Parquet file written by Spark that holds its schema with each
#: column's metadata (a vector's ML attributes among them).
SPARK_ROW_METADATA = b"org.apache.spark.sql.parquet.row.metadata"


def spark_ml_attr(schema: pa.Schema, column):
    """The ML attributes Spark wrote for ``column`` into a Parquet file's metadata
    (``{}`` when the file is not Spark's or the column has none)."""
    import json

    raw = (schema.metadata or {}).get(SPARK_ROW_METADATA)
    if raw is None:
        return {}
    try:
        fields = json.loads(raw).get("fields", [])
    except ValueError:
        return {}
    for f in fields:
        if f.get("name") == column:
            return (f.get("metadata") or {}).get("ml_attr", {}) or {}
    return {}


def issparse(X):
    """Whether ``X`` is a ``scipy.sparse`` matrix or array."""
    return sp.issparse(X)


def as_csr(X, dtype=np.float64):
    """``X`` as a CSR matrix of ``dtype`` with sorted indices and no duplicates
    (row slices and products then need no further checks)."""
    X = sp.csr_matrix(X, dtype=dtype)
    X.sum_duplicates()  # also sorts the indices
    return X


def is_vector_type(t: pa.DataType) -> bool:
    """Whether an Arrow type is a Spark ML vector (struct of type, size, indices,
    values; element widths as Spark writes them or wider)."""
    if not pa.types.is_struct(t) or t.num_fields != 4:
        return False
    names = [t.field(i).name for i in range(4)]
    if names != ["type", "size", "indices", "values"]:
        return False
    indices, values = t.field(2).type, t.field(3).type
    return (pa.types.is_integer(t.field(0).type) and pa.types.is_integer(t.field(1).type)
            and (pa.types.is_list(indices) or pa.types.is_large_list(indices))
            and pa.types.is_integer(indices.value_type)
            and (pa.types.is_list(values) or pa.types.is_large_list(values))
            and pa.types.is_floating(values.value_type))


def csr_to_vectors(X) -> pa.StructArray:
    """The rows of a CSR matrix as sparse Spark ML vectors (an Arrow struct array of
    :data:`VECTOR_TYPE`); no copy of the values beyond Arrow's own."""
    X = as_csr(X)
    n, p = X.shape
    offsets = pa.array(X.indptr.astype(np.int32))
    return pa.StructArray.from_arrays(
        [pa.array(np.zeros(n, np.int8)), pa.array(np.full(n, p, np.int32)),
         pa.ListArray.from_arrays(offsets, pa.array(X.indices.astype(np.int32))),
         pa.ListArray.from_arrays(offsets, pa.array(X.data.astype(np.float64)))],
        names=VECTOR_TYPE.names)


class VectorError(ValueError):
    """A vector column's rows do not fit its declared size."""


def vectors_to_csr(column, size, dtype=np.float64):
    """A vector column (Arrow struct array or chunked array of Spark ML vectors) as
    ``(X, null_rows)``: a CSR matrix of ``size`` columns and the boolean mask of rows
    whose vector is null (their rows of ``X`` are empty). Dense vectors (type 1)
    become rows holding all their values. A :class:`VectorError` names the first
    row whose vector does not fit ``size`` slots."""
    if isinstance(column, pa.ChunkedArray):
        column = (column.combine_chunks() if column.num_chunks
                  else pa.array([], type=column.type))
    n = len(column)
    null_rows = np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    kind = _filled(column.field("type"), 0, np.int64)
    sizes = _filled(column.field("size"), -1, np.int64)
    values = column.field("values")
    indices = column.field("indices")
    lengths = _filled(pc.list_value_length(values), 0, np.int64)
    lengths[null_rows] = 0
    dense = (kind == 1) & ~null_rows
    index_lengths = _filled(pc.list_value_length(indices), 0, np.int64)
    index_lengths[dense | null_rows] = 0
    sparse_rows = ~dense & ~null_rows
    bad = np.flatnonzero((dense & (lengths != size))
                         | (sparse_rows & ((sizes != size) | (index_lengths != lengths))))
    if bad.size:
        i = bad[0]
        raise VectorError("row %d holds a vector of %d slots (%d values); the column's "
                          "vectors have %d" % (i, sizes[i] if sparse_rows[i] else lengths[i],
                                               lengths[i], size))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    data = _flat(values, null_rows, dtype)
    idx = np.arange(indptr[-1], dtype=np.int64) - np.repeat(indptr[:-1], lengths)
    in_sparse = np.repeat(sparse_rows, lengths)
    if in_sparse.any():
        idx[in_sparse] = _flat(indices, ~sparse_rows, np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= size):
            row = int(np.searchsorted(indptr, np.argmax((idx < 0) | (idx >= size)),
                                      side="right") - 1)
            raise VectorError("row %d holds a vector index outside 0 .. %d" % (row, size - 1))
    X = sp.csr_matrix((data, idx.astype(np.int32 if size < 2**31 else np.int64), indptr),
                      shape=(n, size))
    if not X.has_sorted_indices:
        X.sort_indices()
    return X, null_rows


def _filled(array, fill, dtype):
    """An Arrow array as NumPy with nulls replaced by ``fill``."""
    return np.asarray(pc.fill_null(array, fill).to_numpy(zero_copy_only=False), dtype=dtype)


def _flat(lists, skip_rows, dtype):
    """The concatenated elements of the lists of the rows not in ``skip_rows``."""
    if skip_rows.any():
        lists = lists.filter(pa.array(~skip_rows))
    return np.asarray(pc.list_flatten(lists).to_numpy(zero_copy_only=False), dtype=dtype)


def vector_size(column):
    """The size of the first vector in a column of vectors (None: every row is null)."""
    column = column.drop_null()
    if not len(column):
        return None
    first = column[0].as_py()
    return first["size"] if first["type"] == 0 else len(first["values"])


def slice_vectors(column, slots):
    """A column of vectors with only the slots ``slots`` (in that order), as sparse
    vectors of ``len(slots)`` slots, cast back to the column's own Arrow type; null
    vectors stay null."""
    X, null_rows = vectors_to_csr(column, vector_size(column) or 0)
    vectors = csr_to_vectors(X[:, list(slots)])
    if null_rows.any():
        vectors = pa.StructArray.from_arrays(vectors.flatten(), names=VECTOR_TYPE.names,
                                             mask=pa.array(null_rows))
    return vectors.cast(column.type)


def column_nonfinite(X):
    """Per column, the count of stored values that are NaN or infinite."""
    bad = ~np.isfinite(X.data)
    return np.bincount(X.indices[bad], minlength=X.shape[1]).astype(np.int64)


def column_sums(X, finite_only=True):
    """Per column, the float64 sum of the stored (finite) values."""
    data = X.data if not finite_only else np.where(np.isfinite(X.data), X.data, 0.0)
    return np.bincount(X.indices, weights=data, minlength=X.shape[1])


def column_extremes(X):
    """Per column, the largest and the smallest value, implicit zeros included
    (NaN-blind, as ``np.fmax.reduce`` on a dense block; NaN for a column of NaN only)."""
    p = X.shape[1]
    hi, lo = np.full(p, np.nan), np.full(p, np.nan)
    if X.shape[0] == 0:
        return hi, lo
    C = X.tocsc()
    stored = np.diff(C.indptr)
    filled = np.flatnonzero(stored)
    if filled.size:
        data = C.data.astype(np.float64)
        hi[filled] = np.fmax.reduceat(data, C.indptr[filled])
        lo[filled] = np.fmin.reduceat(data, C.indptr[filled])
    has_zero = stored < X.shape[0]
    hi[has_zero] = np.fmax(hi[has_zero], 0.0)
    lo[has_zero] = np.fmin(lo[has_zero], 0.0)
    return hi, lo


def nbytes(X):
    """Bytes a CSR matrix holds (values, indices, row pointers)."""
    return int(X.data.nbytes + X.indices.nbytes + X.indptr.nbytes)
