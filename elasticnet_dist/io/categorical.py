"""Categorical columns: string columns whose levels become one-hot features.

A string (or dictionary-encoded string) column with at most ``max_levels``
distinct values is a categorical feature: its levels, sorted, are found before
loading (:func:`discover_levels`: each piece's distinct values of that column
alone, read on the engine's workers, at most ``max_levels`` of them sent back),
and each block decodes it on the workers into one 0/1 column per level
(:func:`one_hot`), named ``<column>=<level>``. The solver penalises a column's
levels as one group (penalty.py): a category is selected or dropped whole.

A null value is missing in every level's column (the table's ``nan_policy``
drops the row or imputes each level's frequency); a value outside the levels
(a table read later, at ``apply`` or ``validate``) has no level: zeros, counted
and reported (:func:`unseen_levels`).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: A piece sends back its distinct values of a column when it has at most this many
#: (or ``max_levels``, if more): columns of more levels than allowed are still counted
#: exactly up to here, and an id column costs the driver this many values a piece.
PIECE_VALUES = 1_000


def is_categorical_type(t: pa.DataType) -> bool:
    """String, large string, or dictionary-encoded string Arrow types."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t)


@dataclass(frozen=True)
class CategoricalColumn:
    """A categorical feature: the source column and its levels, in order."""

    name: str
    levels: tuple

    @property
    def features(self):
        """The names of its one-hot features, one per level."""
        return tuple(level_feature(self.name, level) for level in self.levels)


def level_feature(column, level):
    return "%s=%s" % (column, level)


def numeric_features(features, categorical):
    """The features before the ``categorical`` columns' level features (which end
    ``features``, in the order of ``categorical``)."""
    levels = sum(len(c.levels) for c in categorical)
    return tuple(features[:len(features) - levels]) if levels else tuple(features)


def feature_groups(features, categorical):
    """A group number per feature (-1: numeric; k: a level of ``categorical[k]``), None
    without categorical columns."""
    if not categorical:
        return None
    groups = np.full(len(features), -1, dtype=np.intp)
    end = len(numeric_features(features, categorical))
    for k, column in enumerate(categorical):
        groups[end:end + len(column.levels)] = k
        end += len(column.levels)
    return groups


@dataclass(frozen=True)
class LevelCount:
    """What :func:`discover_levels` found in one column: its sorted levels (when at
    most the limit asked), their number, and whether that number is exact."""

    levels: tuple
    count: int
    exact: bool = True


def _distinct(values) -> set:
    """The distinct non-null strings of an Arrow array or chunked array."""
    if isinstance(values, pa.ChunkedArray):
        out = set()
        for chunk in values.chunks:
            out |= _distinct(chunk)
        return out
    if pa.types.is_dictionary(values.type):
        used = pc.unique(values.indices.drop_null())
        values = values.dictionary.take(used)
    return set(pc.unique(values.drop_null()).to_pylist())


def discover_levels(table, names, max_levels, map_jobs=None, as_text=True):
    """``{name: LevelCount}`` for the columns ``names`` of ``table`` (a
    :class:`~elasticnet_dist.io.table.TableInput`): one read of those columns,
    piece by piece with ``map_jobs(task, pieces)`` (an engine's: on its workers),
    else here.

    A piece sends back its distinct values when it has at most ``max_levels`` or
    :data:`PIECE_VALUES` of them, else only their number: the count of a column is
    exact when every piece's values came back or there is one piece, else a lower
    bound (``exact`` False). ``as_text``: a Dask frame's values as strings (its
    string columns' values may come back as other objects); else as they are."""
    names = list(names)
    if not names:
        return {}
    if table.kind == "spark":
        return _spark_levels(table.frame, names, max_levels)
    if table.kind == "dask":
        return _dask_levels(table.frame, names, max_levels, as_text)
    task = functools.partial(piece_levels, names=names,
                             limit=max(max_levels, PIECE_VALUES))
    found = (map_jobs or _in_order)(task, table.pieces)
    out = {}
    for name in names:
        seen, largest, whole = set(), 0, True
        for part in found:
            values, count = part[name]
            largest = max(largest, count)
            if values is None:
                whole = False
            else:
                seen |= values
        count = max(largest, len(seen))
        exact = whole or len(found) == 1
        out[name] = LevelCount(tuple(sorted(seen)) if whole and count <= max_levels else (),
                               count, exact)
    return out


def _in_order(task, jobs):
    return [task(job) for job in jobs]


def piece_levels(piece, names, limit):
    """One piece's ``{name: (distinct values or None when more than limit, their
    number)}`` for the columns ``names``."""
    part = piece.read(names)
    out = {}
    for name in names:
        values = _distinct(part.column(name))
        out[name] = (values if len(values) <= limit else None, len(values))
    return out


def _spark_levels(frame, names, max_levels):
    """A Spark DataFrame's levels: at most ``max_levels + 1`` distinct values of a
    column come back to the driver; a column with more is counted by Spark."""
    from pyspark.sql import functions as F

    from .columns import spark_columns

    out = {}
    for name, col in zip(names, spark_columns(names), strict=True):
        values = frame.select(col.alias("v")).where(F.col("v").isNotNull()).distinct()
        seen = {row[0] for row in values.limit(max_levels + 1).collect()}
        if len(seen) > max_levels:
            out[name] = LevelCount((), int(values.count()))
        else:
            out[name] = LevelCount(tuple(sorted(seen)), len(seen))
    return out


def _dask_levels(frame, names, max_levels, as_text=True):
    """A Dask DataFrame's levels: each column's number of distinct values first, then
    the values of the columns with at most ``max_levels`` of them."""
    import dask

    counts = dask.compute(*[frame[name].nunique() for name in names])
    small = [name for name, count in zip(names, counts, strict=True) if count <= max_levels]
    values = dict(zip(small, dask.compute(*[frame[name].dropna().unique() for name in small]),
                      strict=True))
    kind = str if as_text else _plain
    return {name: LevelCount(tuple(sorted(map(kind, values[name]))) if name in values else (),
                             int(count))
            for name, count in zip(names, counts, strict=True)}


def _plain(value):
    """A NumPy scalar as the Python value Arrow reads (a string stays one)."""
    return value.item() if isinstance(value, np.generic) else value


def _codes(column, levels):
    """Each row's level position (-1: no level) and its null mask."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    null = column.is_null().to_numpy(zero_copy_only=False)
    codes = pc.index_in(column, value_set=pa.array(list(levels), type=column.type))
    return codes.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.intp), null


def class_codes(column, classes):
    """Each row's index into ``classes`` as float64 (NaN: null, or not a class)."""
    codes, _ = _codes(column, classes)
    out = codes.astype(np.float64)
    out[codes < 0] = np.nan
    return out


def one_hot(column, levels, dtype):
    """The (rows x levels) 0/1 matrix of a categorical column: a null row is NaN in
    every level (missing), a value outside ``levels`` is zeros."""
    codes, null = _codes(column, levels)
    out = np.zeros((codes.shape[0], len(levels)), dtype=dtype)
    rows = np.flatnonzero(codes >= 0)
    out[rows, codes[rows]] = 1.0
    out[null] = np.nan
    return out


def unseen_levels(column, levels, limit=10):
    """``(count, examples)``: the rows of ``column`` whose value is not null and not
    one of ``levels``, and up to ``limit`` of those values."""
    codes, null = _codes(column, levels)
    unseen = (codes < 0) & ~null
    count = int(unseen.sum())
    if not count:
        return 0, []
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    values = pc.unique(column.filter(pa.array(unseen))).to_pylist()
    return count, sorted(map(str, values))[:limit]
