"""Load a table onto an engine: resolve, plan the columns, decode, check.

:func:`load_table` is the whole input side of a fit. It reads schemas and
footers on the driver, decides the column roles, has the engine decode and
cache every piece on its workers, and checks the block summaries, so that
every problem with the input is reported, with the column, the count and a
file, before any solver runs.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
import warnings
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa

from .._text import count
from ..errors import EmptyTableError, InputError
from .blocks import DTYPES, NAN_POLICIES, BlockDecoder
from .checks import (SCALE_RANGE, SHOWN, LoadReport, all_null_columns, check_loaded,
                     extreme_scale_columns, impute_means, needs_imputation, rounded_columns)
from .columns import ColumnPlan, check_roles, plan_columns
from .table import (TableInput, check_file_schemas, dask_partition_source, memory_input,
                    open_table, split_pieces)

log = logging.getLogger("elasticnet_dist")


@dataclass
class LoadedTable:
    """A table cached on an engine, ready for passes (``engine`` is the source)."""

    engine: object
    table: TableInput
    plan: ColumnPlan
    report: LoadReport
    decoder: BlockDecoder
    seconds: float

    def describe(self):
        out = self.engine.describe()
        out.update(stratified_folds=self.decoder.strata is not None)
        out.update(input=self.table.uri, rows_read=self.report.n_rows_read,
                   rows_dropped=self.report.rows_dropped,
                   values_imputed=self.report.values_imputed, nan_policy=self.report.nan_policy)
        return out

    def provenance(self):
        """Where the rows came from, for a manifest: the URI, counts, the schema's
        fingerprint (SHA-256 of the ordered ``name:type`` lines), every file with its
        size and its footer's row count, and the Arrow type of every column."""
        schema = self.table.schema
        types = [(name, str(t)) for name, t in zip(schema.names, schema.types, strict=True)]
        digest = hashlib.sha256("\n".join("%s:%s" % nt for nt in types).encode()).hexdigest()
        return {"uri": self.table.uri, "uri_absolute": absolute_uri(self.table),
                "kind": self.table.kind,
                "rows_read": int(self.report.n_rows_read), "rows_used": int(self.report.n_rows),
                "rows_dropped": int(self.report.rows_dropped),
                "values_imputed": int(self.report.values_imputed),
                "nan_policy": self.report.nan_policy, "n_columns": len(types),
                "schema_fingerprint": "sha256:" + digest,
                "files": [dict(f) for f in self.table.files],
                "column_types": dict(types)}


def absolute_uri(table):
    """The input as an absolute location: a local path made absolute (the ``uri`` is
    kept as the user typed it), a URL or a DataFrame's description as it is."""
    uri = table.uri
    if table.kind != "files" or "://" in uri or " (+" in uri:
        return uri
    return os.path.abspath(uri)


def load_table(source, engine, *, label, weight=None, features=None, exclude=None, keys=None,
               loss="squared", dtype="float64", nan_policy="error", storage_options=None,
               n_folds=0, fold_column=None, fold_seed=0, stratify=False):
    """Resolve ``source``, cache it on ``engine`` and check it; a :class:`LoadedTable`.

    ``nan_policy``: ``"error"`` (default) stops at the first column with a
    missing value (null, NaN or inf); ``"drop_rows"`` drops every row with one;
    ``"impute_mean"`` replaces missing feature values by the column's mean over
    the other rows (and drops rows whose label or weight is missing). The
    report records what was dropped or imputed.

    ``n_folds`` > 0 loads for cross-validation: every row gets a fold from
    ``fold_column`` if given (it is then not a feature), else from a hash of
    the ``keys`` columns, else from its file and row position
    (:mod:`elasticnet_dist.folds`); each block keeps its rows sorted by fold.
    ``stratify`` (a 0/1 label, hashed folds, at most STRATIFY_MAX_ROWS rows) cuts
    each class's hashes into folds of equal size: the table is decoded twice, the
    first time to learn where each class's folds begin.
    """
    check_load_options(dtype, nan_policy)
    t0 = time.perf_counter()
    table = open_table(source, storage_options)
    check_roles(label=label, weight=weight, keys=keys, fold_column=fold_column,
                features=features)
    reserved = list(_as_tuple(keys)) + ([fold_column] if fold_column else [])
    plan = plan_columns(table.schema, label=label, weight=weight, keys=reserved or None,
                        features=features, exclude=exclude, where=table.uri)
    _require_features(plan, table)
    stratify = bool(stratify and n_folds and not fold_column
                    and 0 < _expected_rows(table) <= STRATIFY_MAX_ROWS)
    decoder = BlockDecoder(plan.features, label, weight, dtype, nan_policy,
                           n_folds=n_folds, fold_column=fold_column, fold_seed=fold_seed,
                           fold_keys=_as_tuple(keys) if n_folds and not fold_column else (),
                           collect_hashes=stratify)
    check_file_schemas(table, decoder.columns)
    split_pieces(table, len(decoder.columns))
    log.info("input %s: %d columns, %d features, %d dropped, label %r%s", table.uri,
             len(table.schema), len(plan.features), len(plan.dropped), label,
             ", %d files in %d pieces" % (len(table.files), len(table.pieces))
             if table.kind == "files" else "")

    summaries = _load(engine, table, decoder)
    _warn_rounded(rounded_columns(summaries), table)
    empty = all_null_columns(summaries, plan)
    extreme = extreme_scale_columns(summaries, plan, dtype)
    if extreme:
        _warn_extreme(extreme, dtype, table)
    if empty or extreme:  # rare: decode again without them
        plan = plan.without(empty, "all_null").without(extreme, "extreme_scale")
        _require_features(plan, table)
        decoder = replace(decoder, features=plan.features)
        summaries = _load(engine, table, decoder)
    report = check_loaded(summaries, plan, loss=loss, nan_policy=nan_policy, where=table.uri)
    report.all_null = empty
    if stratify:  # decode again with each class's folds cut to equal sizes
        decoder = replace(decoder, collect_hashes=False,
                          strata=_strata(summaries, n_folds))
        summaries = _load(engine, table, decoder)
    if n_folds:
        _check_folds(summaries, n_folds, table)
    if nan_policy == "impute_mean" and needs_imputation(summaries):
        decoder = replace(decoder, fill=impute_means(summaries))
        summaries = _load(engine, table, decoder)
        report = replace(check_loaded(summaries, plan, loss=loss, nan_policy=nan_policy,
                                      where=table.uri), all_null=empty)
    seconds = time.perf_counter() - t0
    log.info("loaded %d rows (%d dropped, %d values imputed) into %s, %.1f MB %s, on %s "
             "with %s in %.2f s", report.n_rows, report.rows_dropped,
             report.values_imputed, count(engine.n_partitions, "block"),
             engine.bytes_decoded / 1e6,
             "decoded again in every pass" if getattr(engine, "streaming", False) else "cached",
             engine.name, count(engine.n_workers(), "worker"), seconds)
    return LoadedTable(engine, table, plan, report, decoder, seconds)


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


def _strata(summaries, n_folds):
    """Where each class's folds begin (:func:`~elasticnet_dist.folds.stratum_thresholds`),
    from the hashes the blocks reported."""
    from ..folds import stratum_thresholds

    return tuple(stratum_thresholds(np.concatenate(
        [s.extra["class_hashes"][c] for s in summaries] or [np.zeros(0, np.uint64)]),
        n_folds) for c in (0, 1))


def _check_folds(summaries, n_folds, table):
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


def _load(engine, table, decoder):
    if table.kind in ("files", "memory"):
        return engine.load(table.pieces, decoder)
    if engine.frame_kind == table.kind:
        return engine.load_frame(table.frame, decoder)
    return engine.load(_materialize(table, decoder.columns), decoder)


def _materialize(table, columns):
    """Pieces in this process from a DataFrame of another engine (Dask on Spark, ...)."""
    if table.kind == "dask":
        parts = table.frame[list(columns)].to_delayed()
        pieces = []
        for i, part in enumerate(parts):
            frame = pa.Table.from_pandas(part.compute(), preserve_index=False)
            pieces.extend(memory_input(frame, "partition %d of %s" % (i, table.uri),
                                       source=dask_partition_source(i)).pieces)
        return pieces
    if table.kind == "spark":
        from ..engines.spark_engine import spark_columns

        frame = table.frame.select(*spark_columns(columns)).toArrow()
        return memory_input(frame, table.uri).pieces
    raise InputError("cannot read %s" % table.uri)
