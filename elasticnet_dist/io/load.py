"""The input side's decisions around loading, engine-free: options, column plan,
decoder, warnings and checks of the block summaries.

:func:`elasticnet_dist.loading.load_table` (above io and the engines) drives an
engine with what this module decides.
"""
from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..errors import BadValuesError, EmptyTableError, InputError
from ..sparse import VectorColumn, slot_names, spark_ml_attr, vector_size
from ..losses import check_offset_loss, get_loss
from .blocks import DTYPES, NAN_POLICIES, BlockDecoder
from .checks import (SCALE_RANGE, SHOWN, all_null_columns, check_loaded,
                     extreme_scale_columns, rounded_columns)
from .categorical import discover_levels
from .columns import (ColumnPlan, check_roles, plan_columns, require_vector_column,
                      with_levels)
from .table import (TableInput, check_file_schemas, dask_partition_source, memory_input,
                    open_table, split_pieces)
from .columns import spark_columns

log = logging.getLogger("elasticnet_dist")


@dataclass
class LoadPlan:
    """What to load and how, decided on the driver before any engine decodes a row:
    the opened table, its column plan and the decoder of its pieces."""

    table: TableInput
    plan: ColumnPlan
    decoder: BlockDecoder
    loss: str
    nan_policy: str
    stratify: bool
    n_folds: int


def plan_load(source, *, label, weight=None, features=None, exclude=None, keys=None,
              loss="squared", dtype="float64", nan_policy="error", storage_options=None,
              n_folds=0, fold_column=None, fold_seed=0, stratify=False, offset=None,
              vector=None, max_levels=0, map_jobs=None):
    """Open ``source`` and decide its columns and decoder (see
    :func:`elasticnet_dist.loading.load_table` for the options); a :class:`LoadPlan`.
    ``map_jobs(task, jobs)``: where the pieces' categorical levels are read (an
    engine's workers), else in this process."""
    check_load_options(dtype, nan_policy)
    check_offset_loss(offset, loss)
    table = open_table(source, storage_options)
    check_roles(label=label, weight=weight, offset=offset, keys=keys, fold_column=fold_column,
                features=features)
    reserved = list(_as_tuple(keys)) + ([fold_column] if fold_column else [])
    vector = resolve_vector(table, vector)
    multiclass = get_loss(loss).multiclass
    plan = plan_columns(table.schema, label=label, weight=weight, keys=reserved or None,
                        features=features, exclude=exclude, where=table.uri, offset=offset,
                        vector=vector, max_levels=max_levels, text_label=multiclass)
    classes = label_classes(table, label, map_jobs) if multiclass else ()
    if plan.categorical:
        check_file_schemas(table, plan.features + plan.categorical)  # before reading any
        t0 = time.perf_counter()
        plan = with_levels(plan, discover_levels(table, plan.categorical, max_levels,
                                                 map_jobs), max_levels, table.uri)
        log.info("categorical columns: %d with 1-%d levels (%d one-hot features), %d with more "
                 "(too_many_levels), levels read in %.2f s", len(plan.categorical), max_levels,
                 len(plan.features) - len(plan.numeric),
                 sum(r == "too_many_levels" for r in plan.dropped.values()),
                 time.perf_counter() - t0)
    _require_features(plan, table)
    stratify = bool(stratify and n_folds and not fold_column
                    and 0 < _expected_rows(table) <= STRATIFY_MAX_ROWS)
    decoder = BlockDecoder(plan.features, label, weight, offset, dtype, nan_policy,
                           n_folds=n_folds, fold_column=fold_column, fold_seed=fold_seed,
                           fold_keys=_as_tuple(keys) if n_folds and not fold_column else (),
                           collect_hashes=stratify, vector=vector,
                           categorical=plan.categorical, label_classes=classes)
    check_file_schemas(table, decoder.columns)
    split_pieces(table, len(decoder.columns))
    log.info("input %s: %d columns, %d features, %d dropped, label %r%s", table.uri,
             len(table.schema), len(plan.features), len(plan.dropped), label,
             ", %d files in %d pieces" % (len(table.files), len(table.pieces))
             if table.kind == "files" else "")
    return LoadPlan(table, plan, decoder, loss, nan_policy, stratify, n_folds)


#: The most classes a label of the multinomial loss may hold.
MAX_CLASSES = 1000


def label_classes(table, label, map_jobs=None):
    """The classes of a multinomial label column: its distinct non-null values,
    sorted (read on the engine's workers with ``map_jobs``); a BadValuesError when
    there are fewer than two or more than :data:`MAX_CLASSES`."""
    t0 = time.perf_counter()
    found = discover_levels(table, [label], MAX_CLASSES, map_jobs, as_text=False)[label]
    if found.count > MAX_CLASSES:
        raise BadValuesError("label column %r in %s holds %s%d distinct values: more than "
                             "the %d classes loss='multinomial' takes"
                             % (label, table.uri, "" if found.exact else "at least ",
                                found.count, MAX_CLASSES))
    if len(found.levels) < 2:
        raise BadValuesError("label column %r in %s holds %s for loss='multinomial'; at least "
                             "two classes are needed" % (label, table.uri,
                                                         "one class (%r)" % (found.levels[0],)
                                                         if found.levels else "no value"))
    log.info("label %r: %d classes (%s), read in %.2f s", label, len(found.levels),
             ", ".join(map(repr, found.levels[:10])) + (", ..." if len(found.levels) > 10
                                                         else ""), time.perf_counter() - t0)
    return found.levels


def resolve_vector(table, vector):
    """A vector column given by name as a :class:`~elasticnet_dist.sparse.VectorColumn`:
    its size and slot names from the ML attributes Spark wrote into the files or
    holds in the DataFrame's schema (as ``VectorAssembler`` names its inputs), else
    the size from the first row that holds a vector (the first piece with one, or the
    frame's first row) and slots named ``<name>_<i>``."""
    if vector is None or isinstance(vector, VectorColumn):
        return vector
    if not isinstance(vector, str):
        raise ValueError("vector must name a column (a string) or be a VectorColumn, got %r"
                         % (vector,))
    require_vector_column(table.schema, vector, table.uri)
    if table.kind == "spark":  # the DataFrame's own column metadata
        ml_attr = table.frame.schema[vector].metadata.get("ml_attr", {})
    else:
        ml_attr = spark_ml_attr(table.schemas[0], vector) if table.schemas else {}
    if ml_attr.get("num_attrs"):
        return VectorColumn(vector, slot_names(vector, int(ml_attr["num_attrs"]), ml_attr))
    if table.kind == "spark":
        row = table.frame.select("`%s`" % vector.replace("`", "``")).dropna().head()
        return VectorColumn(vector, slot_names(vector, 0 if row is None else len(row[0]),
                                               ml_attr))
    for piece in table.pieces:
        size = vector_size(piece.read([vector]).column(vector))
        if size is not None:
            return VectorColumn(vector, slot_names(vector, size, ml_attr))
    raise EmptyTableError("vector column %r of %s holds no vector" % (vector, table.uri))


def drop_unusable(summaries, plan, table, dtype):
    """After the first decode: warn of rounded integer columns, and leave out the
    feature columns that are null on every row or of extreme scale. Returns the
    plan (the same object when nothing is left out) and the all-null columns."""
    _warn_rounded(rounded_columns(summaries), table)
    empty = all_null_columns(summaries, plan)
    extreme = extreme_scale_columns(summaries, plan, dtype)
    if extreme:
        _warn_extreme(extreme, dtype, table)
    if empty or extreme:
        plan = plan.without(empty, "all_null").without(extreme, "extreme_scale")
        _require_features(plan, table)
    return plan, empty


def check_summaries(summaries, load, plan, all_null):
    """:func:`~.checks.check_loaded` of the decoded blocks; the :class:`LoadReport`."""
    report = check_loaded(summaries, plan, loss=load.loss, nan_policy=load.nan_policy,
                          where=load.table.uri)
    report.all_null = all_null
    return report


def materialize(table, columns):
    """Pieces in this process from a DataFrame no engine reads itself (Dask on Spark, ...)."""
    if table.kind == "dask":
        parts = table.frame[list(columns)].to_delayed()
        pieces = []
        for i, part in enumerate(parts):
            frame = pa.Table.from_pandas(part.compute(), preserve_index=False)
            pieces.extend(memory_input(frame, "partition %d of %s" % (i, table.uri),
                                       source=dask_partition_source(i)).pieces)
        return pieces
    if table.kind == "spark":
        frame = table.frame.select(*spark_columns(columns)).toArrow()
        return memory_input(frame, table.uri).pieces
    raise InputError("cannot read %s" % table.uri)


def absolute_uri(table):
    """The input as an absolute location: a local path made absolute (the ``uri`` is
    kept as the user typed it), a URL or a DataFrame's description as it is."""
    uri = table.uri
    if table.kind != "files" or "://" in uri or " (+" in uri:
        return uri
    return os.path.abspath(uri)


def _warn_rounded(names, table):
    if names:
        warnings.warn("column(s) %s of %s hold integers beyond 2^53 (ids or hashes?): cast to "
                      "float with rounding; leave them out (--exclude) if they are not "
                      "measurements" % (", ".join(map(repr, names[:SHOWN])), table.uri),
                      UserWarning, stacklevel=3)


def _warn_extreme(extreme, dtype, table):
    low, high = SCALE_RANGE[dtype]
    shown = ", ".join("%r (|value| up to %.3g)" % kv for kv in list(extreme.items())[:SHOWN])
    warnings.warn("%d feature column(s) of %s have magnitudes outside [%.0e, %.0e], where "
                  "their squares under- or overflow %s: %s%s; dropped with reason "
                  "extreme_scale (rescale them to use them)"
                  % (len(extreme), table.uri, low, high, dtype, shown,
                     ", ..." if len(extreme) > SHOWN else ""), UserWarning, stacklevel=3)


def check_load_options(dtype, nan_policy):
    """The block dtype and the missing-value policy must be known values."""
    if dtype not in DTYPES:
        raise ValueError("dtype=%r is not supported; choose one of %s" % (dtype, list(DTYPES)))
    if nan_policy not in NAN_POLICIES:
        raise ValueError("nan_policy=%r is not supported; choose one of %s"
                         % (nan_policy, list(NAN_POLICIES)))


def _as_tuple(names):
    if names is None:
        return ()
    return (names,) if isinstance(names, str) else tuple(names)


#: Stratified folds gather every row's 8-byte hash on the driver once; above this
#: many rows they are not stratified (hashed folds are then balanced to 0.1%).
STRATIFY_MAX_ROWS = 20_000_000


def _expected_rows(table):
    """Rows of the table from its footers or pieces (0 when unknown: a frame)."""
    return int(sum(int(getattr(p, "n_rows", 0) or 0) for p in table.pieces))


def class_strata(summaries, n_folds):
    """Where each class's folds begin (:func:`~elasticnet_dist.folds.stratum_thresholds`),
    from the hashes the blocks reported."""
    from ..folds import stratum_thresholds

    return tuple(stratum_thresholds(np.concatenate(
        [s.extra["class_hashes"][c] for s in summaries] or [np.zeros(0, np.uint64)]),
        n_folds) for c in (0, 1))


def check_folds(summaries, n_folds, table):
    """Every fold must hold rows (else its training and test sets are degenerate)."""
    rows = np.sum([s.fold_rows for s in summaries if s.fold_rows is not None], axis=0)
    empty = np.flatnonzero(np.asarray(rows) == 0)
    if empty.size:
        raise EmptyTableError("fold %d of %d holds no rows of %s (%d rows in all); use fewer "
                              "folds or more rows" % (empty[0], n_folds, table.uri,
                                                      int(np.sum(rows))))


def _require_features(plan, table):
    if not plan.features:
        reasons = sorted(set(plan.dropped.values()))
        raise InputError("no numeric feature column is left in %s (dropped: %s)"
                         % (table.uri, ", ".join(reasons) or "none"))
